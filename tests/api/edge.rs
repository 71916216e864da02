//! The edge, over raw sockets: no slow, silent or greedy client holds a
//! shared thread or unbounded memory. Each test breaks one bound of the
//! contract's Transport section and then checks that `ping` on a fresh
//! connection is still answered within seconds.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::sha256_hex;
use crate::helpers::*;

const PING: &str = r#"{"jsonrpc":"2.0","method":"ping","id":1}"#;

fn connect(app: &TestApp) -> TcpStream {
    let s = TcpStream::connect(app.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// `ping` on a new connection; must be a pong. How long it took.
fn ping(app: &TestApp, extra_headers: &str) -> Duration {
    let started = Instant::now();
    let mut s = connect(app);
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
        PING.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(PING.as_bytes()).unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], "pong");
    started.elapsed()
}

/// Everything the server sends until it closes; `true` if it did close
/// (end of stream or reset) before the read timeout.
fn read_to_close(s: &mut TcpStream) -> (String, bool) {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = loop {
        match s.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&raw).into_owned(), closed)
}

fn metric(app: &TestApp, name: &str) -> f64 {
    app.get("/metrics")
        .text()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name} "))
                .map(|v| v.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no metric {name}"))
}

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
    assert!(metric(&app, "profiteer_bodies_refused_total") >= 20.0);

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
fn an_endless_header_line_is_refused_with_431_and_the_connection_closed() {
    let app = spawn_app();
    let mut s = connect(&app);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Endless: ")
        .unwrap();
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = [b'a'; 16 * 1024];
        let mut sent = 0usize;
        while sent < 64 << 20 {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let (text, closed) = read_to_close(&mut s);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    assert!(closed);
    let sent = sender.join().unwrap();
    assert!(sent < 64 << 20, "the server read all {sent} bytes");

    // Many short lines that add up to more than 64 KiB: 431 too.
    let mut s = connect(&app);
    let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for i in 0..100 {
        head.push_str(&format!("X-Filler-{i}: {}\r\n", "b".repeat(1000)));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let (text, closed) = read_to_close(&mut s);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    assert!(closed);

    assert!(metric(&app, "profiteer_headers_too_large_total") >= 2.0);
    assert!(ping(&app, "") < Duration::from_secs(3));
}

#[test]
fn headers_or_a_body_that_arrive_too_slowly_are_answered_408() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nHEADER_TIMEOUT_MS = 1000\nREQUEST_TIMEOUT_MS = 1000\n".into(),
        ..Default::default()
    });
    // Says nothing at all.
    let mut silent = connect(&app);
    // Trickles a header, one byte every 200 ms: each read is quick, the
    // whole is not.
    let mut trickler = connect(&app);
    trickler
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    let mut writer = trickler.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let dripping = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) && writer.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // Headers in time, the body never finished.
    let mut late_body = connect(&app);
    late_body
        .write_all(b"POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
        .unwrap();

    let started = Instant::now();
    for (name, s) in [
        ("silent", &mut silent),
        ("trickler", &mut trickler),
        ("late body", &mut late_body),
    ] {
        let (text, closed) = read_to_close(s);
        assert!(text.starts_with("HTTP/1.1 408 "), "{name}: {text}");
        assert!(closed, "{name}: the connection stayed open");
    }
    stop.store(true, Ordering::Relaxed);
    dripping.join().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "408s took {took:?}");
    assert!(metric(&app, "profiteer_header_timeouts_total") >= 2.0);
    assert!(metric(&app, "profiteer_body_timeouts_total") >= 1.0);
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
    assert!(metric(&app, "profiteer_connections_open") >= 40.0);
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
}

