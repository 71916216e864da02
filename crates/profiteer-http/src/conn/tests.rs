//! The connection's state machine, one test per transition, driven through
//! a scripted socket (`harness.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::harness::Harness;
use super::Phase;
use crate::limits::{EdgeStats, HeadCheck, Limits};
use crate::Request;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

fn body(r: &mut Request) -> String {
    let mut s = String::new();
    r.as_reader().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn a_head_and_its_body_are_read_then_handed_on_with_no_deadline_of_ours() {
    let mut h = Harness::new(Limits::default());
    assert!(h.send(b"POST /rpc HTTP/1.1\r\nContent-Le"));
    assert!(matches!(h.conn.phase, Phase::Head { .. }));
    assert!(h.send(b"ngth: 5\r\n\r\nhel"));
    assert!(matches!(h.conn.phase, Phase::Body { .. }));
    assert!(h.delivered.is_empty());
    assert!(h.send(b"lo"));
    assert!(matches!(h.conn.phase, Phase::Waiting));
    assert_eq!(h.conn.deadline, None);
    assert_eq!(h.delivered.len(), 1);
    assert_eq!(body(&mut h.delivered[0]), "hello");
    assert_eq!(h.stats.answering.load(Ordering::Acquire), 1);
}

#[test]
fn an_answer_is_written_then_the_connection_waits_idle_within_keepalive() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\n\r\n");
    let before = Instant::now();
    assert!(h.answer(OK));
    assert_eq!(h.conn.sock.output, OK);
    assert!(matches!(h.conn.phase, Phase::Idle));
    assert!(h.conn.deadline.unwrap() >= before + h.limits.keepalive);
    assert_eq!(h.stats.answering.load(Ordering::Acquire), 0);
    // The next request's first byte starts its header deadline.
    assert!(h.send(b"G"));
    assert!(matches!(h.conn.phase, Phase::Head { .. }));
    assert!(h.conn.deadline.unwrap() < Instant::now() + h.limits.keepalive);
}

#[test]
fn nothing_more_is_read_while_a_request_is_with_the_application() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    assert_eq!(h.delivered.len(), 1);
    let reads = h.conn.sock.reads;
    assert!(h.send(b"GET /c HTTP/1.1\r\n\r\n"));
    assert_eq!(h.conn.sock.reads, reads, "read while waiting");
    assert_eq!(h.delivered.len(), 1);
    h.answer(OK);
    assert_eq!(h.delivered.len(), 2);
    assert_eq!(h.delivered[1].url(), "/b");
    h.answer(OK);
    assert_eq!(h.delivered[2].url(), "/c");
}

#[test]
fn a_last_request_closes_the_connection_once_its_answer_is_written() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /more HTTP/1.1\r\n\r\n");
    assert!(!h.answer(OK));
    assert_eq!(h.delivered.len(), 1);
}

#[test]
fn an_answer_the_socket_cannot_take_at_once_is_finished_when_it_can() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\n\r\n");
    h.conn.sock.room = Some(5);
    assert!(h.answer(OK));
    assert!(matches!(h.conn.phase, Phase::Answering));
    assert_eq!(h.conn.sock.output.len(), 5);
    h.conn.sock.room = None;
    assert!(h.send(b""));
    assert_eq!(h.conn.sock.output, OK);
    assert!(matches!(h.conn.phase, Phase::Idle));
}

#[test]
fn an_answer_not_written_by_its_deadline_closes_the_connection() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\n\r\n");
    h.conn.sock.room = Some(0);
    assert!(h.answer(OK));
    assert!(!h.expire());
}

#[test]
fn an_empty_answer_is_a_500_and_the_last() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\n\r\n");
    assert!(!h.answer(b""));
    assert!(h.written().starts_with("HTTP/1.1 500 "));
}

#[test]
fn an_answer_with_no_request_handed_on_closes_the_connection() {
    let mut h = Harness::new(Limits::default());
    assert!(!h.answer(OK));
}

