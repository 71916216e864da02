//! The one place where a failure becomes what a caller sees: a stable
//! JSON-RPC code, a plain message and small structured data. Causes (database
//! text, I/O errors) are logged with the request id and never sent out.

use serde_json::{json, Value};

use crate::domain::Invalid;

/// Which backing service failed, as named in `-32000` data and `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Postgres,
    Redis,
    Mongo,
}

impl Dependency {
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::Postgres => "postgres",
            Dependency::Redis => "redis",
            Dependency::Mongo => "mongo",
        }
    }
}

/// Every outcome label a call can end with: "ok", then each error's
/// [`AppError::outcome`] (a unit test holds the two together).
pub const OUTCOMES: &[&str] = &[
    "ok",
    "parse_error",
    "invalid_request",
    "method_not_found",
    "invalid_params",
    "internal_error",
    "unavailable",
    "timeout",
    "overloaded",
    "answer_too_large",
    "conflict",
    "invalid_credentials",
    "account_inactive",
    "not_found",
    "email_unverified",
    "rate_limited",
    "unauthorized",
    "forbidden",
];

/// `Clone`: one shared fetch's failure is every waiting caller's answer.
#[derive(Debug, Clone)]
pub enum AppError {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams(Invalid),
    /// A bug or an unexpected state; the string is for the log only.
    Internal(String),
    /// A dependency is down; the string is the cause, for the log only.
    Unavailable(Dependency, String),
    Timeout,
    Overloaded,
    /// This call's answer would pass `[SERVER] MAX_ANSWER_BYTES` (the limit).
    AnswerTooLarge {
        limit: usize,
    },
    Conflict(&'static str),
    InvalidCredentials,
    AccountInactive(String),
    NotFound,
    /// Only after a correct password, with `[AUTH] REQUIRE_VERIFIED_EMAIL`.
    EmailUnverified,
    RateLimited {
        retry_after: u64,
    },
    Unauthorized,
    Forbidden,
    /// The caller may call the method but not pass this param (`ip`
    /// without `@ip` in its `[CLIENTS]` patterns).
    ForbiddenParam(&'static str),
    /// A method this deployment does not offer until the named config
    /// section is set (`[WEBAUTHN]` for passkeys): -32601, saying which.
    NotConfigured(&'static str),
}

impl From<Invalid> for AppError {
    fn from(invalid: Invalid) -> AppError {
        AppError::InvalidParams(invalid)
    }
}

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: &'static str) -> AppError {
        AppError::InvalidParams(Invalid::new(field, reason))
    }

    pub fn code(&self) -> i64 {
        match self {
            AppError::ParseError => -32700,
            AppError::InvalidRequest => -32600,
            AppError::MethodNotFound | AppError::NotConfigured(_) => -32601,
            AppError::InvalidParams(_) => -32602,
            AppError::Internal(_) => -32603,
            AppError::Unavailable(..) => -32000,
            AppError::Timeout => -32001,
            AppError::Overloaded => -32002,
            AppError::AnswerTooLarge { .. } => -32003,
            AppError::Conflict(_) => -32010,
            AppError::InvalidCredentials => -32011,
            AppError::AccountInactive(_) => -32012,
            AppError::NotFound => -32013,
            AppError::EmailUnverified => -32014,
            AppError::RateLimited { .. } => -32029,
            AppError::Unauthorized => -32030,
            AppError::Forbidden | AppError::ForbiddenParam(_) => -32031,
        }
    }

    /// The label used in metrics and the access log.
    pub fn outcome(&self) -> &'static str {
        match self {
            AppError::ParseError => "parse_error",
            AppError::InvalidRequest => "invalid_request",
            AppError::MethodNotFound | AppError::NotConfigured(_) => "method_not_found",
            AppError::InvalidParams(_) => "invalid_params",
            AppError::Internal(_) => "internal_error",
            AppError::Unavailable(..) => "unavailable",
            AppError::Timeout => "timeout",
            AppError::Overloaded => "overloaded",
            AppError::AnswerTooLarge { .. } => "answer_too_large",
            AppError::Conflict(_) => "conflict",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::AccountInactive(_) => "account_inactive",
            AppError::NotFound => "not_found",
            AppError::EmailUnverified => "email_unverified",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden | AppError::ForbiddenParam(_) => "forbidden",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            AppError::ParseError => "Parse error",
            AppError::InvalidRequest => "Invalid Request",
            AppError::MethodNotFound => "Method not found",
            AppError::NotConfigured(_) => "Method not found: not configured on this server",
            AppError::InvalidParams(_) => "Invalid params",
            AppError::Internal(_) => "Internal error",
            AppError::Unavailable(..) => "Service unavailable",
            AppError::Timeout => "Request timed out",
            AppError::Overloaded => "Overloaded, retry later",
            AppError::AnswerTooLarge { .. } => "Answer too large",
            AppError::Conflict(_) => "Already exists",
            AppError::InvalidCredentials => "Invalid credentials",
            AppError::AccountInactive(_) => "Account inactive",
            AppError::NotFound => "Not found",
            AppError::EmailUnverified => "Email not verified",
            AppError::RateLimited { .. } => "Too many attempts",
            AppError::Unauthorized => "Unauthorized",
            AppError::Forbidden | AppError::ForbiddenParam(_) => "Forbidden",
        }
    }

