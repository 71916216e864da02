//! profiteer behind HAProxy, configured by `deploy/haproxy.cfg` as it is
//! (addresses from the environment): SIGTERM on one instance while clients
//! keep calling through the balancer loses no request. The instance drains
//! (`/readyz` 503 at once, still serving for `DRAIN_S`), the balancer's
//! health check takes it out, and only then does it stop listening.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

/// A private HAProxy running `deploy/haproxy.cfg` in front of two
/// instances; killed when dropped.
pub struct Balancer {
    pub addr: SocketAddr,
    child: Child,
}

impl Balancer {
    pub fn start(app1: SocketAddr, app2: SocketAddr) -> Balancer {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let found = Command::new(root.join("scripts/haproxy.sh"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(found.status.success(), "scripts/haproxy.sh failed");
        let bin = String::from_utf8(found.stdout).unwrap().trim().to_string();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(bin)
            .arg("-f")
            .arg(root.join("deploy/haproxy.cfg"))
            .env("PROFITEER_LB", addr.to_string())
            .env("PROFITEER_APP1", app1.to_string())
            .env("PROFITEER_APP2", app2.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let b = Balancer { addr, child };
        let until = Instant::now() + Duration::from_secs(30);
        while call(b.addr, "ping", json!({})).is_err() {
            assert!(Instant::now() < until, "HAProxy never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One JSON-RPC call on a new connection: the result, or what went wrong
/// (a transport failure, a non-200 answer, or an error object).
pub fn call(addr: SocketAddr, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: lb\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body.as_bytes()))
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    if raw.is_empty() {
        return Err("empty answer".into());
    }
    let answer = parse_response(&raw);
    if answer.status != 200 {
        return Err(format!("HTTP {}: {}", answer.status, answer.text()));
    }
    let v: Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
    match v.get("error") {
        Some(e) => Err(format!("{method}: {e}")),
        None => Ok(v["result"].clone()),
    }
}

/// Whether process `pid` has exited (gone, or a zombie not yet reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn sigterm_on_one_instance_behind_haproxy_loses_no_request() {
    let a = spawn_with(Options {
        ini: "[SERVER]\nDRAIN_S = 4\n".into(),
        ..Options::default()
    });
    let b = a.another();
    let (id, t) = a.register_and_login("lb_ann");
    let token = t["access_token"].as_str().unwrap().to_string();
    let lb = Balancer::start(a.addr, b.addr);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            let token = token.clone();
            std::thread::spawn(move || {
                let calls = [
                    ("auth.introspect", json!({"token": token})),
                    ("ping", json!({})),
                    ("user.get", json!({"user_id": id})),
                ];
                let mut i = n;
                while !stop.load(Ordering::Acquire) {
                    let (method, params) = &calls[i % calls.len()];
                    match call(lb.addr, method, params.clone()) {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::AcqRel);
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let served_at_least = |n: usize| {
        let until = Instant::now() + Duration::from_secs(60);
        let from = done.load(Ordering::Acquire);
        while done.load(Ordering::Acquire) < from + n {
            assert!(Instant::now() < until, "the clients stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    served_at_least(100);
    a.terminate();
    let until = Instant::now() + Duration::from_secs(60);
    while !exited(a.pid()) {
        assert!(Instant::now() < until, "the instance never exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Served on by the other instance alone.
    served_at_least(100);
    stop.store(true, Ordering::Release);
    for c in clients {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} calls failed, first: {:?}",
        failures.len(),
        failures.len() + done.load(Ordering::Acquire),
        failures.first()
    );
    drop(lb);
    drop(b);
}
