//! JSON-RPC 2.0: the envelope (single calls, batches, notifications, ids),
//! the method table, and dispatch. A handler sees typed params and returns
//! a value or an [`AppError`]; everything about the wire format is here.

/// A `$ref` to `components.schemas.<name>` of the OpenRPC document, as
/// schema text for the method tables.
macro_rules! component {
    ($name:literal) => {
        concat!(r##"{"$ref":"#/components/schemas/"##, $name, r#""}"#)
    };
}

mod answer;
pub mod auth;
mod discover;
mod events;
#[cfg(test)]
mod fuzz;
mod params;
pub mod user;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::ClientKey;
use crate::domain::{pattern_matches, IP_PATTERN};
use crate::error::AppError;
use crate::model::user::UserJson;
use crate::services::{Call, Ctx, Services};
use answer::AnswerBuf;
pub use params::Params;

pub type Handler = fn(&Ctx, &Params) -> Result<Output, AppError>;

/// A handler's result: a JSON value, or Users as the JSON text they are
/// cached as (answered without being parsed or serialized again: the text is
/// copied into the answer, once). Written by `answer.rs`.
pub enum Output {
    Value(Value),
    /// JSON text made earlier (a stored answer), written as it is.
    Raw(String),
    /// One User.
    User(Arc<UserJson>),
    /// `{"users": [User...], "<rest_key>": rest}`.
    Users {
        users: Vec<Arc<UserJson>>,
        rest_key: &'static str,
        rest: Value,
    },
}

impl From<Value> for Output {
    fn from(v: Value) -> Output {
        Output::Value(v)
    }
}

/// One parameter, as dispatch checks it and `rpc.discover` describes it.
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    /// A JSON Schema, as JSON text.
    pub schema: &'static str,
}

pub struct Method {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    /// The result's JSON Schema, as JSON text.
    pub result: &'static str,
    pub handler: Handler,
    /// It hashes or verifies passwords (on the hashing lane); every other
    /// call that reaches its handler counts as token traffic, which the
    /// lane yields the CPU to.
    pub hashes_passwords: bool,
}

const SYSTEM: &[Method] = &[
    Method {
        name: "ping",
        summary: "Liveness of the RPC path itself: answers \"pong\".",
        params: &[],
        result: r#"{"const":"pong"}"#,
        handler: |_, _| Ok(json!("pong").into()),
        hashes_passwords: false,
    },
    Method {
        name: "rpc.discover",
        summary: "This service's OpenRPC document.",
        params: &[],
        result: r#"{"type":"object","required":["openrpc","info","methods"],"description":"An OpenRPC 1.3 document (https://spec.open-rpc.org)."}"#,
        handler: |c, _| Ok(discover::document(c.config()).into()),
        hashes_passwords: false,
    },
];

/// Every method, in the order `rpc.discover` lists them.
pub fn methods() -> impl Iterator<Item = &'static Method> {
    SYSTEM
        .iter()
        .chain(auth::METHODS)
        .chain(auth::PASSKEY_METHODS)
        .chain(user::METHODS)
        .chain(events::METHODS)
}

pub fn method_names() -> Vec<&'static str> {
    methods().map(|m| m.name).collect()
}

/// Dispatched only when `[ENV] CURRENT_ENV = Test`, so the integration
/// tests can prove a panicking handler becomes -32603 and its worker lives.
const TEST_PANIC: Method = Method {
    name: "test.panic",
    summary: "Panics (Test environment only).",
    params: &[],
    result: "{}",
    handler: test_panic,
    hashes_passwords: false,
};

#[allow(clippy::panic)] // the one deliberate panic: it is what this method tests
fn test_panic(_: &Ctx, _: &Params) -> Result<Output, AppError> {
    panic!("test.panic was called")
}

fn find(svc: &Services, name: &str) -> Option<&'static Method> {
    if name == TEST_PANIC.name && svc.config.env == "Test" {
        return Some(&TEST_PANIC);
    }
    methods().find(|m| m.name == name)
}

