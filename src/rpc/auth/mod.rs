//! `auth.*`: registration, login, tokens, sessions, permission checks,
//! password resets and the account's email, the part of the service other
//! services call on every request they serve.

mod account;
mod email;
mod login;
mod mfa;
mod passkey;
mod password;
mod tokens;

pub use passkey::METHODS as PASSKEY_METHODS;

use super::{Method, Output, Param};

const TOKEN: Param = Param {
    name: "token",
    required: true,
    schema: component!("Token"),
};
/// The account's current password, proving its owner is at the keyboard.
const PASSWORD_PARAM: Param = Param {
    name: "password",
    required: true,
    schema: PASSWORD,
};
/// Where the end user is, as a login states it (login events, limits).
pub(super) const IP: Param = Param {
    name: "ip",
    required: false,
    schema: component!("Ip"),
};
pub(super) const USER_AGENT: Param = Param {
    name: "user_agent",
    required: false,
    schema: component!("UserAgent"),
};
/// A new password: the policy applies.
const NEW_PASSWORD: &str = component!("NewPassword");
/// A presented password: only the 72-byte bound applies.
const PASSWORD: &str = component!("Password");
const USERNAME: &str = component!("Username");
const EMAIL: &str = component!("Email");
const TOKENS: &str = component!("Tokens");
/// `auth.login`: tokens, or for an account with TOTP a challenge for
/// `auth.mfa.verify`.
const LOGIN_RESULT: &str = r##"{"oneOf":[{"$ref":"#/components/schemas/Tokens"},{"$ref":"#/components/schemas/MfaChallenge"}]}"##;
const TOTP_CODE: &str = component!("TotpCode");
/// `{deleted: true}`: `auth.delete_account`, `user.delete`.
pub(super) const DELETED: &str = r#"{"type":"object","properties":{"deleted":{"const":true}},"required":["deleted"],"additionalProperties":false}"#;
const REVOKED_N: &str = r#"{"type":"object","properties":{"revoked":{"type":"integer","minimum":0}},"required":["revoked"],"additionalProperties":false}"#;

