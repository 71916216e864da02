//! The pollers over real sockets: answers go back to the connection that
//! asked, whatever order they come in; an answer for a client that has gone
//! is let go and no longer counted; deadlines are kept by the poller's scan
//! with nobody sending; new connections are spread over the pollers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ConfigListenAddr, Limits, Request, Response, Server, ServerConfig};

/// A server whose requests wait in a channel for the test to answer them.
fn server(limits: Limits) -> (Server, SocketAddr, Receiver<Request>) {
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    let handler = Arc::new(move |rq: Request| {
        let _ = tx.lock().unwrap().send(rq);
    });
    let config = ServerConfig {
        addr: ConfigListenAddr::from_socket_addrs("127.0.0.1:0").unwrap(),
        limits,
    };
    let server = Server::with_handler(config, handler).unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    (server, addr, rx)
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes (or the read timeout).
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits for `check`, up to a bound far above what it should take.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn answers_given_in_any_order_go_back_to_the_connection_that_asked() {
    let (_server, addr, rx) = server(Limits::default());
    let mut clients: Vec<TcpStream> = (0..8)
        .map(|i| {
            let mut s = client(addr);
            let rq = format!("GET /{} HTTP/1.1\r\nConnection: close\r\n\r\n", i);
            s.write_all(rq.as_bytes()).unwrap();
            s
        })
        .collect();
    let mut requests: Vec<Request> = (0..8).map(|_| rx.recv().unwrap()).collect();
    requests.reverse();
    for rq in requests {
        let path = rq.url().to_owned();
        rq.respond(Response::from_string(path)).unwrap();
    }
    for (i, s) in clients.iter_mut().enumerate() {
        let text = read_all(s);
        assert!(text.ends_with(&format!("\r\n/{}", i)), "{}: {}", i, text);
    }
}

#[test]
fn an_answer_for_a_client_that_has_gone_is_let_go_and_no_longer_counted() {
    let (server, addr, rx) = server(Limits::default());
    let mut s = client(addr);
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let rq = rx.recv().unwrap();
    assert_eq!(server.stats().answering.load(Ordering::Acquire), 1);
    drop(s);
    let _ = rq.respond(Response::from_string("x".repeat(1 << 20)));
    let stats = server.stats();
    assert!(eventually(
        || stats.answering.load(Ordering::Acquire) == 0 && stats.open.load(Ordering::Acquire) == 0
    ));
}

#[test]
fn a_deadline_is_kept_by_the_poller_with_nobody_sending() {
    let (server, addr, _rx) = server(Limits {
        header_timeout: Duration::from_millis(100),
        ..Limits::default()
    });
    let mut s = client(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost").unwrap();
    assert!(read_all(&mut s).starts_with("HTTP/1.1 408 "));
    assert_eq!(server.stats().header_timeouts.load(Ordering::Acquire), 1);
}

#[test]
fn a_refused_request_never_reaches_the_handler() {
    let (_server, addr, rx) = server(Limits::default());
    let mut s = client(addr);
    s.write_all(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, x\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    let text = read_all(&mut s);
    assert!(text.starts_with("HTTP/1.1 400 "), "{}", text);
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{}", text);
    assert!(rx.try_recv().is_err(), "the handler saw it");
}

#[test]
fn connections_beyond_max_connections_are_closed_at_accept() {
    let (server, addr, rx) = server(Limits {
        max_connections: 1,
        ..Limits::default()
    });
    let mut held = client(addr);
    held.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let rq = rx.recv().unwrap();
    let mut extra = client(addr);
    let _ = extra.write_all(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(read_all(&mut extra), "");
    assert_eq!(server.stats().refused.load(Ordering::Acquire), 1);
    rq.respond(Response::from_string("ok")).unwrap();
}
