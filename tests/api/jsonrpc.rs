//! JSON-RPC 2.0 exactly (every example of section 7 of the specification,
//! adapted to `ping`), and the HTTP statuses around it.

use serde_json::{json, Value};

use crate::helpers::*;

fn post(app: &TestApp, body: &str) -> Value {
    let r = app.post(body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    r.json()
}

#[test]
fn the_specification_examples_hold_for_ping() {
    let app = spawn_app();
    // rpc call with positional parameters (none) and with named parameters
    assert_eq!(
        post(
            &app,
            r#"{"jsonrpc":"2.0","method":"ping","params":[],"id":1}"#
        ),
        json!({"jsonrpc":"2.0","result":"pong","id":1})
    );
    assert_eq!(
        post(
            &app,
            r#"{"jsonrpc":"2.0","method":"ping","params":{},"id":2}"#
        ),
        json!({"jsonrpc":"2.0","result":"pong","id":2})
    );
    // a notification: no answer at all
    let r = app.post(r#"{"jsonrpc":"2.0","method":"ping"}"#);
    assert_eq!((r.status, r.body.len()), (204, 0));
    // a non-existent method
    assert_eq!(
        post(&app, r#"{"jsonrpc":"2.0","method":"foobar","id":"1"}"#),
        json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"1"})
    );
    // invalid JSON
    assert_eq!(
        post(
            &app,
            r#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#
        ),
        json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null})
    );
    // an invalid Request object
    assert_eq!(
        post(&app, r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#),
        json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null})
    );
    // a batch with invalid JSON
    assert_eq!(
        post(
            &app,
            r#"[{"jsonrpc":"2.0","method":"ping","params":[],"id":"1"},{"jsonrpc":"2.0","method""#
        ),
        json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null})
    );
    // an empty array
    assert_eq!(
        post(&app, "[]"),
        json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null})
    );
    // an invalid batch, but not empty; and an invalid batch of three
    let invalid =
        json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null});
    assert_eq!(post(&app, "[1]"), json!([invalid]));
    assert_eq!(post(&app, "[1,2,3]"), json!([invalid, invalid, invalid]));
    // a mixed batch: answers for calls with ids only, errors in place
    let batch = r#"[
        {"jsonrpc":"2.0","method":"ping","params":[],"id":"1"},
        {"jsonrpc":"2.0","method":"ping","params":[]},
        {"jsonrpc":"2.0","method":"ping","params":{},"id":"2"},
        {"foo":"boo"},
        {"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},
        {"jsonrpc":"2.0","method":"ping","id":"9"}
    ]"#;
    assert_eq!(
        post(&app, batch),
        json!([
            {"jsonrpc":"2.0","result":"pong","id":"1"},
            {"jsonrpc":"2.0","result":"pong","id":"2"},
            invalid,
            {"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"5"},
            {"jsonrpc":"2.0","result":"pong","id":"9"}
        ])
    );
    // a batch of notifications only: 204, no body
    let r = app.post(
        r#"[{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"ping","params":[]}]"#,
    );
    assert_eq!((r.status, r.body.len()), (204, 0));
}

#[test]
fn ids_are_echoed_as_sent_and_bad_ids_or_versions_are_invalid_requests() {
    let app = spawn_app();
    for id in [json!(7), json!(-1), json!("abc"), json!(null), json!(1.5)] {
        let body = json!({"jsonrpc":"2.0","method":"ping","id":id}).to_string();
        assert_eq!(post(&app, &body)["id"], id, "{body}");
    }
    for bad in [
        r#"{"jsonrpc":"2.0","method":"ping","id":{"a":1}}"#,
        r#"{"jsonrpc":"1.0","method":"ping","id":1}"#,
        r#"{"method":"ping","id":1}"#,
        r#"{"jsonrpc":"2.0","method":"ping","params":"x","id":1}"#,
        r#""ping""#,
    ] {
        assert_eq!(post(&app, bad)["error"]["code"], -32600, "{bad}");
    }
    // an invalid request whose id is usable keeps its id
    assert_eq!(
        post(&app, r#"{"jsonrpc":"1.0","method":"ping","id":4}"#)["id"],
        4
    );
}

#[test]
fn params_are_checked_by_name_and_unknown_params_are_refused() {
    let app = spawn_app();
    let e = app.err("user.get", json!({"user_id": "1"}), -32602);
    assert_eq!(
        e["data"],
        json!({"field": "user_id", "reason": "not_an_integer"})
    );
    let e = app.err("user.get", json!({"user_id": 1, "userid": 2}), -32602);
    assert_eq!(
        e["data"],
        json!({"field": "userid", "reason": "unknown_param"})
    );
    let e = app.err("user.get", json!([1]), -32602);
    assert_eq!(e["data"]["field"], "params");
}

#[test]
fn a_batch_larger_than_max_batch_is_an_invalid_request() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nMAX_BATCH = 3\n".into(),
        ..Default::default()
    });
    let call = json!({"jsonrpc":"2.0","method":"ping","id":1});
    let three = Value::Array(vec![call.clone(); 3]).to_string();
    assert_eq!(post(&app, &three).as_array().unwrap().len(), 3);
    let four = Value::Array(vec![call; 4]).to_string();
    assert_eq!(post(&app, &four)["error"]["code"], -32600);
}