#[test]
fn a_client_that_closes_is_let_go_in_any_reading_phase() {
    for sent in [
        &b""[..],
        b"GET / HT",
        b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
    ] {
        let mut h = Harness::new(Limits::default());
        h.send(sent);
        h.conn.sock.eof = true;
        assert!(!h.send(b""), "{:?}", sent);
        assert!(h.delivered.is_empty());
    }
}

#[test]
fn headers_that_miss_their_deadline_are_408_then_closed() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\nHost");
    assert!(!h.expire());
    assert!(h.written().starts_with("HTTP/1.1 408 "));
    assert_eq!(h.stats.header_timeouts.load(Ordering::Acquire), 1);
}

#[test]
fn a_body_that_misses_its_deadline_is_408_then_closed() {
    let mut h = Harness::new(Limits::default());
    h.send(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab");
    assert!(!h.expire());
    assert!(h.written().starts_with("HTTP/1.1 408 "));
    assert_eq!(h.stats.body_timeouts.load(Ordering::Acquire), 1);
    assert!(h.delivered.is_empty());
}

#[test]
fn an_idle_connection_past_keepalive_is_closed_without_a_word() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\n\r\n");
    h.answer(OK);
    let written = h.conn.sock.output.len();
    assert!(!h.expire());
    assert_eq!(h.conn.sock.output.len(), written);
    assert_eq!(h.stats.idle_closed.load(Ordering::Acquire), 1);
}

#[test]
fn a_request_with_the_application_has_no_deadline_of_ours_to_expire() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\n\r\n");
    assert!(h.expire());
    assert!(h.conn.sock.output.is_empty());
}

#[test]
fn a_refused_head_is_answered_and_nothing_after_it_is_read_or_handed_on() {
    let cases: [(&[u8], &str); 6] = [
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "400",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: x, chunked\r\n\r\n",
            "501",
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", "413"),
        (b"GET / HTTP/1.1\r\nExpect: something\r\n\r\n", "417"),
        (b"GET / HTTP/2.0\r\n\r\n", "505"),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\nx\r\n0\r\n\r\n",
            "400",
        ),
    ];
    for (sent, status) in cases {
        let mut h = Harness::new(Limits::default());
        h.conn.sock.room = Some(0);
        assert!(h.send(sent));
        assert!(matches!(h.conn.phase, Phase::Refusing));
        let reads = h.conn.sock.reads;
        h.conn.sock.room = None;
        assert!(!h.send(b"GET / HTTP/1.1\r\n\r\n"), "{:?}", status);
        assert_eq!(h.conn.sock.reads, reads, "read after the refusal");
        assert!(h.written().starts_with(&format!("HTTP/1.1 {} ", status)));
        assert!(h.written().contains("Connection: close"));
        assert!(h.delivered.is_empty(), "{} was handed on", status);
    }
}

