//! Bytes that are not a call `UserService` can read: the server answers
//! with an exception or closes that connection, and goes on serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol,
    TMessageIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};

use super::{old_client, spawn_thrift};
use crate::helpers::PASSWORD;

/// A call with an empty argument struct, as the thrift crate writes it.
fn call(name: &str, kind: TMessageType) -> Vec<u8> {
    let mut o = TBinaryOutputProtocol::new(Vec::new(), true);
    o.write_message_begin(&TMessageIdentifier::new(name, kind, 1))
        .unwrap();
    o.write_struct_begin(&TStructIdentifier::new("args"))
        .unwrap();
    o.write_field_stop().unwrap();
    o.write_struct_end().unwrap();
    o.transport
}

/// Sends `bytes`, then reads until the server closes (or 20 s pass): what
/// came back, and whether the server closed (a reset counts: closing with
/// unread bytes resets).
fn send(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let closed = match s.read_to_end(&mut got) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    (got, closed)
}

/// The exception message's kind and text, if `bytes` start with one.
fn exception(bytes: &[u8]) -> Option<(i32, String)> {
    let mut p = TBinaryInputProtocol::new(bytes, true);
    let m = p.read_message_begin().ok()?;
    if m.message_type != TMessageType::Exception {
        return None;
    }
    let e = thrift::Error::read_application_error_from_in_protocol(&mut p).ok()?;
    Some((e.kind as i32, e.message))
}

#[test]
fn garbage_frames_get_an_error_or_a_close_and_the_server_serves_on() {
    let (app, addr) = spawn_thrift("");
    // HTTP on the Thrift port: not a message header.
    let (got, closed) = send(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed, "an unreadable header must close the connection");
    assert_eq!(exception(&got).map(|e| e.0), Some(7), "PROTOCOL_ERROR");

    // A header announcing a 2 GiB method name, then nothing.
    let mut forged = vec![0x80, 0x01, 0x00, 0x01];
    forged.extend_from_slice(&i32::MAX.to_be_bytes());
    let (_, closed) = send(addr, &forged);
    assert!(closed);

    // A createUser whose User field announces a 2 GiB password.
    let mut o = TBinaryOutputProtocol::new(Vec::new(), true);
    o.write_message_begin(&TMessageIdentifier::new(
        "createUser",
        TMessageType::Call,
        3,
    ))
    .unwrap();
    o.write_struct_begin(&TStructIdentifier::new("a")).unwrap();
    o.write_field_begin(&TFieldIdentifier::new("user", TType::Struct, 1))
        .unwrap();
    o.write_struct_begin(&TStructIdentifier::new("User"))
        .unwrap();
    o.write_field_begin(&TFieldIdentifier::new("password", TType::String, 2))
        .unwrap();
    let mut bytes = o.transport;
    bytes.extend_from_slice(&(i32::MAX - 1).to_be_bytes());
    let (got, closed) = send(addr, &bytes);
    assert!(closed);
    assert_eq!(exception(&got).map(|e| e.0), Some(7));

    // A reply sent to the server, and random bytes.
    let (_, closed) = send(addr, &call("ping", TMessageType::Reply));
    assert!(closed);
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (_, closed) = send(addr, &noise);
    assert!(closed);

    // Half a message, then silence: closed at the request deadline
    // (REQUEST_TIMEOUT_MS is 10 s in tests), not held forever.
    let started = Instant::now();
    let half = call("ping", TMessageType::Call);
    let (_, closed) = send(addr, &half[..half.len() - 1]);
    assert!(closed && started.elapsed() < Duration::from_secs(19));

    // An unknown method is answered and the connection stays usable.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&call("deleteUser", TMessageType::Call))
        .unwrap();
    s.write_all(&call("ping", TMessageType::Call)).unwrap();
    let mut p = TBinaryInputProtocol::new(s, true);
    let m = p.read_message_begin().unwrap();
    assert_eq!(m.message_type, TMessageType::Exception);
    let e = thrift::Error::read_application_error_from_in_protocol(&mut p).unwrap();
    assert_eq!(e.kind as i32, 1, "UNKNOWN_METHOD");
    let m = p.read_message_begin().unwrap();
    assert_eq!(
        (m.name.as_str(), m.message_type),
        ("ping", TMessageType::Reply)
    );

    // Still serving: the old client, and HTTP.
    assert_eq!(
        old_client(addr, &[json!({"call": "ping"})]),
        [json!({"ok": "pong"})]
    );
    assert_eq!(app.ok("ping", json!({})), "pong");
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let (app, addr) = spawn_thrift("MAX_CONNECTIONS = 2\n");
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Let the acceptor register both before the third arrives.
    assert!(app.eventually(Duration::from_secs(10), || {
        app.get("/metrics")
            .text()
            .contains("profiteer_thrift_connections 2")
    }));
    let (got, closed) = send(addr, &call("ping", TMessageType::Call));
    assert!(
        closed && got.is_empty(),
        "the third connection is not served"
    );
    assert!(app
        .get("/metrics")
        .text()
        .contains("profiteer_thrift_refused_total 1"));
    drop(held);
    assert!(app.eventually(Duration::from_secs(10), || {
        old_client(addr, &[json!({"call": "ping"})]) == [json!({"ok": "pong"})]
    }));
}

