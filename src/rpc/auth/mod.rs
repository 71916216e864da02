//! `auth.*`: registration, login, tokens, sessions, permission checks and
//! password resets, the part of the service other services call on every
//! request they serve.

mod login;
mod password;
mod tokens;

use super::{Method, Output, Param};

const TOKEN: Param = Param {
    name: "token",
    required: true,
    schema: r#"{"type":"string"}"#,
};
const PASSWORD: &str = r#"{"type":"string","minLength":8,"description":"8-72 bytes of UTF-8"}"#;
const USERNAME: &str = r#"{"type":"string","pattern":"^[a-z0-9_.-]{3,32}$"}"#;
const TOKENS: &str = r#"{"type":"object","required":["user_id","session_id","access_token","refresh_token","token_type","expires_in","refresh_expires_in"],"properties":{"user_id":{"type":"integer"},"session_id":{"type":"integer"},"access_token":{"type":"string"},"refresh_token":{"type":"string"},"token_type":{"const":"Bearer"},"expires_in":{"type":"integer"},"refresh_expires_in":{"type":"integer"}}}"#;
const REVOKED_N: &str = r#"{"type":"object","properties":{"revoked":{"type":"integer"}}}"#;

pub const METHODS: &[Method] = &[
    Method {
        name: "auth.register",
        summary: "Creates an account; the password must meet the policy.",
        params: &[
            Param {
                name: "username",
                required: true,
                schema: USERNAME,
            },
            Param {
                name: "password",
                required: true,
                schema: PASSWORD,
            },
            Param {
                name: "email",
                required: false,
                schema: r#"{"type":"string","format":"email"}"#,
            },
            Param {
                name: "profile",
                required: false,
                schema: r#"{"type":"object"}"#,
            },
        ],
        result: r#"{"type":"object","properties":{"user_id":{"type":"integer"}}}"#,
        handler: |c, p| password::register(c, p).map(Output::from),
    },
    Method {
        name: "auth.login",
        summary: "Checks a password and opens a session: an access and a refresh token.",
        params: &[
            Param {
                name: "username",
                required: true,
                schema: r#"{"type":"string","description":"a username or an email"}"#,
            },
            Param {
                name: "password",
                required: true,
                schema: PASSWORD,
            },
            Param {
                name: "ip",
                required: false,
                schema: r#"{"type":"string"}"#,
            },
            Param {
                name: "user_agent",
                required: false,
                schema: r#"{"type":"string"}"#,
            },
        ],
        result: TOKENS,
        handler: |c, p| login::login(c, p).map(Output::from),
    },
    Method {
        name: "auth.introspect",
        summary:
            "What an access token stands for; {active:false} for any token that is not active.",
        params: &[TOKEN],
        result: r#"{"type":"object","properties":{"active":{"type":"boolean"},"user_id":{"type":"integer"},"username":{"type":"string"},"session_id":{"type":"integer"},"roles":{"type":"array","items":{"type":"string"}},"exp":{"type":"integer"},"iat":{"type":"integer"}}}"#,
        handler: |c, p| tokens::introspect(c, p).map(Output::from),
    },
    Method {
        name: "auth.authorize",
        summary: "Whether the token's user holds a permission through its roles.",
        params: &[
            TOKEN,
            Param {
                name: "permission",
                required: true,
                schema: r#"{"type":"string"}"#,
            },
        ],
        result: r#"{"type":"object","properties":{"allowed":{"type":"boolean"},"user_id":{"type":"integer"},"reason":{"type":"string"}}}"#,
        handler: |c, p| tokens::authorize(c, p).map(Output::from),
    },
    Method {
        name: "auth.refresh",
        summary: "Trades a refresh token for a new pair; a spent one revokes its whole session.",
        params: &[Param {
            name: "refresh_token",
            required: true,
            schema: r#"{"type":"string"}"#,
        }],
        result: TOKENS,
        handler: |c, p| login::refresh(c, p).map(Output::from),
    },
    Method {
        name: "auth.logout",
        summary: "Revokes the session of an access or refresh token.",
        params: &[TOKEN],
        result: r#"{"type":"object","properties":{"revoked":{"type":"boolean"}}}"#,
        handler: |c, p| tokens::logout(c, p).map(Output::from),
    },
    Method {
        name: "auth.logout_all",
        summary: "Revokes every session of the token's user.",
        params: &[TOKEN],
        result: REVOKED_N,
        handler: |c, p| tokens::logout_all(c, p).map(Output::from),
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
                schema: PASSWORD,
            },
        ],
        result: REVOKED_N,
        handler: |c, p| password::change_password(c, p).map(Output::from),
    },
    Method {
        name: "auth.sessions",
        summary: "The live sessions of the token's user, newest first.",
        params: &[TOKEN],
        result: r#"{"type":"object","properties":{"sessions":{"type":"array","items":{"type":"object"}}}}"#,
        handler: |c, p| tokens::sessions(c, p).map(Output::from),
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
                schema: r#"{"type":"string"}"#,
            },
        ],
        result: r#"{"type":"object","properties":{"user_id":{"type":"integer"},"reset_token":{"type":"string"},"expires_in":{"type":"integer"}}}"#,
        handler: |c, p| password::request_reset(c, p).map(Output::from),
    },
    Method {
        name: "auth.reset_password",
        summary: "Sets a new password with a reset token; every session is revoked.",
        params: &[
            Param {
                name: "reset_token",
                required: true,
                schema: r#"{"type":"string"}"#,
            },
            Param {
                name: "new_password",
                required: true,
                schema: PASSWORD,
            },
        ],
        result: REVOKED_N,
        handler: |c, p| password::reset_password(c, p).map(Output::from),
    },
];