/// What became of one call: for the access log and metrics.
pub struct CallRecord {
    pub method: &'static str,
    pub outcome: &'static str,
}

/// The answer to a whole HTTP body: `None` means 204 (notifications only).
pub struct Answer {
    pub body: Option<Vec<u8>>,
    pub calls: Vec<CallRecord>,
}

pub struct Request<'a> {
    pub svc: &'a Services,
    pub call: Call,
    pub client: Option<&'a ClientKey>,
}

/// One call of a body as read: the id its answer carries, and what to run.
struct Envelope<'a> {
    /// `None`: a notification, not answered.
    id: Option<Value>,
    /// The method's name and params; `None`: not a valid request.
    call: Option<(&'a str, Option<&'a Value>)>,
}

impl Envelope<'_> {
    fn of(raw: &Value) -> Envelope<'_> {
        let obj = raw.as_object();
        let id = obj.and_then(|o| o.get("id"));
        let valid_id = matches!(
            id,
            None | Some(Value::Null | Value::Number(_) | Value::String(_))
        );
        let method = obj.and_then(|o| o.get("method")).and_then(Value::as_str);
        let params = obj.and_then(|o| o.get("params"));
        let well_formed = obj.is_some_and(|o| o.get("jsonrpc") == Some(&json!("2.0")))
            && valid_id
            && matches!(params, None | Some(Value::Object(_) | Value::Array(_)));
        match (method, well_formed) {
            (Some(name), true) => Envelope {
                id: id.cloned(),
                call: Some((name, params)),
            },
            // Always answered, with the id when it is a valid one.
            _ => Envelope {
                id: Some(id.filter(|_| valid_id).cloned().unwrap_or(Value::Null)),
                call: None,
            },
        }
    }
}

/// Handles a whole body: one call or a batch, answered within
/// `[SERVER] MAX_ANSWER_BYTES` (see `answer.rs`).
pub fn handle(req: &Request, body: &[u8]) -> Answer {
    let mut calls = Vec::new();
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return refusal(req, AppError::ParseError),
    };
    let (items, batch) = match &parsed {
        Value::Array(items)
            if items.is_empty() || items.len() > req.svc.config.server.max_batch =>
        {
            return refusal(req, AppError::InvalidRequest)
        }
        Value::Array(items) => (items.iter().collect::<Vec<_>>(), true),
        single => (vec![single], false),
    };
    let envelopes: Vec<Envelope> = items.into_iter().map(Envelope::of).collect();
    let limit = req.svc.config.server.max_answer_bytes;
    let Some(mut out) = AnswerBuf::new(limit, batch, envelopes.iter().map(|e| e.id.as_ref()))
    else {
        return refusal(req, AppError::AnswerTooLarge { limit });
    };
    for envelope in &envelopes {
        call(req, envelope, &mut out, &mut calls);
    }
    Answer {
        body: out.finish(),
        calls,
    }
}

/// The whole body answered with one error (id null), nothing run.
fn refusal(req: &Request, e: AppError) -> Answer {
    let mut calls = Vec::new();
    record(req, &mut calls, "unknown", e.outcome());
    let body = match e {
        AppError::AnswerTooLarge { limit } => AnswerBuf::refused(limit),
        e => json!({"jsonrpc": "2.0", "error": e.to_json(req.call.rid), "id": null})
            .to_string()
            .into_bytes(),
    };
    Answer {
        body: Some(body),
        calls,
    }
}

fn record(req: &Request, calls: &mut Vec<CallRecord>, method: &'static str, outcome: &'static str) {
    req.svc
        .metrics
        .observe(method, outcome, req.call.arrived.elapsed());
    calls.push(CallRecord { method, outcome });
}

