//! `user.*`: user information, assembled by the model layer in parallel and
//! batch-first (`user.gets` of 1000 ids costs the same round trips as one).

mod import;
mod read;
mod write;

use super::{Method, Output, Param};

const USER_ID: Param = Param {
    name: "user_id",
    required: true,
    schema: r#"{"type":"integer"}"#,
};
const USER: &str = r##"{"$ref":"#/components/schemas/User","type":"object","properties":{"user_id":{"type":"integer"},"username":{"type":"string"},"email":{"type":["string","null"]},"state":{"enum":["active","disabled","locked"]},"roles":{"type":"array","items":{"type":"string"}},"profile":{"type":"object"},"created_at":{"type":"string","format":"date-time"},"updated_at":{"type":"string","format":"date-time"}}}"##;
const ROLE: Param = Param {
    name: "role",
    required: true,
    schema: r#"{"type":"string"}"#,
};

pub const METHODS: &[Method] = &[
    Method {
        name: "user.get",
        summary: "One user, or -32013.",
        params: &[USER_ID],
        result: USER,
        handler: read::get,
    },
    Method {
        name: "user.gets",
        summary: "Up to 1000 users in request order (each id once); unknown ids in `missing`.",
        params: &[Param {
            name: "user_ids",
            required: true,
            schema: r#"{"type":"array","items":{"type":"integer"},"maxItems":1000}"#,
        }],
        result: r#"{"type":"object","properties":{"users":{"type":"array"},"missing":{"type":"array","items":{"type":"integer"}}}}"#,
        handler: read::gets,
    },
    Method {
        name: "user.find",
        summary: "The user with this username or email, or -32013.",
        params: &[
            Param {
                name: "username",
                required: false,
                schema: r#"{"type":"string"}"#,
            },
            Param {
                name: "email",
                required: false,
                schema: r#"{"type":"string"}"#,
            },
        ],
        result: USER,
        handler: read::find,
    },
    Method {
        name: "user.search",
        summary:
            "Users by username/email prefix, state, role and creation time, keyset-paginated by id.",
        params: &[
            Param {
                name: "query",
                required: false,
                schema: r#"{"type":"string"}"#,
            },
            Param {
                name: "state",
                required: false,
                schema: r#"{"enum":["active","disabled","locked"]}"#,
            },
            Param {
                name: "role",
                required: false,
                schema: r#"{"type":"string"}"#,
            },
            Param {
                name: "created_after",
                required: false,
                schema: r#"{"type":"string","format":"date-time"}"#,
            },
            Param {
                name: "created_before",
                required: false,
                schema: r#"{"type":"string","format":"date-time"}"#,
            },
            Param {
                name: "cursor",
                required: false,
                schema: r#"{"type":"string"}"#,
            },
            Param {
                name: "limit",
                required: false,
                schema: r#"{"type":"integer","minimum":1,"maximum":100,"default":20}"#,
            },
        ],
        result: r#"{"type":"object","properties":{"users":{"type":"array"},"next_cursor":{"type":["string","null"]}}}"#,
        handler: read::search,
    },
    Method {
        name: "user.update_profile",
        summary: "Sets profile fields; null removes one.",
        params: &[
            USER_ID,
            Param {
                name: "profile",
                required: true,
                schema: r#"{"type":"object"}"#,
            },
        ],
        result: USER,
        handler: write::update_profile,
    },
    Method {
        name: "user.set_state",
        summary: "Sets the account state; any state but active revokes every session.",
        params: &[
            USER_ID,
            Param {
                name: "state",
                required: true,
                schema: r#"{"enum":["active","disabled","locked"]}"#,
            },
        ],
        result: USER,
        handler: write::set_state,
    },
    Method {
        name: "user.grant_role",
        summary: "Grants a role listed in [ROLES].",
        params: &[USER_ID, ROLE],
        result: USER,
        handler: write::grant_role,
    },
    Method {
        name: "user.revoke_role",
        summary: "Revokes a role.",
        params: &[USER_ID, ROLE],
        result: USER,
        handler: write::revoke_role,
    },
    Method {
        name: "user.login_history",
        summary: "Recent login attempts of a user, newest first.",
        params: &[
            USER_ID,
            Param {
                name: "limit",
                required: false,
                schema: r#"{"type":"integer","minimum":1,"maximum":100,"default":20}"#,
            },
        ],
        result: r#"{"type":"object","properties":{"events":{"type":"array"}}}"#,
        handler: |c, p| read::login_history(c, p).map(Output::from),
    },
    Method {
        name: "user.import",
        summary: "Creates up to 1000 accounts, keeping a given user_id; each row all-or-nothing, errors reported by index.",
        params: &[Param {
            name: "users",
            required: true,
            schema: r#"{"type":"array","maxItems":1000,"items":{"type":"object","required":["username"],"additionalProperties":false,"properties":{"user_id":{"type":"integer","minimum":1,"description":"kept as given; -32010 field user_id when taken; later ids are allocated above it"},"username":{"type":"string"},"email":{"type":"string"},"password":{"type":"string","minLength":8,"maxLength":72},"password_hash":{"type":"string","pattern":"^\\$2[aby]\\$","description":"bcrypt, cost at most [AUTH] BCRYPT_COST + 2"},"state":{"enum":["active","disabled","locked"]},"roles":{"type":"array","items":{"type":"string"}},"profile":{"type":"object"}}}}"#,
        }],
        result: r#"{"type":"object","properties":{"imported":{"type":"integer"},"errors":{"type":"array"}}}"#,
        handler: |c, p| import::import(c, p).map(Output::from),
    },
];