#[test]
fn connections_over_max_connections_are_closed_at_once_and_counted() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nMAX_CONNECTIONS = 20\n".into(),
        ..Default::default()
    });
    // 20 kept-alive connections, each answered once: all are open and counted.
    let request = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{PING}",
        PING.len()
    );
    let mut held: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = connect(&app);
            s.write_all(request.as_bytes()).unwrap();
            assert_eq!(read_response(&mut s).json()["result"], "pong");
            s
        })
        .collect();
    let started = Instant::now();
    for _ in 0..5 {
        let mut extra = connect(&app);
        let _ = extra.write_all(request.as_bytes());
        let (text, closed) = read_to_close(&mut extra);
        assert!(
            closed && text.is_empty(),
            "an extra connection got {text:?}"
        );
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "refusals took {took:?}");
    // The held ones are still served.
    held[0].write_all(request.as_bytes()).unwrap();
    assert_eq!(read_response(&mut held[0]).json()["result"], "pong");

    drop(held);
    let served = app.eventually(Duration::from_secs(10), || {
        let mut s = connect(&app);
        let _ = s.write_all(request.as_bytes());
        read_to_close_or_answer(&mut s)
    });
    assert!(served, "no connection served after the held ones closed");
    assert!(metric(&app, "profiteer_connections_refused_total") >= 5.0);
}

/// True if one answer (a pong) arrives on `s`.
fn read_to_close_or_answer(s: &mut TcpStream) -> bool {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
        if String::from_utf8_lossy(&raw).contains("pong") {
            return true;
        }
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_keepalive_s() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nKEEPALIVE_S = 1\n".into(),
        ..Default::default()
    });
    let request = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{PING}",
        PING.len()
    );
    let mut s = connect(&app);
    for _ in 0..2 {
        s.write_all(request.as_bytes()).unwrap();
        assert_eq!(read_response(&mut s).json()["result"], "pong");
    }
    let idle = Instant::now();
    let (text, closed) = read_to_close(&mut s);
    assert!(closed && text.is_empty(), "{text:?}");
    let took = idle.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    assert!(metric(&app, "profiteer_keepalive_closed_total") >= 1.0);
}

#[test]
fn a_body_over_max_body_bytes_is_refused_with_413_before_it_is_sent() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nMAX_BODY_BYTES = 65536\n".into(),
        ..Default::default()
    });
    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut s = connect(&app);
        let head =
            format!("POST /rpc HTTP/1.1\r\nHost: t\r\n{expect}Content-Length: 1000000\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let (text, closed) = read_to_close(&mut s);
        assert!(text.starts_with("HTTP/1.1 413 "), "{expect:?}: {text}");
        assert!(!text.contains("100 Continue"), "{text}");
        assert!(closed);
    }
    assert!(metric(&app, "profiteer_body_too_large_total") >= 2.0);
    assert!(ping(&app, "") < Duration::from_secs(3));
}

/// Regression test for #8 item 4: the accept loop ended on the first failed
/// accept (EMFILE in a connection flood) and the process stayed up, deaf.
#[test]
fn running_out_of_file_descriptors_pauses_accepting_and_goes_on() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nHEADER_TIMEOUT_MS = 60000\n".into(),
        fd_limit: Some(256),
        ..Default::default()
    });
    let request = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{PING}",
        PING.len()
    );
    // Connections answered once and kept open, until one is not accepted.
    let mut held = Vec::new();
    let mut waiting = None;
    for _ in 0..400 {
        let mut s = connect(&app);
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        if read_to_close_or_answer(&mut s) {
            held.push(s);
        } else {
            waiting = Some(s);
            break;
        }
    }
    let mut waiting = waiting.expect("256 descriptors never ran out");
    assert!(held.len() > 50, "only {} connections served", held.len());
    // Descriptors free again: the waiting connection is accepted and served.
    drop(held);
    waiting
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    assert!(
        read_to_close_or_answer(&mut waiting),
        "accepting did not go on"
    );
    assert!(ping(&app, "") < Duration::from_secs(3));
    assert!(metric(&app, "profiteer_accept_errors_total") >= 1.0);
    assert!(app.logs().contains("accept failed, pausing"));
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