#[test]
fn a_request_line_or_header_over_its_limit_is_414_or_431() {
    let limits = Limits {
        max_header_line: 64,
        max_header_bytes: 256,
        ..Limits::default()
    };
    let long = "a".repeat(100);
    for (sent, status) in [
        (format!("GET /{long} HTTP/1.1\r\n\r\n"), "414"),
        (format!("GET / HTTP/1.1\r\nX: {long}\r\n\r\n"), "431"),
        (
            format!("GET / HTTP/1.1\r\n{}\r\n", "X: 1\r\n".repeat(50)),
            "431",
        ),
    ] {
        let mut h = Harness::new(limits.clone());
        assert!(!h.send(sent.as_bytes()));
        assert!(h.written().starts_with(&format!("HTTP/1.1 {} ", status)));
    }
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_read() {
    let mut h = Harness::new(Limits::default());
    h.send(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(h.written(), "HTTP/1.1 100 Continue\r\n\r\n");
    h.send(b"hi");
    assert_eq!(body(&mut h.delivered[0]), "hi");
}

#[test]
fn a_body_the_head_check_refuses_is_never_read_and_the_connection_closes_after() {
    let check: HeadCheck = Arc::new(|r: &Request| r.url() == "/wanted");
    let limits = Limits {
        head_check: Some(check),
        ..Limits::default()
    };
    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut h = Harness::new(limits.clone());
        let head = format!(
            "POST /other HTTP/1.1\r\n{}Content-Length: 5\r\n\r\nab",
            expect
        );
        h.send(head.as_bytes());
        assert_eq!(h.delivered.len(), 1);
        assert_eq!(body(&mut h.delivered[0]), "");
        assert!(h.conn.sock.output.is_empty(), "100 Continue sent");
        assert!(h.delivered[0].close_after);
        assert!(!h.answer(OK));
        assert_eq!(h.stats.bodies_refused.load(Ordering::Acquire), 1);
    }
    let mut h = Harness::new(limits);
    h.send(b"POST /wanted HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(body(&mut h.delivered[0]), "ok");
}

#[test]
fn bodies_in_flight_past_the_budget_are_503_before_they_are_read() {
    let limits = Limits {
        max_inflight_body_bytes: 1000,
        ..Limits::default()
    };
    let stats = Arc::new(EdgeStats::default());
    let mut first = Harness::new(limits.clone());
    first.stats = stats.clone();
    let mut second = Harness::new(limits);
    second.stats = stats.clone();
    first.send(b"POST / HTTP/1.1\r\nContent-Length: 600\r\n\r\nab");
    assert_eq!(stats.inflight_body_bytes.load(Ordering::Acquire), 600);
    assert!(!second.send(b"POST / HTTP/1.1\r\nContent-Length: 600\r\n\r\nab"));
    assert!(second.written().starts_with("HTTP/1.1 503 "));
    assert_eq!(stats.bodies_over_budget.load(Ordering::Acquire), 1);
    // Held until the request is answered.
    first.send(&[b'x'; 598]);
    assert_eq!(first.delivered.len(), 1);
    assert_eq!(stats.inflight_body_bytes.load(Ordering::Acquire), 600);
    first.answer(OK);
    assert_eq!(stats.inflight_body_bytes.load(Ordering::Acquire), 0);
}

#[test]
fn a_chunked_body_growing_past_the_budget_is_503() {
    let limits = Limits {
        max_inflight_body_bytes: 64,
        ..Limits::default()
    };
    let mut h = Harness::new(limits);
    let chunk = format!("50\r\n{}\r\n", "x".repeat(80));
    let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(!h.send(format!("{}{}", head, chunk).as_bytes()));
    assert!(h.written().starts_with("HTTP/1.1 503 "));
    assert!(h.delivered.is_empty());
    assert_eq!(h.stats.inflight_body_bytes.load(Ordering::Acquire), 0);
}

#[test]
fn a_new_connection_must_send_its_head_within_the_header_timeout() {
    let h = Harness::new(Limits {
        header_timeout: Duration::from_secs(7),
        ..Limits::default()
    });
    let due = h.conn.deadline.unwrap();
    assert!(due <= Instant::now() + Duration::from_secs(7));
    assert!(due > Instant::now() + Duration::from_secs(6));
}

#[test]
fn a_client_that_closes_between_requests_is_let_go() {
    let mut h = Harness::new(Limits::default());
    h.send(b"GET / HTTP/1.1\r\n\r\n");
    h.answer(OK);
    assert!(matches!(h.conn.phase, Phase::Idle));
    h.conn.sock.eof = true;
    assert!(!h.send(b""));
}

#[test]
fn a_chunked_body_growing_past_max_body_bytes_is_413() {
    let mut h = Harness::new(Limits {
        max_body_bytes: 10,
        ..Limits::default()
    });
    h.send(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n");
    assert!(matches!(h.conn.phase, Phase::Body { .. }));
    assert!(!h.send(b"8\r\n12345678\r\n0\r\n\r\n"));
    assert!(h.written().starts_with("HTTP/1.1 413 "));
    assert!(h.delivered.is_empty());
    assert_eq!(h.stats.bodies_too_large.load(Ordering::Acquire), 1);
}

#[test]
fn a_refusal_the_client_does_not_read_in_time_closes_the_connection() {
    let mut h = Harness::new(Limits::default());
    h.conn.sock.room = Some(0);
    assert!(h.send(b"GET / HTTP/2.0\r\n\r\n"));
    assert!(matches!(h.conn.phase, Phase::Refusing));
    assert!(!h.expire());
}
