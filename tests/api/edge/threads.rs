//! Clients that used to hold a shared thread: a silent `Expect:
//! 100-continue` (the acceptor or a worker drained its body), slow bodies
//! (read by workers), an answer never read (written by a worker); and
//! open connections, which used to cost a thread each.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{connect, ping, read_to_close, PING};
use crate::auth::sha256_hex;
use crate::helpers::*;

#[test]
fn silent_clients_that_expect_100_continue_hold_no_shared_thread() {
    let key = "edge-test-key";
    let app = spawn_with(Options {
        ini: format!("[CLIENTS]\ngateway = {} ping\n", sha256_hex(key)),
        ..Default::default()
    });
    let stall = |line: &str, extra: &str| {
        let mut s = connect(&app);
        let head = format!(
            "{line} HTTP/1.1\r\nHost: t\r\n{extra}Expect: 100-continue\r\nContent-Length: 65536\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        s // and never a byte of the body
    };
    let cases = [
        ("POST /anything", "", "404"),
        ("POST /healthz", "", "405"),
        ("GET /healthz", "", "200"),
        ("POST /rpc", "", "401"),
        ("POST /rpc", "X-Client-Key: wrong\r\n", "401"),
    ];
    let mut stallers = Vec::new();
    for _ in 0..4 {
        for (line, extra, status) in cases {
            stallers.push((line, status, stall(line, extra)));
        }
    }
    for _ in 0..3 {
        let took = ping(&app, &format!("X-Client-Key: {key}\r\n"));
        assert!(took < Duration::from_secs(3), "ping took {took:?}");
    }
    for (line, status, mut s) in stallers {
        let (text, closed) = read_to_close(&mut s);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{line}: {text}"
        );
        assert!(!text.contains("100 Continue"), "{line}: {text}");
        assert!(text.contains("Connection: close"), "{line}: {text}");
        assert!(closed, "{line}: the connection stayed open");
    }
    assert!(app.metric("profiteer_bodies_refused_total") >= 20.0);

    // A caller with a valid key gets `100 Continue`, sends, is answered.
    let mut s = connect(&app);
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nX-Client-Key: {key}\r\nExpect: 100-continue\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        PING.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(PING.as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).json()["result"], "pong");
}

#[test]
fn forty_slow_body_senders_do_not_stop_ping() {
    let app = spawn_app();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..40)
        .map(|_| {
            let mut s = connect(&app);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let head = "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n";
                s.write_all(head.as_bytes()).unwrap();
                let chunk = [b' '; 1000];
                while !stop.load(Ordering::Relaxed) && s.write_all(&chunk).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let took = ping(&app, "");
        assert!(took < Duration::from_secs(3), "ping took {took:?}");
    }
    assert!(app.metric("profiteer_connections_open") >= 40.0);
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
}

/// A caller that never reads its (large) answer: the answer is written by
/// the connection's own thread, so the one worker is free for the next call.
#[test]
fn a_client_that_never_reads_its_answer_holds_no_worker() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nWORKERS = 1\n".into(),
        ..Default::default()
    });
    // About 4 MB of answer: far more than the socket buffers take unread.
    let batch: Vec<serde_json::Value> = (0..100)
        .map(|i| serde_json::json!({"jsonrpc": "2.0", "method": "rpc.discover", "id": i}))
        .collect();
    let body = serde_json::to_string(&batch).unwrap();
    let mut silent_reader = connect(&app);
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    silent_reader.write_all(head.as_bytes()).unwrap();
    silent_reader.write_all(body.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let took = ping(&app, "");
        assert!(took < Duration::from_secs(3), "ping took {took:?}");
    }
    // The answer was waiting, whole, for the client to read it.
    let (raw, closed) = read_to_close(&mut silent_reader);
    assert!(closed);
    let answer = parse_response(raw.as_bytes());
    assert!(answer.body.len() > 1_000_000, "{} bytes", answer.body.len());
    assert_eq!(answer.json().as_array().unwrap().len(), 100);
}

/// Regression: every open connection had a thread of its own (1,000
/// connections were 1,000 threads taking turns on the cores). Now a few
/// poller threads serve them all.
#[test]
fn four_hundred_kept_alive_connections_are_all_served_by_a_few_threads() {
    let app = spawn_app();
    let idle_threads = app.threads();
    let n = 400;
    let mut conns: Vec<_> = (0..n).map(|_| connect(&app)).collect();
    let request = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{PING}",
        PING.len()
    );
    for round in 0..2 {
        for s in &mut conns {
            s.write_all(request.as_bytes()).unwrap();
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let r = read_response(s);
            assert_eq!(r.status, 200, "round {round}, connection {i}: {}", r.text());
            assert_eq!(r.json()["result"], "pong", "round {round}, connection {i}");
        }
    }
    let busy_threads = app.threads();
    assert!(
        busy_threads < idle_threads + 20,
        "{n} open connections: {busy_threads} threads, {idle_threads} before they opened"
    );
    // (Its own connection is open too.)
    assert!(app.metric("profiteer_connections_open") >= n as f64);
}