pub const METHODS: &[Method] = &[
    Method {
        name: "auth.register",
        summary: "Creates an account; the password must meet the policy. Without a password ([WEBAUTHN] configured): a passkey-only account and a one-time pre_ enrolment token for auth.passkey.register_begin/register_finish.",
        params: &[
            Param {
                name: "username",
                required: true,
                schema: USERNAME,
            },
            Param {
                name: "password",
                required: false,
                schema: NEW_PASSWORD,
            },
            Param {
                name: "email",
                required: false,
                schema: EMAIL,
            },
            Param {
                name: "profile",
                required: false,
                schema: component!("ProfilePatch"),
            },
            Param {
                name: "idempotency_key",
                required: false,
                schema: component!("IdempotencyKey"),
            },
        ],
        result: r##"{"type":"object","properties":{"user_id":{"$ref":"#/components/schemas/UserId"},"enrolment_token":{"$ref":"#/components/schemas/EnrolmentToken"}},"required":["user_id"],"additionalProperties":false}"##,
        handler: |c, p| password::register(c, p).map(Output::from),
        hashes_passwords: true,
    },
    Method {
        name: "auth.login",
        summary: "Checks a password and opens a session: an access and a refresh token.",
        params: &[
            Param {
                name: "username",
                required: true,
                schema: component!("Login"),
            },
            PASSWORD_PARAM,
            IP,
            USER_AGENT,
        ],
        result: LOGIN_RESULT,
        handler: |c, p| login::login(c, p).map(Output::from),
        hashes_passwords: true,
    },
    Method {
        name: "auth.introspect",
        summary:
            "What an access token stands for; {active:false} for any token that is not active.",
        params: &[TOKEN],
        result: r##"{"oneOf":[{"type":"object","properties":{"active":{"const":true},"user_id":{"$ref":"#/components/schemas/UserId"},"username":{"type":"string"},"session_id":{"type":"integer","minimum":1},"roles":{"type":"array","items":{"$ref":"#/components/schemas/Role"}},"exp":{"type":"integer","description":"Unix seconds"},"iat":{"type":"integer","description":"Unix seconds"},"amr":{"$ref":"#/components/schemas/Amr"}},"required":["active","user_id","username","session_id","roles","exp","iat","amr"],"additionalProperties":false},{"type":"object","properties":{"active":{"const":false}},"required":["active"],"additionalProperties":false}]}"##,
        handler: |c, p| tokens::introspect(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.authorize",
        summary: "Whether the token's user holds a permission through its roles.",
        params: &[
            TOKEN,
            Param {
                name: "permission",
                required: true,
                schema: component!("Permission"),
            },
        ],
        result: r##"{"type":"object","properties":{"allowed":{"type":"boolean"},"user_id":{"$ref":"#/components/schemas/UserId"},"reason":{"enum":["invalid_token","missing_permission","mfa_required"],"description":"mfa_required: only roles listed in [AUTH] MFA_REQUIRED_ROLES grant it, and the session has no second factor (amr without otp)."}},"required":["allowed"],"additionalProperties":false}"##,
        handler: |c, p| tokens::authorize(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.refresh",
        summary: "Trades a refresh token for a new pair; a spent one revokes its whole session.",
        params: &[Param {
            name: "refresh_token",
            required: true,
            schema: component!("Token"),
        }],
        result: TOKENS,
        handler: |c, p| login::refresh(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.logout",
        summary: "Revokes the session of an access or refresh token.",
        params: &[TOKEN],
        result: r#"{"type":"object","properties":{"revoked":{"type":"boolean"}},"required":["revoked"],"additionalProperties":false}"#,
        handler: |c, p| tokens::logout(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.logout_all",
        summary: "Revokes every session of the token's user.",
        params: &[TOKEN],
        result: REVOKED_N,
        handler: |c, p| tokens::logout_all(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.change_password",
        summary: "Changes the password; every other session is revoked.",
        params: &[
            TOKEN,
            Param {
                name: "old_password",
                required: true,
                schema: PASSWORD,
            },
            Param {
                name: "new_password",
                required: true,
                schema: NEW_PASSWORD,
            },
        ],
        result: REVOKED_N,
        handler: |c, p| password::change_password(c, p).map(Output::from),
        hashes_passwords: true,
    },
    Method {
        name: "auth.sessions",
        summary: "The live sessions of the token's user, newest first.",
        params: &[TOKEN],
        result: r##"{"type":"object","properties":{"sessions":{"type":"array","items":{"$ref":"#/components/schemas/Session"}}},"required":["sessions"],"additionalProperties":false}"##,
        handler: |c, p| tokens::sessions(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.request_password_reset",
        summary: "A single-use reset token for an account (the caller delivers it).",
        params: &[
            Param {
                name: "username",
                required: false,
                schema: USERNAME,
            },
            Param {
                name: "email",
                required: false,
                schema: EMAIL,
            },
        ],
        result: r##"{"type":"object","properties":{"user_id":{"$ref":"#/components/schemas/UserId"},"reset_token":{"$ref":"#/components/schemas/ResetToken"},"expires_in":{"type":"integer","minimum":1}},"required":["user_id","reset_token","expires_in"],"additionalProperties":false}"##,
        handler: |c, p| password::request_reset(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.reset_password",
        summary: "Sets a new password with a reset token; every session is revoked.",
        params: &[
            Param {
                name: "reset_token",
                required: true,
                schema: component!("Token"),
            },
            Param {
                name: "new_password",
                required: true,
                schema: NEW_PASSWORD,
            },
        ],
        result: REVOKED_N,
        handler: |c, p| password::reset_password(c, p).map(Output::from),
        hashes_passwords: true,
    },
    Method {
        name: "auth.request_email_verification",
        summary: "A single-use pev_ token proving the account's email (the caller delivers it): for the token's account, or (back office) user_id's; -32013 without an email.",
        params: &[
            Param {
                name: "token",
                required: false,
                schema: component!("Token"),
            },
            Param {
                name: "user_id",
                required: false,
                schema: component!("UserId"),
            },
        ],
        result: r##"{"type":"object","properties":{"verify_token":{"$ref":"#/components/schemas/VerifyToken"},"email":{"$ref":"#/components/schemas/Email"},"expires_in":{"type":"integer","minimum":1}},"required":["verify_token","email","expires_in"],"additionalProperties":false}"##,
        handler: |c, p| email::request_verification(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.verify_email",
        summary: "Uses a pev_ token: sets email_verified, or moves a pending change to email (-32010 if the address was taken meanwhile). -32030 for any other token.",
        params: &[Param {
            name: "verify_token",
            required: true,
            schema: component!("Token"),
        }],
        result: r##"{"type":"object","properties":{"user_id":{"$ref":"#/components/schemas/UserId"},"email":{"$ref":"#/components/schemas/Email"}},"required":["user_id","email"],"additionalProperties":false}"##,
        handler: |c, p| email::verify(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.change_email",
        summary: "With the password, a pev_ token for a new address; the old one stays until the token is verified.",
        params: &[
            TOKEN,
            PASSWORD_PARAM,
            Param {
                name: "new_email",
                required: true,
                schema: EMAIL,
            },
            Param {
                name: "idempotency_key",
                required: false,
                schema: component!("IdempotencyKey"),
            },
        ],
        result: r##"{"type":"object","properties":{"verify_token":{"$ref":"#/components/schemas/VerifyToken"},"expires_in":{"type":"integer","minimum":1}},"required":["verify_token","expires_in"],"additionalProperties":false}"##,
        handler: |c, p| email::change(c, p).map(Output::from),
        hashes_passwords: true,
    },
    Method {
        name: "auth.export_account",
        summary: "Everything stored about the token's own account, as user.export.",
        params: &[TOKEN],
        result: component!("Export"),
        handler: |c, p| account::export(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.delete_account",
        summary: "Erases the token's own account, as user.delete: the password, and a TOTP or recovery code when TOTP is on.",
        params: &[
            TOKEN,
            PASSWORD_PARAM,
            Param {
                name: "code",
                required: false,
                schema: r##"{"anyOf":[{"$ref":"#/components/schemas/TotpCode"},{"$ref":"#/components/schemas/RecoveryCode"}],"description":"Required while TOTP is on: a current TOTP code, or an unused recovery code."}"##,
            },
        ],
        result: DELETED,
        handler: |c, p| account::delete(c, p).map(Output::from),
        hashes_passwords: true,
    },
    Method {
        name: "auth.mfa.setup_totp",
        summary: "Starts TOTP enrolment: a new secret, pending until auth.mfa.confirm_totp; -32010 (field mfa) while TOTP is enabled.",
        params: &[TOKEN],
        result: r#"{"type":"object","required":["secret","otpauth_uri"],"properties":{"secret":{"type":"string","pattern":"^[A-Z2-7]{32}$","description":"160 bits, base32 (RFC 4648) without padding."},"otpauth_uri":{"type":"string","pattern":"^otpauth://totp/[^:/?]+:[a-z0-9_.-]{3,32}\\?secret=[A-Z2-7]{32}&issuer=[^&]+$","description":"otpauth://totp/<issuer>:<username>?secret=...&issuer=<issuer>; SHA-1, 6 digits and 30 s are the defaults it leaves out. The issuer is [AUTH] MFA_ISSUER, percent-encoded."}},"additionalProperties":false}"#,
        handler: |c, p| mfa::setup_totp(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.mfa.confirm_totp",
        summary: "Enables the pending TOTP secret with a current code; answers 10 single-use recovery codes, shown once.",
        params: &[
            TOKEN,
            Param {
                name: "code",
                required: true,
                schema: TOTP_CODE,
            },
        ],
        result: r#"{"type":"object","required":["recovery_codes"],"properties":{"recovery_codes":{"type":"array","minItems":10,"maxItems":10,"items":{"type":"string","pattern":"^[0-9a-f]{5}(-[0-9a-f]{5}){3}$"},"description":"Each usable once with auth.mfa.verify or auth.mfa.disable; shown only now."}},"additionalProperties":false}"#,
        handler: |c, p| mfa::confirm_totp(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.mfa.disable",
        summary: "Removes TOTP with the password and a current code or a recovery code; every other session is revoked.",
        params: &[
            TOKEN,
            PASSWORD_PARAM,
            Param {
                name: "code",
                required: true,
                schema: r##"{"anyOf":[{"$ref":"#/components/schemas/TotpCode"},{"$ref":"#/components/schemas/RecoveryCode"}],"description":"A current TOTP code, or an unused recovery code."}"##,
            },
        ],
        result: r#"{"type":"object","required":["disabled"],"properties":{"disabled":{"const":true}},"additionalProperties":false}"#,
        handler: |c, p| mfa::disable(c, p).map(Output::from),
        hashes_passwords: true,
    },
    Method {
        name: "auth.mfa.verify",
        summary: "Completes a login that answered mfa_required: the mfa_token with exactly one of code and recovery_code.",
        params: &[
            Param {
                name: "mfa_token",
                required: true,
                schema: component!("MfaToken"),
            },
            Param {
                name: "code",
                required: false,
                schema: TOTP_CODE,
            },
            Param {
                name: "recovery_code",
                required: false,
                schema: component!("RecoveryCode"),
            },
        ],
        result: TOKENS,
        handler: |c, p| login::verify(c, p).map(Output::from),
        hashes_passwords: false,
    },
];
