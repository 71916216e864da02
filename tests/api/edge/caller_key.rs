//! Issue 28 item 3: the caller key is checked when the headers end, so a
//! keyless client cannot make the server buffer its body.

use std::io::Write;

use super::{connect, ping, read_to_close, PING};
use crate::auth::sha256_hex;
use crate::helpers::*;

const KEY: &str = "edge-caller-key";

fn app_with_clients() -> TestApp {
    spawn_with(Options {
        ini: format!("[CLIENTS]\ngateway = {} ping\n", sha256_hex(KEY)),
        ..Default::default()
    })
}

#[test]
fn a_caller_without_a_good_key_is_refused_401_when_its_headers_end_and_its_body_never_read() {
    let app = app_with_clients();
    let keys = [
        String::new(),
        "X-Client-Key: wrong\r\n".to_string(),
        format!("X-Client-Key: {KEY}\r\nX-Client-Key: {KEY}\r\n"),
        format!("X-Client-Key: {KEY}, {KEY}\r\n"),
    ];
    for extra in &keys {
        let mut s = connect(&app);
        // A body of almost 1 MiB announced, 1000 bytes of it sent, and no
        // more until an answer: the answer must not wait for the rest.
        let head =
            format!("POST /rpc HTTP/1.1\r\nHost: t\r\n{extra}Content-Length: 1000000\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&[b' '; 1000]).unwrap();
        let (text, closed) = read_to_close(&mut s);
        assert!(text.starts_with("HTTP/1.1 401 "), "{extra:?}: {text}");
        assert!(text.contains("-32030"), "{extra:?}: {text}");
        assert!(closed, "{extra:?}: the connection stayed open");
    }
    assert!(app.metric("profiteer_bodies_refused_total") >= 4.0);
    assert!(ping(&app, &format!("X-Client-Key: {KEY}\r\n")) < std::time::Duration::from_secs(3));
}

#[test]
fn a_repeated_or_listed_client_key_is_401_even_when_each_copy_is_good() {
    let app = app_with_clients();
    for extra in [
        format!("X-Client-Key: {KEY}\r\nX-Client-Key: {KEY}\r\n"),
        format!("X-Client-Key: {KEY},{KEY}\r\n"),
    ] {
        let r = app.post_with(PING, &extra);
        assert_eq!(r.status, 401, "{extra:?}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], -32030);
    }
    let r = app.post_with(PING, &format!("X-Client-Key: {KEY}\r\n"));
    assert_eq!(r.json()["result"], "pong");
}
