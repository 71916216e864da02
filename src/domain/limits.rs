//! Bounds on params that have no domain type of their own, shared by the
//! handlers that enforce them and the schemas `rpc.discover` states. Text
//! bounds count characters, as JSON Schema's `maxLength` does.

/// `auth.login`'s `ip` and `user_agent`.
pub const IP_MAX_CHARS: usize = 64;
/// The `idempotency_key` of the writes that create something.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 64;
/// The largest id kept or handed out: 2^53 - 1, safe in every JSON client.
pub const MAX_USER_ID: i64 = (1 << 53) - 1;
pub const USER_AGENT_MAX_CHARS: usize = 512;
/// `auth.authorize`'s `permission`: no `*` (a wildcard is for `[ROLES]`,
/// not for a question) and no whitespace.
pub const PERMISSION_MAX_CHARS: usize = 128;
/// `user.search`'s `query` (a username or email prefix).
pub const SEARCH_QUERY_MAX_CHARS: usize = 254;
/// `user.gets`'s `user_ids` and `user.import`'s `users`.
pub const GETS_MAX_IDS: usize = 1000;
pub const IMPORT_MAX_ROWS: usize = 1000;
/// `limit` of `user.search` and `user.login_history`.
pub const PAGE_DEFAULT: i64 = 20;
pub const PAGE_MAX: i64 = 100;

/// Whether `permission` is one `auth.authorize` answers.
pub fn valid_permission(permission: &str) -> bool {
    !permission.is_empty()
        && permission.chars().count() <= PERMISSION_MAX_CHARS
        && !permission.contains('*')
        && !permission.chars().any(char::is_whitespace)
}
