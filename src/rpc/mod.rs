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

pub mod auth;
mod discover;
#[cfg(test)]
mod fuzz;
mod params;
pub mod user;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use serde_json::{json, Value};

use crate::config::ClientKey;
use crate::domain::{pattern_matches, IP_PATTERN};
use crate::error::AppError;
use crate::services::{Ctx, Services};
pub use params::Params;

pub type Handler = fn(&Ctx, &Params) -> Result<Output, AppError>;

/// A handler's result: a JSON value, or JSON text made earlier (a cached
/// User is answered without being parsed or serialized again).
pub enum Output {
    Value(Value),
    Raw(String),
}

impl From<Value> for Output {
    fn from(v: Value) -> Output {
        Output::Value(v)
    }
}

impl Output {
    fn write_to(&self, out: &mut String) {
        match self {
            Output::Value(v) => out.push_str(&v.to_string()),
            Output::Raw(text) => out.push_str(text),
        }
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
}

const SYSTEM: &[Method] = &[
    Method {
        name: "ping",
        summary: "Liveness of the RPC path itself: answers \"pong\".",
        params: &[],
        result: r#"{"const":"pong"}"#,
        handler: |_, _| Ok(json!("pong").into()),
    },
    Method {
        name: "rpc.discover",
        summary: "This service's OpenRPC document.",
        params: &[],
        result: r#"{"type":"object","required":["openrpc","info","methods"],"description":"An OpenRPC 1.3 document (https://spec.open-rpc.org)."}"#,
        handler: |c, _| Ok(discover::document(c.config()).into()),
    },
];

/// Every method, in the order `rpc.discover` lists them.
pub fn methods() -> impl Iterator<Item = &'static Method> {
    SYSTEM.iter().chain(auth::METHODS).chain(user::METHODS)
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
    pub body: Option<String>,
    pub calls: Vec<CallRecord>,
}

pub struct Request<'a> {
    pub svc: &'a Services,
    pub arrived: Instant,
    pub deadline: Instant,
    pub rid: u64,
    pub client: Option<&'a ClientKey>,
    /// The TCP peer's address (`None` only off the HTTP path).
    pub peer: Option<std::net::IpAddr>,
}

fn error_response(id: Value, e: &AppError, rid: u64) -> String {
    json!({"jsonrpc": "2.0", "error": e.to_json(rid), "id": id}).to_string()
}

fn result_response(id: &Value, result: &Output) -> String {
    let mut out = String::with_capacity(match result {
        // A `user.gets` answer is tens of kilobytes: one allocation, no regrowth.
        Output::Raw(text) => text.len() + 64,
        Output::Value(_) => 256,
    });
    out.push_str(r#"{"jsonrpc":"2.0","result":"#);
    result.write_to(&mut out);
    out.push_str(r#","id":"#);
    out.push_str(&id.to_string());
    out.push('}');
    out
}

/// Handles a whole body: one call or a batch.
pub fn handle(req: &Request, body: &[u8]) -> Answer {
    let mut calls = Vec::new();
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            record(req, &mut calls, "unknown", "parse_error");
            return Answer {
                body: Some(error_response(Value::Null, &AppError::ParseError, req.rid)),
                calls,
            };
        }
    };
    let body = match parsed {
        Value::Array(items)
            if items.is_empty() || items.len() > req.svc.config.server.max_batch =>
        {
            record(req, &mut calls, "unknown", "invalid_request");
            Some(error_response(
                Value::Null,
                &AppError::InvalidRequest,
                req.rid,
            ))
        }
        Value::Array(items) => {
            let answers: Vec<String> = items
                .iter()
                .filter_map(|item| call(req, item, &mut calls))
                .collect();
            (!answers.is_empty()).then(|| format!("[{}]", answers.join(",")))
        }
        single => call(req, &single, &mut calls),
    };
    Answer { body, calls }
}

/// Methods that hash passwords; every other call that reaches its handler
/// counts as token traffic for the hashing lane.
const HASHING: &[&str] = &[
    "auth.login",
    "auth.register",
    "auth.change_password",
    "auth.mfa.disable",
    "auth.reset_password",
    "user.import",
];

fn record(req: &Request, calls: &mut Vec<CallRecord>, method: &'static str, outcome: &'static str) {
    req.svc
        .metrics
        .observe(method, outcome, req.arrived.elapsed());
    calls.push(CallRecord { method, outcome });
}

/// One call; `None` for a notification.
fn call(req: &Request, raw: &Value, calls: &mut Vec<CallRecord>) -> Option<String> {
    let obj = raw.as_object();
    let id = obj.and_then(|o| o.get("id"));
    let valid_id = matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    );
    let method_name = obj.and_then(|o| o.get("method")).and_then(Value::as_str);
    let well_formed = obj.is_some_and(|o| o.get("jsonrpc") == Some(&json!("2.0")))
        && valid_id
        && method_name.is_some()
        && matches!(
            obj.and_then(|o| o.get("params")),
            None | Some(Value::Object(_) | Value::Array(_))
        );
    let answer_id = if valid_id {
        id.cloned().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let (Some(name), true) = (method_name, well_formed) else {
        record(req, calls, "unknown", "invalid_request");
        return Some(error_response(
            answer_id,
            &AppError::InvalidRequest,
            req.rid,
        ));
    };
    let is_notification = id.is_none();
    let method = find(req.svc, name);
    let label = method.map_or("unknown", |m| m.name);
    let result = match method {
        None => Err(AppError::MethodNotFound),
        Some(m) => run(req, m, obj.and_then(|o| o.get("params"))),
    };
    record(
        req,
        calls,
        label,
        result.as_ref().map_or_else(AppError::outcome, |_| "ok"),
    );
    if is_notification {
        if let Err(e) = &result {
            e.to_json(req.rid); // logs a hidden cause, if any
        }
        return None;
    }
    Some(match result {
        Ok(output) => result_response(&answer_id, &output),
        Err(e) => error_response(answer_id, &e, req.rid),
    })
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
        deadline: req.deadline,
        rid: req.rid,
        peer: req.peer,
        client: req.client.map(|c| c.name.as_str()),
    };
    ctx.check_deadline()?;
    // Only a call that gets this far is token traffic: junk (parse errors,
    // invalid requests, unknown methods or params) must not be able to
    // slow the hashing lane down.
    if !HASHING.contains(&method.name) {
        req.svc.token_calls.note();
    }
    match catch_unwind(AssertUnwindSafe(|| (method.handler)(&ctx, &params))) {
        Ok(result) => result,
        Err(_) => Err(AppError::Internal(format!("{} panicked", method.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(svc: &Services) -> Request<'_> {
        let now = Instant::now();
        Request {
            svc,
            arrived: now,
            // Far enough that a descheduled test thread never meets it.
            deadline: now + Duration::from_secs(60),
            rid: 1,
            client: None,
            peer: None,
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
            assert!(answer.body.is_some_and(|b| b.contains("\"error\"")));
        }
        assert_eq!(svc.token_calls.recent(), 0);
        // The counter forgets a call after 100-200 ms: a check that a
        // descheduled thread made later proves nothing, so the call is
        // made again rather than the check skipped.
        let checked_in_time = (0..20).any(|_| {
            let called = Instant::now();
            handle(&req, br#"{"jsonrpc":"2.0","method":"ping","id":1}"#);
            let counted = svc.token_calls.recent();
            let in_time = called.elapsed() < Duration::from_millis(100);
            assert!(counted >= 1 || !in_time, "a ping was not counted");
            in_time
        });
        assert!(checked_in_time, "twenty pings each took over 100 ms");
    }
}