#[test]
fn http_paths_and_methods_get_their_statuses() {
    let app = spawn_app();
    let r = app.get("/rpc");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("POST"));
    assert_eq!(app.get("/nope").status, 404);
    let r = app.get("/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = app.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http(
        app.addr,
        "DELETE /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert_eq!(r.status, 405);
    assert!(r.header("X-Request-Id").is_some());
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_without_being_read() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nMAX_BODY_BYTES = 4096\n".into(),
        ..Default::default()
    });
    // Claims 1 GB and sends none of it: only an answer that does not wait
    // for the body can arrive.
    let head = "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n";
    let started = std::time::Instant::now();
    let r = http(app.addr, head, b"");
    assert_eq!(r.status, 413);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A chunked body is cut off at the limit too.
    let chunk = format!("{:x}\r\n{}\r\n", 5000, " ".repeat(5000));
    let head =
        "POST /rpc HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let r = http(app.addr, head, format!("{chunk}0\r\n\r\n").as_bytes());
    assert_eq!(r.status, 413);
    // Just under the limit is fine.
    let body = format!(
        r#"{{"jsonrpc":"2.0","method":"ping","id":1}}{}"#,
        " ".repeat(4000)
    );
    assert_eq!(app.post(&body).json()["result"], "pong");
    // Refused at the edge, before any worker: counted there.
    assert!(app
        .get("/metrics")
        .text()
        .contains("profiteer_body_too_large_total 2\n"));
}

#[test]
fn rpc_discover_describes_every_method_the_dispatcher_serves() {
    let app = spawn_app();
    let doc = app.ok("rpc.discover", json!({}));
    assert!(doc["openrpc"].as_str().unwrap().starts_with("1."));
    let names: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for name in &names {
        // every listed method exists: calling it never gives -32601
        let r = app.rpc(name, json!({}));
        assert_ne!(r["error"]["code"], -32601, "{name}");
    }
    for expected in [
        "ping",
        "auth.login",
        "auth.refresh",
        "user.gets",
        "user.import",
        "rpc.discover",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
    let login = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "auth.login")
        .unwrap();
    assert_eq!(login["params"][0]["name"], "username");
    assert_eq!(login["params"][0]["required"], true);
}

#[test]
fn a_panicking_handler_answers_internal_error_and_its_worker_lives_on() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nWORKERS = 1\n".into(),
        ..Default::default()
    });
    let e = app.err("test.panic", json!({}), -32603);
    assert_eq!(e["message"], "Internal error");
    assert!(!e.to_string().contains("panicked"), "{e}");
    // the only worker still serves
    assert_eq!(app.ok("ping", json!({})), "pong");
    assert!(app.logs().contains("test.panic panicked"));
}

/// Issue 28: the log of a failed query said only `postgres: db error`.
#[test]
fn a_failed_query_logs_what_the_server_said_and_never_sends_it() {
    let app = spawn_app();
    app.pg()
        .batch_execute("ALTER TABLE users RENAME TO users_elsewhere")
        .unwrap();
    let e = app.err("user.search", json!({}), -32603);
    assert_eq!(e["message"], "Internal error");
    assert!(!e.to_string().contains("users"), "{e}");
    let logs = app.logs();
    assert!(
        logs.contains(r#"relation "users" does not exist"#),
        "{logs}"
    );
}

#[test]
fn metrics_count_calls_by_method_and_outcome() {
    let app = spawn_app();
    app.ok("ping", json!({}));
    app.err("user.get", json!({"user_id": 424242}), -32013);
    let text = app.get("/metrics").text();
    assert!(
        text.contains(r#"profiteer_requests_total{method="ping",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"profiteer_requests_total{method="user.get",outcome="not_found"} 1"#));
    assert!(
        text.contains(r#"profiteer_request_duration_seconds_count{method="ping",outcome="ok"} 1"#)
    );
    for gauge in [
        "profiteer_queue_depth ",
        "profiteer_shed_total ",
        "profiteer_pg_pool_in_use ",
        "profiteer_expired_total ",
    ] {
        assert!(text.contains(gauge), "{gauge}");
    }
}
