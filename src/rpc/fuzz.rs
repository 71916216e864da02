//! Fuzzing the JSON-RPC path in process: random bodies (raw bytes, mangled
//! JSON, and calls of every method with plausible or hostile params) through
//! [`handle`]: the envelope, dispatch and each handler's params parsing.
//! Dependencies are unreachable ([`Services::offline`]) and the deadline is
//! short, so a call that gets past its params fails fast at the first
//! dependency. Whatever the body: no panic, no internal error, an answer
//! that is JSON-RPC 2.0. The same inputs reach the real binary over HTTP in
//! `tests/api/fuzz.rs`. A crash found here is kept as a named test below.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use super::{handle, methods, Request};
use crate::services::Call;
use crate::services::Services;

#[path = "../../tests/fuzz/strategies.rs"]
mod strategies;

fn services() -> &'static Services {
    static SVC: OnceLock<Services> = OnceLock::new();
    SVC.get_or_init(Services::offline)
}

fn method_table() -> Vec<strategies::MethodParams> {
    methods()
        .map(|m| {
            let names = m.params.iter().map(|p| p.name.to_string()).collect();
            (m.name.to_string(), names)
        })
        .collect()
}

/// Runs one body; `Err` names what was wrong with the answer.
fn answer_is_sound(body: &[u8]) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let req = Request {
        svc: services(),
        call: Call {
            rid: 1,
            arrived: now,
            deadline: now + Duration::from_millis(5),
            peer: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        },
        client: None,
    };
    let answer = handle(&req, body);
    for call in &answer.calls {
        prop_assert_ne!(call.outcome, "internal_error", "{} failed", call.method);
    }
    let Some(bytes) = answer.body else {
        return Ok(());
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| TestCaseError::fail(format!("answer is not UTF-8: {e}")))?;
    let parsed: Value = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("answer is not JSON ({e}): {text}")))?;
    let responses = match parsed {
        Value::Array(items) => items,
        single => vec![single],
    };
    for r in responses {
        prop_assert_eq!(&r["jsonrpc"], "2.0", "{}", r);
        prop_assert!(
            r.get("result").is_some() != r.get("error").is_some(),
            "{}",
            r
        );
        prop_assert_ne!(&r["error"]["code"], -32603, "{}", r);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_body_gets_a_json_rpc_answer_without_a_panic_or_internal_error(
        body in strategies::body(method_table())
    ) {
        answer_is_sound(&body)?;
    }
}

/// Named regressions: inputs that once broke the path (found by reading
/// the code, by the fuzzer, or by the HTTP fuzz), each pinned here.
mod regressions {
    use super::*;

    fn first_error(body: &[u8]) -> Value {
        let now = Instant::now();
        let req = Request {
            svc: services(),
            call: Call {
                rid: 1,
                arrived: now,
                deadline: now + Duration::from_secs(1),
                peer: None,
            },
            client: None,
        };
        let bytes = handle(&req, body).body.unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["error"].clone()
    }

    /// Was -32603 after the password check (PostgreSQL refuses NUL in text).
    #[test]
    fn a_nul_in_the_ip_of_a_login_is_refused_before_any_work() {
        let body = br#"{"jsonrpc":"2.0","method":"auth.login","id":1,
            "params":{"username":"alice","password":"correct horse battery staple","ip":"1.2.3.4\u0000"}}"#;
        answer_is_sound(body).unwrap();
        let e = first_error(body);
        assert_eq!(e["code"], -32602);
        assert_eq!(e["data"]["field"], "ip");
        assert_eq!(e["data"]["reason"], "contains_nul");
    }
}
