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

use std::borrow::Cow;
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
    /// JSON text made earlier or fixed (ping's), written as it is.
    Raw(Cow<'static, str>),
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
        handler: |_, _| Ok(Output::Raw(Cow::Borrowed(r#""pong""#))),
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

/// The members of one call that the envelope reads; `None` for a body or
/// batch item that is not an object. `jsonrpc` and `method` only as text:
/// a member of another type counts as absent (both must be strings).
#[derive(Default)]
struct Members<'a> {
    jsonrpc: Option<&'a str>,
    method: Option<&'a str>,
    params: Option<&'a Value>,
    id: Option<&'a Value>,
}

impl<'a> Members<'a> {
    fn of(raw: &'a Value) -> Option<Members<'a>> {
        let o = raw.as_object()?;
        Some(Members {
            jsonrpc: o.get("jsonrpc").and_then(Value::as_str),
            method: o.get("method").and_then(Value::as_str),
            params: o.get("params"),
            id: o.get("id"),
        })
    }
}

impl<'a> Envelope<'a> {
    fn of(members: Option<Members<'a>>) -> Envelope<'a> {
        let object = members.is_some();
        let m = members.unwrap_or_default();
        let valid_id = matches!(
            m.id,
            None | Some(Value::Null | Value::Number(_) | Value::String(_))
        );
        let well_formed = object
            && m.jsonrpc == Some("2.0")
            && valid_id
            && matches!(m.params, None | Some(Value::Object(_) | Value::Array(_)));
        match (m.method, well_formed) {
            (Some(name), true) => Envelope {
                id: m.id.cloned(),
                call: Some((name, m.params)),
            },
            // Always answered, with the id when it is a valid one.
            _ => Envelope {
                id: Some(m.id.filter(|_| valid_id).cloned().unwrap_or(Value::Null)),
                call: None,
            },
        }
    }
}

/// A body that is one object (one call), its members parsed one by one:
/// only they become JSON values, not the object around them (a map of its
/// own, hashed and dropped, was half the cost of parsing a ping), and
/// `jsonrpc` and `method` are read as text borrowed from the body when they
/// hold no escapes. Read as `serde_json::Value` would read it: the last of
/// repeated members counts, other members are parsed (within the same
/// nesting limit) and dropped.
#[derive(Default)]
struct OneCall<'de> {
    /// `None` also when the last `jsonrpc` member was not a string.
    jsonrpc: Option<Cow<'de, str>>,
    method: Option<Cow<'de, str>>,
    params: Option<Value>,
    id: Option<Value>,
}

impl OneCall<'_> {
    fn members(&self) -> Members<'_> {
        Members {
            jsonrpc: self.jsonrpc.as_deref(),
            method: self.method.as_deref(),
            params: self.params.as_ref(),
            id: self.id.as_ref(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for OneCall<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OneCall<'de>, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OneCall<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC call object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OneCall<'de>, A::Error> {
                let mut call = OneCall::default();
                while let Some(key) = map.next_key::<Member>()? {
                    match key {
                        Member::Jsonrpc => call.jsonrpc = map.next_value::<Text>()?.0,
                        Member::Method => call.method = map.next_value::<Text>()?.0,
                        Member::Params => call.params = Some(map.next_value()?),
                        Member::Id => call.id = Some(map.next_value()?),
                        Member::Other => {
                            map.next_value::<Value>()?;
                        }
                    }
                }
                Ok(call)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A member that is read only when it is a string: its text (borrowed from
/// the body when it has no escapes), or `None` for a value of any other type
/// (an array or object still parsed as a `Value` would be, so that the
/// nesting limit applies as it does in a batch).
struct Text<'de>(Option<Cow<'de, str>>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text<'de>, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(s))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_unit<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_none<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Text<'de>, A::Error> {
                serde::Deserialize::deserialize(SeqAccessDeserializer::new(seq))
                    .map(|_: Value| Text(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Text<'de>, A::Error> {
                serde::Deserialize::deserialize(MapAccessDeserializer::new(map))
                    .map(|_: Value| Text(None))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A member's name, escaped or not.
enum Member {
    Jsonrpc,
    Method,
    Params,
    Id,
    Other,
}

impl<'de> serde::Deserialize<'de> for Member {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Member, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Member;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "jsonrpc" => Member::Jsonrpc,
                    "method" => Member::Method,
                    "params" => Member::Params,
                    "id" => Member::Id,
                    _ => Member::Other,
                })
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Handles a whole body: one call or a batch, answered within
/// `[SERVER] MAX_ANSWER_BYTES` (see `answer.rs`).
pub fn handle(req: &Request, body: &[u8]) -> Answer {
    let one_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let (one, parsed) = if one_object {
        match serde_json::from_slice::<OneCall>(body) {
            Ok(one) => (Some(one), Value::Null),
            Err(_) => return refusal(req, AppError::ParseError),
        }
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => (None, v),
            Err(_) => return refusal(req, AppError::ParseError),
        }
    };
    // A single call's envelope lives here, a batch's in a Vec.
    let alone;
    let batched: Vec<Envelope>;
    let (envelopes, batch) = match (&one, &parsed) {
        (Some(one), _) => {
            alone = Envelope::of(Some(one.members()));
            (std::slice::from_ref(&alone), false)
        }
        (None, Value::Array(items))
            if items.is_empty() || items.len() > req.svc.config.server.max_batch =>
        {
            return refusal(req, AppError::InvalidRequest)
        }
        (None, Value::Array(items)) => {
            batched = items.iter().map(|i| Envelope::of(Members::of(i))).collect();
            (batched.as_slice(), true)
        }
        (None, single) => {
            alone = Envelope::of(Members::of(single));
            (std::slice::from_ref(&alone), false)
        }
    };
    let limit = req.svc.config.server.max_answer_bytes;
    let Some(mut out) = AnswerBuf::new(limit, batch, envelopes.iter().map(|e| e.id.as_ref()))
    else {
        return refusal(req, AppError::AnswerTooLarge { limit });
    };
    let mut calls = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
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

    /// A single call is read member by member, a batch's items as JSON
    /// values: the two must agree on every object, whatever its members.
    #[test]
    fn a_call_alone_is_read_as_the_same_call_in_a_batch() {
        let svc = Services::offline();
        let req = request(&svc);
        let bodies = [
            r#"{"jsonrpc":"2.0","method":"ping","id":1}"#,
            r#"{"jsonrpc":"2.0","method":"nope","method":"ping","id":"a"}"#,
            r#"{"jsonrpc":"2.0","\u006dethod":"ping","id":2}"#,
            r#"{"jsonrpc":"2.0","method":"ping","id":3,"id":null}"#,
            r#"{"jsonrpc":"2.0","method":"ping","id":[1]}"#,
            r#"{"jsonrpc":"2.0","method":"ping","params":7,"id":4}"#,
            r#"{"jsonrpc":"2.0","method":"ping","params":{},"id":5,"extra":{"a":[1,{}]}}"#,
            r#"{"jsonrpc":"1.0","method":"ping","id":6}"#,
            r#"{"jsonrpc":2.0,"method":"ping","id":7}"#,
            r#"{"method":"ping","id":8}"#,
            r#"{"jsonrpc":"2.0","method":5,"id":9}"#,
            r#"{"jsonrpc":"2.0","method":"no.such","id":10}"#,
            r#"{"jsonrpc":"2.0","method":"ping","params":{"x":1},"id":11}"#,
            r#"{"jsonrpc":"2.0","method":"ping","id":12.5e0}"#,
            r#"{"jsonrpc":"2.0","method":"user.get","params":{"user_id":"x"},"id":13}"#,
            r#"{"id":14}"#,
            r#"{}"#,
            // jsonrpc and method read as text: escaped, or of another type.
            r#"{"jsonrpc":"2\u002e0","method":"p\u0069ng","id":15}"#,
            r#"{"jsonrpc":"2.0","method":"ping\n","id":16}"#,
            r#"{"jsonrpc":"2.0","method":null,"id":17}"#,
            r#"{"jsonrpc":"2.0","method":true,"id":18}"#,
            r#"{"jsonrpc":"2.0","method":-1.5,"id":19}"#,
            r#"{"jsonrpc":"2.0","method":["ping"],"id":20}"#,
            r#"{"jsonrpc":"2.0","method":{"name":"ping"},"id":21}"#,
            r#"{"jsonrpc":["2.0"],"method":"ping","id":22}"#,
            r#"{"jsonrpc":{"v":"2.0"},"method":"ping","id":23}"#,
            r#"{"jsonrpc":"2.0","method":"ping","method":7,"id":24}"#,
            r#"{"jsonrpc":"2.0","method":7,"method":"ping","id":25}"#,
        ];
        for body in bodies {
            let alone = handle(&req, body.as_bytes()).body.expect(body);
            let alone: Value = serde_json::from_slice(&alone).expect(body);
            let batch = handle(&req, format!("[{body}]").as_bytes())
                .body
                .expect(body);
            let batch: Value = serde_json::from_slice(&batch).expect(body);
            assert_eq!(Some(&alone), batch.get(0), "{body}");
        }
        // Not JSON, or JSON that is not one object, as before.
        for (body, code) in [
            ("{", -32700),
            (r#"{"a":1}x"#, -32700),
            ("5", -32600),
            ("[]", -32600),
        ] {
            let answer = handle(&req, body.as_bytes()).body.expect(body);
            let answer: Value = serde_json::from_slice(&answer).expect(body);
            assert_eq!(answer["error"]["code"], code, "{body}");
        }
        let deep = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"x\":{}1{},\"id\":1}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        // Past the limit in an ignored member, or in method or jsonrpc
        // (read as text when they are strings, parsed whole otherwise).
        let nested = |member: &str| {
            let mut call = json!({"jsonrpc": "2.0", "method": "ping", "id": 1});
            call[member] = json!("placeholder");
            call.to_string().replace(
                "\"placeholder\"",
                &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
            )
        };
        for body in [deep, nested("method"), nested("jsonrpc")] {
            let answer = handle(&req, body.as_bytes()).body.expect("deep");
            let answer: Value = serde_json::from_slice(&answer).expect("deep");
            assert_eq!(
                answer["error"]["code"], -32700,
                "nesting past serde_json's limit: {body}"
            );
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
