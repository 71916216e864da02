//! Crash safety: profiteer is killed with SIGKILL during bursts of
//! registrations with profiles, profile updates and imports. After a
//! restart every acknowledged write is entirely there (account and
//! profile), and an unacknowledged registration sent again ends well.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::*;

/// One call that may fail (the server dies): its result, or `None`.
fn try_call(addr: SocketAddr, method: &str, params: &Value) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let v: Value = serde_json::from_slice(&raw[split + 4..]).ok()?;
    v.get("result").cloned()
}

#[derive(Default)]
struct Acked {
    /// (username, profile) of registrations and imports that were answered.
    created: Vec<(String, Value)>,
    /// Registrations sent but never answered.
    unanswered: Vec<Value>,
    /// Per updated user: the nickname of the last answered update, and the
    /// highest one sent.
    updates: Vec<(i64, Option<u64>, u64)>,
}

#[test]
fn after_a_kill_9_every_acknowledged_write_is_whole_and_a_retry_ends_well() {
    let mut app = spawn_app();
    let targets: Vec<i64> = (0..2)
        .map(|i| app.register(&format!("cr_target{i}")))
        .collect();
    let addr = app.addr;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..2 {
        let (acked, stop) = (acked.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let username = format!("cr_r{t}_{i}");
                let profile = json!({"nickname": username, "bio": "crash test"});
                // The key is what makes a retry safe (never the password).
                let params = json!({"username": username, "password": PASSWORD,
                                    "profile": profile, "idempotency_key": username});
                match try_call(addr, "auth.register", &params) {
                    Some(_) => acked.lock().unwrap().created.push((username, profile)),
                    None => acked.lock().unwrap().unanswered.push(params),
                }
                let username = format!("cr_i{t}_{i}");
                let profile = json!({"nickname": username});
                let row = json!({"username": username, "password": PASSWORD, "profile": profile});
                if let Some(r) = try_call(addr, "user.import", &json!({"users": [row]})) {
                    if r["imported"] == 1 {
                        acked.lock().unwrap().created.push((username, profile));
                    }
                }
                i += 1;
            }
        }));
    }
    for (t, id) in targets.iter().copied().enumerate() {
        let (acked, stop) = (acked.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut last = None;
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                sent += 1;
                let params = json!({"user_id": id, "profile": {"nickname": sent.to_string()}});
                if try_call(addr, "user.update_profile", &params).is_some() {
                    last = Some(sent);
                }
            }
            acked.lock().unwrap().updates.push((id, last, sent));
            let _ = t;
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    app.crash();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let again = app.another();
    let acked = acked.lock().unwrap();
    eprintln!(
        "acknowledged creations {}, unanswered registrations {}, updates {:?}",
        acked.created.len(),
        acked.unanswered.len(),
        acked.updates
    );
    assert!(
        acked.created.len() >= 4,
        "too few writes acknowledged: {}",
        acked.created.len()
    );
    for (username, profile) in &acked.created {
        let user = again.ok("user.find", json!({"username": username}));
        assert_eq!(&user["profile"], profile, "{username}: profile lost");
    }
    for (id, last, sent) in &acked.updates {
        let user = again.ok("user.get", json!({"user_id": id}));
        let nickname: u64 = user["profile"]["nickname"]
            .as_str()
            .map_or(0, |n| n.parse().unwrap());
        // The last answered update, or one sent after it (unanswered).
        let floor = last.unwrap_or(0);
        assert!(
            (floor..=*sent).contains(&nickname),
            "user {id}: nickname {nickname}, last acknowledged {floor}, last sent {sent}"
        );
    }
    // Each registration that got no answer, sent again, ends well.
    for params in &acked.unanswered {
        let r = again.rpc("auth.register", params.clone());
        assert!(r.get("result").is_some(), "retry of {params}: {r}");
        let user = again.ok("user.find", json!({"username": params["username"]}));
        assert_eq!(user["profile"], params["profile"], "retry of {params}");
    }
}