    fn data(&self) -> Option<Value> {
        match self {
            AppError::InvalidParams(i) => Some(json!({"field": i.field, "reason": i.reason})),
            AppError::Unavailable(dep, _) => Some(json!({"dependency": dep.as_str()})),
            AppError::Conflict(field) | AppError::ForbiddenParam(field) => {
                Some(json!({"field": field}))
            }
            AppError::AccountInactive(state) => Some(json!({"state": state})),
            AppError::RateLimited { retry_after } => Some(json!({"retry_after": retry_after})),
            AppError::AnswerTooLarge { limit } => Some(json!({"limit": limit})),
            AppError::NotConfigured(section) => {
                Some(json!({"reason": "not_configured", "section": section}))
            }
            AppError::ParseError
            | AppError::InvalidRequest
            | AppError::MethodNotFound
            | AppError::Internal(_)
            | AppError::Timeout
            | AppError::Overloaded
            | AppError::InvalidCredentials
            | AppError::NotFound
            | AppError::EmailUnverified
            | AppError::Unauthorized
            | AppError::Forbidden => None,
        }
    }

    /// The JSON-RPC error object. Logs the hidden cause, if any, under `rid`.
    pub fn to_json(&self, rid: u64) -> Value {
        match self {
            AppError::Internal(cause) => log::error!("rid={rid} internal error: {cause}"),
            AppError::Unavailable(dep, cause) => {
                log::warn!("rid={rid} {} unavailable: {cause}", dep.as_str())
            }
            _ => {}
        }
        self.public_json()
    }

    /// The JSON-RPC error object as sent, without logging anything (also
    /// what `rpc.discover` lists as each method's errors).
    pub fn public_json(&self) -> Value {
        let mut obj = json!({"code": self.code(), "message": self.message()});
        if let (Some(data), Some(map)) = (self.data(), obj.as_object_mut()) {
            map.insert("data".into(), data);
        }
        obj
    }
}

/// An error and its causes, for the log: `postgres::Error` itself says only
/// `db error`; what the server said (message, detail, code) is its source.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// PostgreSQL failures: only an unreachable server is `unavailable` (a
/// lost or refused connection, a timeout, the server shutting down or out of
/// connections); anything else (an error the server reported about our
/// query, a value that does not decode) is a bug: `internal`.
impl From<postgres::Error> for AppError {
    fn from(e: postgres::Error) -> AppError {
        // Every error of a query on the primary passes here: one that says
        // the primary is gone or read-only retires the pool's connections.
        crate::store::pg::note_error(&e);
        let server_side = e.code().map(|c| c.code().get(..2).unwrap_or(""));
        // A read-only server took a write: no primary here (failing over).
        let read_only = e.code() == Some(&postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION);
        let unreachable = read_only
            || e.is_closed()
            || matches!(server_side, Some("08" | "57" | "53"))
            || (e.as_db_error().is_none()
                && (std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
                    || e.to_string().starts_with("timeout")));
        let cause = with_causes(&e);
        if unreachable {
            AppError::Unavailable(Dependency::Postgres, cause)
        } else {
            AppError::Internal(format!("postgres: {cause}"))
        }
    }
}

