//! Webhooks: each account event POSTed to a `[WEBHOOKS]` endpoint, signed
//! per the Standard Webhooks specification, at least once and in order,
//! retried while the receiver fails, resumed from the stored position by
//! whichever instance holds the endpoint. The receiver here is a plain TCP
//! listener of the test's that checks each signature with its own HMAC.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

const KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

/// A receiver that answers 500 to its first `fail_first` requests, and
/// after them 200 while `accepting`, and keeps every request it got.
fn receiver_switched(
    fail_first: usize,
    accepting: Arc<AtomicBool>,
) -> (u16, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                headers.push(line.trim_end().to_string());
            }
            let header = |name: &str| {
                headers
                    .iter()
                    .find_map(|h| {
                        let (k, v) = h.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let len: usize = header("content-length").parse().unwrap_or(0);
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut all = seen.lock().unwrap();
            let take = all.len() >= fail_first && accepting.load(Ordering::Acquire);
            let answered = if take { 200 } else { 500 };
            all.push(Delivery {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signature: header("webhook-signature"),
                body: String::from_utf8(body).unwrap(),
                answered,
            });
            drop(all);
            let _ = write!(
                stream,
                "HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, got)
}

fn receiver(fail_first: usize) -> (u16, Arc<Mutex<Vec<Delivery>>>) {
    receiver_switched(fail_first, Arc::new(AtomicBool::new(true)))
}

fn ini(port: u16) -> String {
    format!(
        "[WEBHOOKS]\ncrm = http://127.0.0.1:{port}/hooks\ncrm.SECRET = whsec_{KEY}\n\
         RETRY_HOURS = 1\n"
    )
}

/// The deliveries answered 200, once each, in the order they came.
fn delivered(got: &Arc<Mutex<Vec<Delivery>>>) -> Vec<Delivery> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|d| d.answered == 200)
        .cloned()
        .collect()
}

#[test]
fn events_are_posted_signed_in_order_and_retried_while_the_receiver_fails() {
    let (port, got) = receiver(3);
    let app = spawn_with(Options {
        ini: ini(port),
        ..Options::default()
    });
    let (id, tokens) = app.register_and_login("hooked");
    app.ok("auth.logout", json!({"token": tokens["access_token"]}));
    let all_three = app.eventually(Duration::from_secs(30), || delivered(&got).len() >= 3);
    assert!(all_three, "{:?}", got.lock().unwrap());

    let attempts = got.lock().unwrap().clone();
    // The first three attempts failed (500); the same message came again
    // until it was taken.
    assert!(attempts[..3].iter().all(|a| a.answered == 500));
    assert!(attempts[..4].iter().all(|a| a.id == attempts[0].id));
    // Counted once the position has moved, a moment after the receiver
    // had the event.
    let counted = app.eventually(Duration::from_secs(10), || {
        let metrics = app.get("/metrics").text();
        metrics.contains("profiteer_webhook_delivered_total{endpoint=\"crm\"} 3")
            && metrics.contains("profiteer_webhook_failed_total{endpoint=\"crm\"} 3")
    });
    assert!(counted, "{}", app.get("/metrics").text());
    let ok = delivered(&got);
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let mut types = Vec::new();
    for d in &ok {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", d.id, d.timestamp, d.body).as_bytes());
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(d.signature, expected, "{d:?}");
        let event: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(event["user_id"], id);
        types.push(event["type"].as_str().unwrap().to_string());
    }
    assert_eq!(
        types,
        ["user.created", "session.created", "session.revoked"]
    );
}

/// A second instance with the same endpoint delivers nothing twice while
/// the first holds the endpoint, and goes on from the stored position once
/// the first has stopped.
#[test]
fn a_second_instance_takes_over_from_the_stored_position_when_the_first_stops() {
    let (port, got) = receiver(0);
    let mut first = spawn_with(Options {
        ini: ini(port),
        ..Options::default()
    });
    let second = first.another();
    first.register("one");
    assert!(first.eventually(Duration::from_secs(30), || delivered(&got).len() == 1));
    first.stop();
    second.register("two");
    let both = second.eventually(Duration::from_secs(30), || delivered(&got).len() >= 2);
    assert!(both, "{:?}", got.lock().unwrap());
    std::thread::sleep(Duration::from_millis(500)); // would a duplicate come?
    let ids: Vec<String> = delivered(&got).iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), 2, "delivered twice: {ids:?}");
    assert_ne!(ids[0], ids[1]);
}

/// profiteer killed with -9 while an event's delivery is being retried:
/// the instance started after it delivers everything, in order, from the
/// stored position.
#[test]
fn a_kill_9_mid_delivery_loses_nothing() {
    let accepting = Arc::new(AtomicBool::new(false));
    let (port, got) = receiver_switched(0, accepting.clone());
    let mut app = spawn_with(Options {
        ini: ini(port),
        ..Options::default()
    });
    for name in ["kay1", "kay2", "kay3"] {
        app.register(name);
    }
    let trying = app.eventually(Duration::from_secs(30), || !got.lock().unwrap().is_empty());
    assert!(trying, "no delivery was attempted");
    app.crash();
    accepting.store(true, Ordering::Release);
    let again = app.another();
    let all = again.eventually(Duration::from_secs(30), || delivered(&got).len() >= 3);
    assert!(all, "{:?}", got.lock().unwrap());
    let names: Vec<String> = delivered(&got)
        .iter()
        .map(|d| {
            let e: Value = serde_json::from_str(&d.body).unwrap();
            e["data"]["username"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names, ["kay1", "kay2", "kay3"]);
}
