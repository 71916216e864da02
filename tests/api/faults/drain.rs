//! SIGTERM drains for a balancer: `/readyz` turns 503 at once, requests
//! are still served for `[SERVER] DRAIN_S`, then the listener closes, work
//! in flight finishes, and the process exits 0.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

#[test]
fn sigterm_turns_readyz_503_serves_on_for_drain_s_then_exits_0() {
    let mut app = spawn_with(Options {
        ini: "[SERVER]\nDRAIN_S = 3\n".into(),
        ..Options::default()
    });
    let (_, t) = app.register_and_login("dr_ann");
    let token = t["access_token"].as_str().unwrap().to_string();
    let ready = app.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["status"], "ready");

    let sent = Instant::now();
    app.terminate();
    let draining = app.eventually(Duration::from_secs(1), || app.get("/readyz").status == 503);
    assert!(draining, "/readyz still 200 a second after SIGTERM");
    assert_eq!(app.get("/readyz").json()["status"], "draining");
    // still served while draining
    assert!(active(&app, &token));
    assert_eq!(app.ok("ping", json!({})), "pong");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "the checks took the whole drain"
    );

    let status = app.stop().expect("no exit status");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        sent.elapsed() >= Duration::from_secs(3),
        "exited {:?} after SIGTERM, before DRAIN_S",
        sent.elapsed()
    );
    assert!(
        TcpStream::connect_timeout(&app.addr, Duration::from_millis(500)).is_err(),
        "still listening after exit"
    );
}