/// MongoDB failures: no server to talk to, a broken connection or a server
/// that gave up on time (`maxTimeMS`) is `unavailable`; MongoDB refusing a
/// document or a command, or a value that does not convert, is `internal`.
impl From<mongodb::error::Error> for AppError {
    fn from(e: mongodb::error::Error) -> AppError {
        use mongodb::error::ErrorKind;
        /// MaxTimeMSExpired: the server stopped at the limit we gave it.
        const MAX_TIME_EXPIRED: i32 = 50;
        let unreachable = match e.kind.as_ref() {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. } => true,
            ErrorKind::Command(c) => c.code == MAX_TIME_EXPIRED,
            _ => e.contains_label("NetworkError"),
        };
        if unreachable {
            AppError::Unavailable(Dependency::Mongo, e.to_string())
        } else {
            AppError::Internal(format!("mongo: {e}"))
        }
    }
}

impl From<crate::store::error::StoreError> for AppError {
    fn from(e: crate::store::error::StoreError) -> AppError {
        use crate::store::error::StoreError;
        match e {
            StoreError::Unreachable(dep, cause) => AppError::Unavailable(dep, cause),
            StoreError::Refused(dep, cause) => {
                AppError::Internal(format!("{}: {cause}", dep.as_str()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of each kind: the `match` makes a new variant a compile
    /// error here until it is listed.
    fn one_of_each() -> Vec<AppError> {
        let all = vec![
            AppError::ParseError,
            AppError::InvalidRequest,
            AppError::MethodNotFound,
            AppError::invalid("f", "r"),
            AppError::Internal(String::new()),
            AppError::Unavailable(Dependency::Redis, String::new()),
            AppError::Timeout,
            AppError::Overloaded,
            AppError::AnswerTooLarge { limit: 1 },
            AppError::Conflict("username"),
            AppError::InvalidCredentials,
            AppError::AccountInactive("locked".into()),
            AppError::NotFound,
            AppError::EmailUnverified,
            AppError::RateLimited { retry_after: 1 },
            AppError::Unauthorized,
            AppError::Forbidden,
            AppError::ForbiddenParam("ip"),
            AppError::NotConfigured("WEBAUTHN"),
        ];
        for e in &all {
            match e {
                AppError::ParseError
                | AppError::InvalidRequest
                | AppError::MethodNotFound
                | AppError::InvalidParams(_)
                | AppError::Internal(_)
                | AppError::Unavailable(..)
                | AppError::Timeout
                | AppError::Overloaded
                | AppError::AnswerTooLarge { .. }
                | AppError::Conflict(_)
                | AppError::InvalidCredentials
                | AppError::AccountInactive(_)
                | AppError::NotFound
                | AppError::EmailUnverified
                | AppError::RateLimited { .. }
                | AppError::Unauthorized
                | AppError::Forbidden
                | AppError::ForbiddenParam(_)
                | AppError::NotConfigured(_) => {}
            }
        }
        all
    }

    /// Metrics keep a series per outcome in `OUTCOMES`: an error whose
    /// label were missing there used to be counted as "ok".
    #[test]
    fn every_error_outcome_is_one_metrics_keep_and_ok_is_none_of_them() {
        for e in one_of_each() {
            assert!(OUTCOMES.contains(&e.outcome()), "{e:?}");
            assert_ne!(e.outcome(), "ok");
        }
        let labels: std::collections::HashSet<&str> =
            one_of_each().iter().map(AppError::outcome).collect();
        assert_eq!(labels.len() + 1, OUTCOMES.len(), "a label nothing answers");
    }

    #[test]
    fn hidden_causes_never_reach_the_caller() {
        let e = AppError::Unavailable(Dependency::Postgres, "password=secret host=x".into());
        let text = e.to_json(1).to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(e.to_json(1)["data"]["dependency"], "postgres");
        let e = AppError::Internal("relation \"users\" does not exist".into());
        assert!(!e.to_json(1).to_string().contains("relation"));
    }

    #[test]
    fn only_an_unreachable_mongo_is_unavailable_a_refusal_is_a_bug() {
        let io = mongodb::error::Error::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ));
        assert_eq!(AppError::from(io).code(), -32000);
        let refused = mongodb::error::Error::custom("a document MongoDB will not take");
        assert_eq!(AppError::from(refused).code(), -32603);
    }

    #[test]
    fn a_logged_cause_carries_its_whole_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("db error")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other(r#"relation "users" does not exist"#));
        assert_eq!(
            with_causes(&e),
            r#"db error: relation "users" does not exist"#
        );
    }

    #[test]
    fn invalid_params_name_field_and_reason() {
        let v = AppError::invalid("password", "too_weak").to_json(1);
        assert_eq!(v["code"], -32602);
        assert_eq!(v["data"]["field"], "password");
        assert_eq!(v["data"]["reason"], "too_weak");
    }
}