/// Runs one call and writes its answer (none for a notification).
fn call(req: &Request, envelope: &Envelope, out: &mut AnswerBuf, calls: &mut Vec<CallRecord>) {
    let (label, result) = match envelope.call {
        None => ("unknown", Err(AppError::InvalidRequest)),
        Some((name, params)) => match find(req.svc, name) {
            None => ("unknown", Err(AppError::MethodNotFound)),
            Some(m) => (m.name, run(req, m, params)),
        },
    };
    let outcome = match &envelope.id {
        None => {
            if let Err(e) = &result {
                e.to_json(req.call.rid); // logs a hidden cause, if any
            }
            result.as_ref().map_or_else(AppError::outcome, |_| "ok")
        }
        Some(id) if !out.answer(id, &result, req.call.rid) => "answer_too_large",
        Some(_) => result.as_ref().map_or_else(AppError::outcome, |_| "ok"),
    };
    record(req, calls, label, outcome);
}

fn run(req: &Request, method: &Method, raw_params: Option<&Value>) -> Result<Output, AppError> {
    if let Some(client) = req.client {
        if !client
            .methods
            .iter()
            .any(|p| pattern_matches(p, method.name))
        {
            return Err(AppError::Forbidden);
        }
        // The end user's address decides which login limits apply: only a
        // client trusted to state it may (a gateway that saw the user).
        let states_ip = raw_params
            .and_then(Value::as_object)
            .and_then(|o| o.get("ip"))
            .is_some_and(|v| !v.is_null());
        if states_ip && !client.methods.iter().any(|p| p == IP_PATTERN) {
            return Err(AppError::ForbiddenParam("ip"));
        }
    }
    let names: Vec<&str> = method.params.iter().map(|p| p.name).collect();
    let params = Params::new(raw_params, &names)?;
    let ctx = Ctx {
        svc: req.svc,
        call: req.call,
        client: req.client.map(|c| c.name.as_str()),
    };
    ctx.check_deadline()?;
    // Only a call that gets this far is token traffic: junk (parse errors,
    // invalid requests, unknown methods or params) must not be able to
    // slow the hashing lane down.
    if !method.hashes_passwords {
        req.svc.model.note_token_call();
    }
    match catch_unwind(AssertUnwindSafe(|| (method.handler)(&ctx, &params))) {
        Ok(result) => result,
        Err(_) => Err(AppError::Internal(format!("{} panicked", method.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn request(svc: &Services) -> Request<'_> {
        let now = Instant::now();
        Request {
            svc,
            call: Call {
                rid: 1,
                arrived: now,
                // Far enough that a descheduled test thread never meets it.
                deadline: now + Duration::from_secs(60),
                peer: None,
            },
            client: None,
        }
    }

    #[test]
    fn only_calls_that_reach_a_handler_count_as_token_traffic() {
        let svc = Services::offline();
        let req = request(&svc);
        let junk: [&[u8]; 6] = [
            b"{",
            br#"{"jsonrpc":"1.0","method":"ping","id":1}"#,
            b"[]",
            br#"[1,2,3]"#,
            br#"{"jsonrpc":"2.0","method":"no.such","id":1}"#,
            br#"{"jsonrpc":"2.0","method":"ping","params":{"x":1},"id":1}"#,
        ];
        for body in junk {
            let answer = handle(&req, body);
            let body = String::from_utf8(answer.body.unwrap()).unwrap();
            assert!(body.contains("\"error\""), "{body}");
        }
        assert_eq!(svc.model.recent_token_calls(), 0);
        // The counter forgets a call after 100-200 ms: a check that a
        // descheduled thread made later proves nothing, so the call is
        // made again rather than the check skipped.
        let checked_in_time = (0..20).any(|_| {
            let called = Instant::now();
            handle(&req, br#"{"jsonrpc":"2.0","method":"ping","id":1}"#);
            let counted = svc.model.recent_token_calls();
            let in_time = called.elapsed() < Duration::from_millis(100);
            assert!(counted >= 1 || !in_time, "a ping was not counted");
            in_time
        });
        assert!(checked_in_time, "twenty pings each took over 100 ms");
    }
}
