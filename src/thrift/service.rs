//! `UserService`'s two methods, run on the shared request workers like a
//! JSON-RPC call: the same queue (full: overloaded at once), the same
//! deadline (a call that waited past it is not run), the same hashing lane.
//!
//! `createUser` creates the account `user_<id>` with the given id (within
//! 1..2^53-1, as every kept id), storing a bcrypt hash of the given
//! password, or the password as is when it is a bcrypt hash already (of a
//! cost at most `BCRYPT_COST + 2`). A plain password meets the same policy
//! as `auth.register`'s (the Python service took anything, "123456" in its
//! own load test: that is refused now, -32602 `too_weak`).
//! `state` 0 (or none) is active, anything else disabled. `create_time` and
//! `update_time` are ignored: the account's times are those of the call.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use thrift::ApplicationErrorKind;

use super::wire::{Call, Reply, User};
use super::Shared;
use crate::domain::limits::MAX_USER_ID;
use crate::domain::{UserState, Username};
use crate::error::AppError;
use crate::http::next_rid;
use crate::model::imported::{self, Row, Secret};
use crate::model::password as pw;
use crate::services::{self, Ctx, Services};

/// Metric labels of the Thrift methods, beside the JSON-RPC ones.
pub const METHODS: &[&str] = &["thrift.ping", "thrift.createUser"];

/// How long past the deadline the reader waits for a worker's answer: a
/// call that started in time may finish a little late rather than be lost.
const GRACE: Duration = Duration::from_secs(1);

/// A failed call as the peer sees it: a `TApplicationException` whose
/// message is the JSON-RPC error object a `/rpc` caller would get (code,
/// message, data), so old callers can tell a conflict from an overload.
pub(super) struct Failure {
    pub outcome: &'static str,
    pub kind: ApplicationErrorKind,
    pub message: String,
}

impl Failure {
    /// Logs a hidden cause, if any, under `rid` (never sent to the peer).
    fn new(e: &AppError, rid: u64) -> Failure {
        let kind = match e {
            AppError::Internal(_) => ApplicationErrorKind::InternalError,
            AppError::MethodNotFound => ApplicationErrorKind::UnknownMethod,
            _ => ApplicationErrorKind::Unknown,
        };
        Failure {
            outcome: e.outcome(),
            kind,
            message: e.to_json(rid).to_string(),
        }
    }
}

/// Runs `call` on a worker and waits for its answer.
pub(super) fn submit(
    shared: &Shared,
    call: Call,
    deadline: Instant,
) -> (&'static str, Result<Reply, Failure>) {
    let method = match call {
        Call::Ping => METHODS[0],
        _ => METHODS[1],
    };
    let rid = next_rid();
    let arrived = Instant::now();
    let (tx, rx) = bounded(1);
    let task = Box::new(move |svc: &Services| {
        let result = if Instant::now() >= deadline {
            svc.metrics.expired.fetch_add(1, Ordering::Relaxed);
            Err(AppError::Timeout)
        } else {
            // The Thrift service makes no login: no address is counted.
            let ctx = Ctx {
                svc,
                call: services::Call {
                    rid,
                    arrived,
                    deadline,
                    peer: None,
                },
                client: None,
            };
            catch_unwind(AssertUnwindSafe(|| run(&ctx, call)))
                .unwrap_or_else(|_| Err(AppError::Internal(format!("{method} panicked"))))
        };
        let _ = tx.send(result.map_err(|e| Failure::new(&e, rid)));
    });
    if !shared.queue.try_submit(task) {
        shared.svc.metrics.shed.fetch_add(1, Ordering::Relaxed);
        return (method, Err(Failure::new(&AppError::Overloaded, rid)));
    }
    let answer = rx
        .recv_deadline(deadline + GRACE)
        .unwrap_or_else(|_| Err(Failure::new(&AppError::Timeout, rid)));
    (method, answer)
}

fn run(ctx: &Ctx, call: Call) -> Result<Reply, AppError> {
    match call {
        Call::Ping => {
            ctx.svc.model.note_token_call();
            Ok(Reply::Ping("pong"))
        }
        Call::CreateUser(user) => create_user(ctx, user).map(|_| Reply::CreateUser),
        Call::Unknown => Err(AppError::MethodNotFound),
    }
}

/// The username an account created over Thrift gets.
pub fn username_for(id: i64) -> String {
    format!("user_{id}")
}

fn create_user(ctx: &Ctx, user: User) -> Result<i64, AppError> {
    let id = match user.id {
        Some(id) if (1..=MAX_USER_ID).contains(&id) => id,
        Some(_) => return Err(AppError::invalid("id", "out_of_range")),
        None => return Err(AppError::invalid("id", "missing")),
    };
    let username = Username::parse(&username_for(id))?;
    let given = user
        .password
        .ok_or_else(|| AppError::invalid("password", "missing"))?;
    let secret = if pw::is_bcrypt(&given) {
        Secret::Hash(pw::acceptable_hash(&given, ctx.config().auth.bcrypt_cost)?.to_string())
    } else {
        Secret::Plain(given)
    };
    let state = match user.state {
        None | Some(0) => UserState::Active,
        Some(_) => UserState::Disabled,
    };
    let row = Row {
        id: Some(id),
        username,
        email: None,
        email_verified: false,
        secret,
        state,
        roles: Vec::new(),
        profile: None,
    };
    imported::import(ctx, std::slice::from_ref(&row))?
        .pop()
        .unwrap_or(Err(AppError::Internal("a row without an outcome".into())))
}
