//! The Python service's Thrift `UserService` on `[THRIFT] PORT`: driven by
//! the real thriftpy2 client (installed by `scripts/thriftpy2.sh`) with the
//! old IDL (`tests/thrift/`), and by raw bytes that are not Thrift at all.

mod wire;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::helpers::*;

/// The python of a virtualenv holding thriftpy2 (made on first use).
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let out = Command::new(format!("{root}/scripts/thriftpy2.sh"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/thriftpy2.sh failed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// A server with the Thrift port on, and that port's address.
pub fn spawn_thrift(extra_ini: &str) -> (TestApp, SocketAddr) {
    let app = spawn_with(Options {
        ini: format!("[THRIFT]\nPORT = 0\n{extra_ini}"),
        ..Options::default()
    });
    let logs = app.logs();
    let addr = logs
        .lines()
        .find_map(|l| l.split("thrift UserService at ").nth(1))
        .unwrap_or_else(|| panic!("no Thrift address in the log:\n{logs}"))
        .trim()
        .parse()
        .unwrap();
    (app, addr)
}

/// Runs `calls` with thriftpy2's `make_client`, all on one connection
/// (a new one after a failure); one outcome per call.
pub fn old_client(addr: SocketAddr, calls: &[Value]) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/thrift/client.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = calls.iter().map(|c| format!("{c}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn create(id: i64, password: &str, state: i64) -> Value {
    json!({"call": "createUser", "user": {"id": id, "password": password, "state": state}})
}

/// The JSON-RPC error object carried in a TApplicationException's message.
fn error_of(outcome: &Value) -> Value {
    let message = outcome["exception"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an exception: {outcome}"));
    serde_json::from_str(message).unwrap()
}

fn stored_hash(app: &TestApp, id: i64) -> String {
    app.pg()
        .query_one("SELECT password_hash FROM users WHERE id = $1", &[&id])
        .unwrap()
        .get(0)
}

#[test]
fn the_old_client_pings_and_creates_users_that_keep_their_ids() {
    let (app, addr) = spawn_thrift("");
    let kept = bcrypt::hash(PASSWORD, 5).unwrap();
    let costly = bcrypt::hash(PASSWORD, 7).unwrap();
    let out = old_client(
        addr,
        &[
            json!({"call": "ping"}),
            create(105, PASSWORD, 0),
            create(7, "another fine passphrase 7", 1),
            json!({"call": "createUser", "user": {"id": 9, "password": kept}}),
            create(105, PASSWORD, 0),
            json!({"call": "createUser", "user": {"id": 11}}),
            create(-4, PASSWORD, 0),
            json!({"call": "createUser", "user": {"id": 12, "password": costly}}),
            create(13, &"x".repeat(73), 0),
            json!({"call": "ping"}),
            // The attacker's review: the Python service's own load test
            // password, and an id at the end of i64 that moved the id
            // sequence to its end (every registration failed after it).
            create(14, "123456", 0),
            create(i64::MAX, PASSWORD, 0),
            create(1 << 53, PASSWORD, 0),
        ],
    );
    assert_eq!(out[0], json!({"ok": "pong"}));
    assert_eq!(
        out[1..4],
        [
            json!({"ok": null}),
            json!({"ok": null}),
            json!({"ok": null})
        ]
    );
    assert_eq!(out[4]["exception"]["type"], 0, "{}", out[4]);
    assert_eq!(error_of(&out[4])["code"], -32010);
    assert_eq!(error_of(&out[4])["data"], json!({"field": "user_id"}));
    let invalid = |o: &Value, field: &str, reason: &str| {
        let e = error_of(o);
        assert_eq!(e["code"], -32602, "{e}");
        assert_eq!(e["data"], json!({"field": field, "reason": reason}), "{e}");
    };
    invalid(&out[5], "password", "missing");
    invalid(&out[6], "id", "out_of_range");
    invalid(&out[7], "password_hash", "cost_too_high");
    invalid(&out[8], "password", "too_long");
    assert_eq!(out[9], json!({"ok": "pong"}), "the connection lives on");
    invalid(&out[10], "password", "too_short");
    invalid(&out[11], "id", "out_of_range");
    invalid(&out[12], "id", "out_of_range");

    let user = app.ok("user.get", json!({"user_id": 105}));
    assert_eq!(user["username"], "user_105");
    assert_eq!(user["state"], "active");
    assert_eq!(
        app.ok("user.get", json!({"user_id": 7}))["state"],
        "disabled"
    );
    let hash = stored_hash(&app, 105);
    assert!(hash.starts_with("$2") && bcrypt::verify(PASSWORD, &hash).unwrap());
    assert_eq!(stored_hash(&app, 9), kept, "a bcrypt hash is kept as given");
    app.ok(
        "auth.login",
        json!({"username": "user_105", "password": PASSWORD}),
    );
    app.ok(
        "auth.login",
        json!({"username": "user_9", "password": PASSWORD}),
    );
    for id in [11, 12, 13, 14] {
        app.err("user.get", json!({"user_id": id}), -32013);
    }
    assert!(app.register("newcomer") > 105);

    let metrics = app.get("/metrics").text();
    for line in [
        "profiteer_requests_total{method=\"thrift.ping\",outcome=\"ok\"} 2",
        "profiteer_requests_total{method=\"thrift.createUser\",outcome=\"ok\"} 3",
        "profiteer_requests_total{method=\"thrift.createUser\",outcome=\"conflict\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    let closed = app.eventually(std::time::Duration::from_secs(10), || {
        app.get("/metrics")
            .text()
            .contains("profiteer_thrift_connections 0")
    });
    assert!(closed, "the client's connection is still counted");
}

/// The attacker's review: the Thrift port asks no caller key and bound
/// to `[SERVER] HOST`. Now a peer outside `[THRIFT] ALLOW` is closed unread.
#[test]
fn a_peer_outside_thrift_allow_is_closed_unserved() {
    let (app, addr) = spawn_thrift("ALLOW = 10.0.0.0/8\n");
    let out = old_client(addr, &[json!({"call": "ping"}), create(20, PASSWORD, 0)]);
    assert!(out[0].get("closed").is_some(), "{}", out[0]);
    assert!(out[1].get("closed").is_some(), "{}", out[1]);
    app.err("user.get", json!({"user_id": 20}), -32013);
    let metrics = app.get("/metrics").text();
    assert!(
        !metrics.contains("profiteer_thrift_refused_total 0"),
        "refusals not counted:\n{metrics}"
    );
}

#[test]
fn without_a_thrift_port_nothing_is_served_beyond_http() {
    let app = spawn_app();
    assert!(!app.logs().contains("thrift UserService at"));
}

#[test]
fn sigterm_with_thrift_connections_open_still_exits_cleanly() {
    let (mut app, addr) = spawn_thrift("");
    // One idle connection, one in the middle of a call's bytes.
    let idle = std::net::TcpStream::connect(addr).unwrap();
    let mut half = std::net::TcpStream::connect(addr).unwrap();
    half.write_all(&[0x80, 0x01, 0x00, 0x01]).unwrap();
    assert_eq!(
        old_client(addr, &[json!({"call": "ping"})]),
        [json!({"ok": "pong"})]
    );
    let started = std::time::Instant::now();
    let status = app.stop().unwrap();
    assert!(status.success(), "{status:?}\n{}", app.logs());
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    drop((idle, half));
}
