//! Slow and silent clients for bench/run's attack scenarios, which measure
//! `ping` while one of these runs. Loopback only, bounded in count and time:
//! each mode keeps COUNT connections busy for SECONDS, reconnecting when the
//! server closes one, then prints one JSON line of what the server did.
//!
//! `cargo run --release --example attack -- PORT MODE COUNT SECONDS`
//!
//! - `idle`: connects and says nothing (the server answers 408 after
//!   HEADER_TIMEOUT_MS and closes; the client reconnects).
//! - `headers`: a request line, then one header byte every 200 ms, never
//!   ending the headers (slowloris).
//! - `body`: `POST /rpc` headers announcing 200,000 bytes, then 1,000 bytes
//!   every 100 ms (the body would take 20 s).
//! - `expect`: `Expect: 100-continue` with a 65,536-byte Content-Length on
//!   `/anything`, `/healthz` or `/rpc` (in turn), and never the body; reads
//!   whatever comes until the server closes, pauses 500 ms, again.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    connects: AtomicU64,
    connect_errors: AtomicU64,
    closed_by_server: AtomicU64,
    statuses: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn status(&self, answer: &[u8]) {
        let text = String::from_utf8_lossy(answer);
        // The last status line: a `100 Continue` may come first.
        let status = text
            .split("\r\n")
            .filter(|l| l.starts_with("HTTP/1."))
            .last()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("none")
            .to_string();
        if let Ok(mut m) = self.statuses.lock() {
            *m.entry(status).or_default() += 1;
        }
    }
}

/// Reads until the server closes (or `end`); what it sent.
fn read_to_close(s: &mut TcpStream, end: Instant) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return None;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut chunk) {
            Ok(0) => return Some(raw),
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(_) => return Some(raw),
        }
    }
}

/// Writes `bytes` every `every` until the server closes or `end`; then
/// reads what it answered.
fn drip(s: &mut TcpStream, bytes: &[u8], every: Duration, end: Instant) -> Option<Vec<u8>> {
    while Instant::now() < end {
        std::thread::sleep(every);
        if s.write_all(bytes).is_err() {
            return read_to_close(s, end);
        }
    }
    None
}

fn one(addr: SocketAddr, mode: &str, n: usize, end: Instant, tally: &Tally) {
    let mut round = 0usize;
    while Instant::now() < end {
        round += 1;
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(_) => {
                tally.connect_errors.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        tally.connects.fetch_add(1, Ordering::Relaxed);
        let answer = match mode {
            "idle" => read_to_close(&mut s, end),
            "headers" => {
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Trickle: ");
                drip(&mut s, b"a", Duration::from_millis(200), end)
            }
            "body" => {
                let head = "POST /rpc HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n";
                let _ = s.write_all(head.as_bytes());
                drip(&mut s, &[b' '; 1000], Duration::from_millis(100), end)
            }
            _ => {
                let path = ["/anything", "/healthz", "/rpc"][(n + round) % 3];
                let head = format!(
                    "POST {path} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\
                     Content-Length: 65536\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes());
                let answer = read_to_close(&mut s, end);
                std::thread::sleep(Duration::from_millis(500));
                answer
            }
        };
        if let Some(answer) = answer {
            tally.closed_by_server.fetch_add(1, Ordering::Relaxed);
            tally.status(&answer);
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let port: u16 = a.get(1).and_then(|v| v.parse().ok()).unwrap_or(8080);
    let mode = a.get(2).cloned().unwrap_or_else(|| "idle".into());
    let count: usize = a.get(3).and_then(|v| v.parse().ok()).unwrap_or(100);
    let secs: u64 = a.get(4).and_then(|v| v.parse().ok()).unwrap_or(10);
    if !["idle", "headers", "body", "expect"].contains(&mode.as_str()) || count > 5000 || secs > 600
    {
        eprintln!("usage: attack PORT idle|headers|body|expect COUNT(<=5000) SECONDS(<=600)");
        std::process::exit(2);
    }
    // Loopback only: this is a load generator for our own server.
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let end = Instant::now() + Duration::from_secs(secs);
    let tally = Arc::new(Tally::default());
    let threads: Vec<_> = (0..count)
        .filter_map(|n| {
            let (tally, mode) = (tally.clone(), mode.clone());
            // Spread the connects over the first second, as clients would.
            let start = Duration::from_secs_f64(n as f64 / count as f64);
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    std::thread::sleep(start);
                    one(addr, &mode, n, end, &tally);
                })
                .ok()
        })
        .collect();
    let started = threads.len();
    for t in threads {
        let _ = t.join();
    }
    let statuses = tally
        .statuses
        .lock()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    println!(
        "{{\"mode\":\"{mode}\",\"clients\":{started},\"seconds\":{secs},\"connects\":{},\
         \"connect_errors\":{},\"closed_by_server\":{},\"answers\":{{{statuses}}}}}",
        tally.connects.load(Ordering::Relaxed),
        tally.connect_errors.load(Ordering::Relaxed),
        tally.closed_by_server.load(Ordering::Relaxed),
    );
}