/// A createUser call with a plaintext password, as bytes.
fn create_user(id: i64, password: &str) -> Vec<u8> {
    let mut o = TBinaryOutputProtocol::new(Vec::new(), true);
    o.write_message_begin(&TMessageIdentifier::new(
        "createUser",
        TMessageType::Call,
        1,
    ))
    .unwrap();
    o.write_struct_begin(&TStructIdentifier::new("args"))
        .unwrap();
    o.write_field_begin(&TFieldIdentifier::new("user", TType::Struct, 1))
        .unwrap();
    o.write_struct_begin(&TStructIdentifier::new("User"))
        .unwrap();
    o.write_field_begin(&TFieldIdentifier::new("id", TType::I64, 1))
        .unwrap();
    o.write_i64(id).unwrap();
    o.write_field_begin(&TFieldIdentifier::new("password", TType::String, 2))
        .unwrap();
    o.write_string(password).unwrap();
    o.write_field_stop().unwrap();
    o.write_struct_end().unwrap();
    o.write_field_stop().unwrap();
    o.write_struct_end().unwrap();
    o.transport
}

#[test]
fn thrift_calls_share_the_workers_queue_and_are_shed_when_it_is_full() {
    // One worker, one queued job; createUser waits on bcrypt (cost 12 in
    // a debug build: far slower than the calls take to arrive).
    let (app, addr) = spawn_thrift(
        "[SERVER]\nWORKERS = 1\nQUEUE_DEPTH = 1\n[AUTH]\nBCRYPT_COST = 12\nHASH_WORKERS = 1\n",
    );
    let calls: Vec<_> = (1..=6i64)
        .map(|id| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                s.write_all(&create_user(id, PASSWORD)).unwrap();
                let started = Instant::now();
                let mut p = TBinaryInputProtocol::new(s, true);
                let m = p.read_message_begin().unwrap();
                let code = match m.message_type {
                    TMessageType::Exception => {
                        let e =
                            thrift::Error::read_application_error_from_in_protocol(&mut p).unwrap();
                        let e: serde_json::Value = serde_json::from_str(&e.message).unwrap();
                        e["code"].as_i64().unwrap()
                    }
                    _ => 0,
                };
                (code, started.elapsed())
            })
        })
        .collect();
    let outcomes: Vec<(i64, Duration)> = calls.into_iter().map(|t| t.join().unwrap()).collect();
    let shed: Vec<_> = outcomes.iter().filter(|(c, _)| *c == -32002).collect();
    assert!(!shed.is_empty(), "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(c, _)| [0, -32002, -32001].contains(c)),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|(c, _)| *c == 0), "{outcomes:?}");
    let metrics = app.get("/metrics").text();
    assert!(
        metrics.contains("method=\"thrift.createUser\",outcome=\"overloaded\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("profiteer_shed_total 0"), "{metrics}");
}
