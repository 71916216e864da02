//! The bounds on one connection: header size and time, body size and time,
//! keep-alive, the number of connections, and running out of descriptors.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{connect, ping, read_to_close, read_to_close_or_answer, PING};
use crate::helpers::*;

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

    assert!(app.metric("profiteer_headers_too_large_total") >= 2.0);
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
    assert!(app.metric("profiteer_header_timeouts_total") >= 2.0);
    assert!(app.metric("profiteer_body_timeouts_total") >= 1.0);
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
    assert!(app.metric("profiteer_connections_refused_total") >= 5.0);
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
    assert!(app.metric("profiteer_keepalive_closed_total") >= 1.0);
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
    assert!(app.metric("profiteer_body_too_large_total") >= 2.0);
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
    assert!(app.metric("profiteer_accept_errors_total") >= 1.0);
    assert!(app.logs().contains("accept failed, pausing"));
}

/// Issue 21: memory for bodies was bounded per request only
/// (`MAX_CONNECTIONS × MAX_BODY_BYTES` is 4 GiB at the defaults).
#[test]
fn bodies_in_flight_past_max_inflight_body_bytes_are_refused_503_before_they_are_read() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nMAX_BODY_BYTES = 65536\nMAX_INFLIGHT_BODY_BYTES = 100000\n".into(),
        ..Default::default()
    });
    let head = "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n\r\n";
    // Holds 60000 bytes of the budget: its body is being read.
    let mut holder = connect(&app);
    holder.write_all(head.as_bytes()).unwrap();
    holder.write_all(b"[").unwrap();
    // Probe only once the holder's bytes are counted: a probe that came
    // first would hold the budget itself and wait for its own body (seen
    // on a loaded machine in a full run).
    let held = app.eventually(Duration::from_secs(10), || {
        app.metric("profiteer_inflight_body_bytes") == 60000.0
    });
    assert!(held, "the holder's body was never counted");
    let refused = app.eventually(Duration::from_secs(10), || {
        let mut s = connect(&app);
        s.write_all(head.as_bytes()).unwrap();
        let (text, closed) = read_to_close(&mut s);
        text.starts_with("HTTP/1.1 503 ") && closed
    });
    assert!(refused, "a second body over the budget was not refused");
    assert!(app.metric("profiteer_bodies_over_budget_total") >= 1.0);
    assert_eq!(app.metric("profiteer_inflight_body_bytes"), 60000.0);
    // The holder's body arrives and is answered: its bytes are given back.
    holder.write_all(&[b' '; 59999]).unwrap();
    let answer = crate::helpers::read_response(&mut holder);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let served = app.eventually(Duration::from_secs(10), || {
        let body = format!("{PING}{}", " ".repeat(60000 - PING.len()));
        let r = app.post_with(&body, "");
        r.status == 200 && r.json()["result"] == "pong"
    });
    assert!(served, "the budget was not given back");
}
