//! `user.*`: user information, assembled by the model layer in parallel and
//! batch-first (`user.gets` of 1000 ids costs the same round trips as one).

mod import;
mod lifecycle;
mod read;
mod write;

use super::{Method, Output, Param};

const USER_ID: Param = Param {
    name: "user_id",
    required: true,
    schema: component!("UserId"),
};
const USER: &str = component!("User");
const LIMIT: Param = Param {
    name: "limit",
    required: false,
    schema: component!("Limit"),
};

pub const METHODS: &[Method] = &[
    Method {
        name: "user.get",
        summary: "One user, or -32013.",
        params: &[USER_ID],
        result: USER,
        handler: read::get,
        hashes_passwords: false,
    },
    Method {
        name: "user.gets",
        summary: "Up to 1000 users in request order (each id once); unknown ids in `missing`.",
        params: &[Param {
            name: "user_ids",
            required: true,
            schema: component!("UserIds"),
        }],
        result: r##"{"type":"object","properties":{"users":{"type":"array","items":{"$ref":"#/components/schemas/User"}},"missing":{"type":"array","items":{"type":"integer"}}},"required":["users","missing"],"additionalProperties":false}"##,
        handler: read::gets,
        hashes_passwords: false,
    },
    Method {
        name: "user.find",
        summary: "The user with this username or email, or -32013.",
        params: &[
            Param {
                name: "username",
                required: false,
                schema: component!("Username"),
            },
            Param {
                name: "email",
                required: false,
                schema: component!("Email"),
            },
        ],
        result: USER,
        handler: read::find,
        hashes_passwords: false,
    },
    Method {
        name: "user.search",
        summary:
            "Users by username/email prefix, state, role and creation time, keyset-paginated by id.",
        params: &[
            Param {
                name: "query",
                required: false,
                schema: component!("SearchQuery"),
            },
            Param {
                name: "state",
                required: false,
                schema: component!("UserState"),
            },
            Param {
                name: "role",
                required: false,
                schema: component!("Role"),
            },
            Param {
                name: "created_after",
                required: false,
                schema: component!("DateTime"),
            },
            Param {
                name: "created_before",
                required: false,
                schema: component!("DateTime"),
            },
            Param {
                name: "cursor",
                required: false,
                schema: component!("Cursor"),
            },
            LIMIT,
        ],
        result: r##"{"type":"object","properties":{"users":{"type":"array","items":{"$ref":"#/components/schemas/User"}},"next_cursor":{"oneOf":[{"$ref":"#/components/schemas/Cursor"},{"type":"null"}]}},"required":["users","next_cursor"],"additionalProperties":false}"##,
        handler: read::search,
        hashes_passwords: false,
    },
    Method {
        name: "user.update_profile",
        summary: "Sets profile fields; null removes one.",
        params: &[
            USER_ID,
            Param {
                name: "profile",
                required: true,
                schema: component!("ProfilePatch"),
            },
        ],
        result: USER,
        handler: write::update_profile,
        hashes_passwords: false,
    },
    Method {
        name: "user.set_state",
        summary: "Sets the account state; any state but active revokes every session.",
        params: &[
            USER_ID,
            Param {
                name: "state",
                required: true,
                schema: component!("UserState"),
            },
        ],
        result: USER,
        handler: write::set_state,
        hashes_passwords: false,
    },
    Method {
        name: "user.grant_role",
        summary: "Grants a role listed in [ROLES].",
        params: &[
            USER_ID,
            Param {
                name: "role",
                required: true,
                schema: component!("ConfiguredRole"),
            },
        ],
        result: USER,
        handler: write::grant_role,
        hashes_passwords: false,
    },
    Method {
        name: "user.revoke_role",
        summary: "Revokes a role (also one [ROLES] no longer lists).",
        params: &[
            USER_ID,
            Param {
                name: "role",
                required: true,
                schema: component!("Role"),
            },
        ],
        result: USER,
        handler: write::revoke_role,
        hashes_passwords: false,
    },
    Method {
        name: "user.reset_mfa",
        summary: "Removes a user's second factor (a lost authenticator) and revokes every session of that user.",
        params: &[USER_ID],
        result: USER,
        handler: write::reset_mfa,
        hashes_passwords: false,
    },
    Method {
        name: "user.login_history",
        summary: "Recent login attempts of a user, newest first.",
        params: &[USER_ID, LIMIT],
        result: r##"{"type":"object","properties":{"events":{"type":"array","items":{"$ref":"#/components/schemas/LoginEvent"}}},"required":["events"],"additionalProperties":false}"##,
        handler: |c, p| read::login_history(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "user.update_account",
        summary: "Changes the username, the email or whether the email counts as verified (a new email is unverified unless said); a username given up is held from other accounts for [AUTH] USERNAME_HOLD_DAYS.",
        params: &[
            USER_ID,
            Param {
                name: "username",
                required: false,
                schema: component!("Username"),
            },
            Param {
                name: "email",
                required: false,
                schema: component!("Email"),
            },
            Param {
                name: "email_verified",
                required: false,
                schema: r#"{"type":"boolean"}"#,
            },
        ],
        result: USER,
        handler: lifecycle::update_account,
        hashes_passwords: false,
    },
    Method {
        name: "user.export",
        summary: "Everything stored about the person: account, roles, sessions, second factor, passkeys, profile and login events; never a hash, token or secret.",
        params: &[USER_ID],
        result: component!("Export"),
        handler: |c, p| lifecycle::export(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "user.delete",
        summary: "Erases the account: every PostgreSQL row and MongoDB document of the user (the MongoDB part finished later if MongoDB is down); its tokens dead everywhere within 1 s; username and email free again.",
        params: &[USER_ID],
        result: super::auth::DELETED,
        handler: |c, p| lifecycle::delete(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "user.import",
        summary: "Creates up to 1000 accounts, keeping a given user_id; each row all-or-nothing, errors reported by index.",
        params: &[
            Param {
                name: "users",
                required: true,
                schema: component!("ImportRows"),
            },
            Param {
                name: "idempotency_key",
                required: false,
                schema: component!("IdempotencyKey"),
            },
        ],
        result: r#"{"type":"object","properties":{"imported":{"type":"integer","minimum":0},"errors":{"type":"array","items":{"type":"object","properties":{"index":{"type":"integer","minimum":0},"code":{"type":"integer"},"field":{"type":"string"},"reason":{"type":"string"}},"required":["index","code"],"additionalProperties":false}}},"required":["imported","errors"],"additionalProperties":false}"#,
        handler: |c, p| import::import(c, p).map(Output::from),
        hashes_passwords: true,
    },
];
