//! The edge, over raw sockets: no slow, silent or greedy client holds a
//! shared thread or unbounded memory. Each test breaks one bound of the
//! contract's Transport section and then checks that `ping` on a fresh
//! connection is still answered within seconds. `limits`: the bounds on a
//! connection (time, size, count); `threads`: clients that used to hold the
//! acceptor or a worker, or a thread each; `smuggling`: requests framed
//! ambiguously (RFC 9112); `caller_key`: keys checked when the headers end.

mod caller_key;
mod limits;
mod smuggling;
mod threads;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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
