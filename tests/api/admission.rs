//! Admission control: a full queue sheds at once, a request that waited
//! past its deadline is refused without running, a burst of connections is
//! served, and SIGTERM finishes in-flight work before exiting 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

const PING: &str = r#"{"jsonrpc":"2.0","method":"ping","id":1}"#;

/// A request that holds the one worker until `finish` is called: the test
/// locks the users table, so the worker's `auth.register` waits on
/// PostgreSQL. (A slowly sent body no longer can: bodies are read by the
/// connection's own thread before a worker sees the request.)
struct Holder {
    stream: TcpStream,
    lock: postgres::Client,
}

fn hold_worker(app: &TestApp) -> Holder {
    let mut lock = app.pg();
    lock.batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let body = json!({"jsonrpc":"2.0","method":"auth.register","id":1,
        "params":{"username":"held_worker","password":PASSWORD}});
    let stream = send(app, &body.to_string());
    // Held once the worker's query waits for the lock (on a loaded machine a
    // fixed sleep let a later request reach the worker first).
    let mut probe = app.pg();
    let held = app.eventually(Duration::from_secs(10), || {
        let row = probe
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap();
        row.get::<_, i64>(0) >= 1
    });
    assert!(held, "the worker never waited for the lock");
    Holder { stream, lock }
}

impl Holder {
    fn finish(mut self) -> Http {
        self.lock.batch_execute("COMMIT").unwrap();
        read_response(&mut self.stream)
    }
}

fn send(app: &TestApp, body: &str) -> TcpStream {
    let mut s = TcpStream::connect(app.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    s
}

#[test]
fn a_full_queue_is_refused_at_once_with_overloaded() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nWORKERS = 1\nQUEUE_DEPTH = 1\n".into(),
        ..Default::default()
    });
    let holder = hold_worker(&app);
    assert!(app.eventually(Duration::from_secs(10), || app
        .metric("profiteer_queue_depth")
        == 0.0));
    let mut queued = send(&app, PING);
    assert!(app.eventually(Duration::from_secs(10), || app
        .metric("profiteer_queue_depth")
        == 1.0));

    let started = Instant::now();
    let shed = app.post(PING);
    assert_eq!(shed.status, 503);
    assert_eq!(shed.json()["error"]["code"], -32002);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shedding must not wait"
    );
    assert_eq!(app.metric("profiteer_shed_total"), 1.0);

    // the held and the queued request are both served once the worker frees
    assert!(holder.finish().json()["result"]["user_id"].is_i64());
    assert_eq!(read_response(&mut queued).json()["result"], "pong");
}

#[test]
fn a_request_that_waited_past_its_deadline_is_refused_without_running() {
    // Seconds, so the holder itself reaches the lock in time on a busy
    // machine.
    let timeout = Duration::from_secs(2);
    let app = spawn_with(Options {
        ini: format!(
            "[SERVER]\nWORKERS = 1\nQUEUE_DEPTH = 8\nREQUEST_TIMEOUT_MS = {}\n",
            timeout.as_millis()
        ),
        ..Default::default()
    });
    let holder = hold_worker(&app);
    let body = json!({"jsonrpc":"2.0","method":"auth.register","id":1,
        "params":{"username":"too_late","password":PASSWORD}});
    let mut late = send(&app, &body.to_string());
    // Queued means its clock runs: from here a sleep longer than the
    // timeout surely outlasts its deadline, however late the request
    // reached the queue (a fixed sleep from sending it did not).
    assert!(app.eventually(Duration::from_secs(10), || app
        .metric("profiteer_queue_depth")
        == 1.0));
    std::thread::sleep(timeout + Duration::from_millis(500));
    holder.finish();
    let late = read_response(&mut late);
    assert_eq!(late.status, 503);
    assert_eq!(late.json()["error"]["code"], -32001);
    // it was not run: no such account
    let rows = app
        .pg()
        .query("SELECT 1 FROM users WHERE username = 'too_late'", &[])
        .unwrap();
    assert!(rows.is_empty());
    assert!(app.metric("profiteer_expired_total") >= 1.0);
}

/// Regression test for tiny_http 0.12.0 leaving most connections of a burst
/// unread: 100 keep-alive connections send at once and all stay open until
/// every one is answered. The queue holds them all, so every answer must be
/// a pong (a shed 503 would not be), and an unread connection gets nothing.
#[test]
fn a_burst_of_one_hundred_new_connections_is_answered_promptly() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nQUEUE_DEPTH = 256\n".into(),
        ..Default::default()
    });
    let n = 100;
    let start = Arc::new(Barrier::new(n));
    let done = Arc::new(Barrier::new(n));
    let addr = app.addr;
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, done) = (start.clone(), done.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                start.wait();
                let began = Instant::now();
                let req = format!(
                    "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{PING}",
                    PING.len()
                );
                s.write_all(req.as_bytes()).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let answered = loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break false,
                        Ok(k) => {
                            buf.extend_from_slice(&chunk[..k]);
                            if String::from_utf8_lossy(&buf).contains("pong") {
                                break true;
                            }
                        }
                    }
                };
                let took = began.elapsed();
                done.wait(); // keep the connection open until all are answered
                (answered, took)
            })
        })
        .collect();
    let results: Vec<(bool, Duration)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let unanswered = results.iter().filter(|(ok, _)| !ok).count();
    assert_eq!(
        unanswered, 0,
        "{unanswered} of {n} connections got no answer within 5 s"
    );
    let slowest = results.iter().map(|(_, t)| *t).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "slowest answer took {slowest:?}"
    );
}

#[test]
fn sigterm_finishes_in_flight_work_then_exits_zero() {
    let mut app = spawn_with(Options {
        // No drain: the request is still in flight when shutdown begins.
        ini: "[SERVER]\nWORKERS = 1\nDRAIN_S = 0\n".into(),
        ..Default::default()
    });
    let holder = hold_worker(&app);
    let log = app.log_handle();
    let answer = std::thread::spawn(move || {
        // Freed only once the server has the signal, so the signal surely
        // finds the request in flight (a fixed sleep could free it first).
        let until = Instant::now() + Duration::from_secs(20);
        while !log.lock().unwrap().contains("signal 15:") && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        holder.finish()
    });
    let status = app.stop().unwrap();
    assert!(answer.join().unwrap().json()["result"]["user_id"].is_i64());
    assert!(status.success(), "{status:?}");
    assert!(app.logs().contains("stopped"));
}

/// The attacker's review: 12 concurrent `GET /readyz` on a fresh server,
/// then every later probe answered `503 busy` until restart (a refused
/// side slot gave back one it never held and the count wrapped). Behind a
/// balancer that checks `/readyz`, anyone could mark every instance down.
#[test]
fn a_burst_of_readyz_probes_leaves_readyz_and_metrics_answering() {
    let app = spawn_app();
    std::thread::scope(|s| {
        let probes: Vec<_> = (0..24)
            .map(|_| s.spawn(|| app.get("/readyz").status))
            .collect();
        for p in probes {
            let status = p.join().unwrap();
            assert!(status == 200 || status == 503, "{status}");
        }
    });
    for _ in 0..10 {
        assert_eq!(app.get("/readyz").status, 200);
    }
    // Once the last probe's thread has let go, only the /metrics request
    // itself holds a slot.
    let settled = app.eventually(Duration::from_secs(10), || {
        let metrics = app.get("/metrics");
        metrics.status == 200 && metrics.text().contains("profiteer_side_slots_in_use 1\n")
    });
    assert!(settled, "{}", app.get("/metrics").text());
}
