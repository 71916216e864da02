//! A paced login (or account creation) flood that records latency per
//! outcome, which wrk cannot: it shows how fast excess calls are shed
//! (-32002) while the hashing lane is full. Prints one JSON line.
//!
//! `cargo run --release --example flood -- ADDR RATE_PER_S SECONDS CONNECTIONS USERS PASSWORD [MODE [TAG]]`
//!
//! MODE `login` (the default): `auth.login` of `bench_0` .. `bench_{USERS-1}`;
//! `register`: `auth.register` of fresh usernames `f{TAG}_{n}` (TAG tells
//! one run's names from another's; USERS is not used), an `ok` being an
//! answer with a `user_id`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What an answer that is neither a token nor a shed was: its JSON-RPC
/// error code, else its HTTP status line, else "no_answer".
fn other_outcome(resp: &str) -> String {
    if let Some(at) = resp.find("\"code\":") {
        let code: String = resp[at + 7..]
            .chars()
            .take_while(|c| *c == '-' || c.is_ascii_digit())
            .collect();
        return format!("error {code}");
    }
    match resp.lines().next() {
        Some(status) if !status.is_empty() => status.trim().to_string(),
        _ => "no_answer".to_string(),
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let addr = a.get(1).cloned().unwrap_or_else(|| "127.0.0.1:8080".into());
    let rate: f64 = a.get(2).and_then(|v| v.parse().ok()).unwrap_or(40.0);
    let secs: u64 = a.get(3).and_then(|v| v.parse().ok()).unwrap_or(10);
    let conns: usize = a.get(4).and_then(|v| v.parse().ok()).unwrap_or(16);
    let users: usize = a.get(5).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let password = a.get(6).cloned().unwrap_or_default();
    let register = match a.get(7).map(String::as_str) {
        None | Some("login") => false,
        Some("register") => true,
        Some(other) => {
            eprintln!("flood: MODE {other}: expected login or register");
            std::process::exit(2)
        }
    };
    let tag = a.get(8).cloned().unwrap_or_default();
    let success = if register {
        "\"user_id\""
    } else {
        "\"access_token\""
    };
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let end = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..conns)
        .map(|t| {
            let (addr, password, tag) = (addr.clone(), password.clone(), tag.clone());
            std::thread::spawn(move || {
                let mut out: Vec<(String, f64)> = Vec::new();
                let mut next = Instant::now() + interval.mul_f64(t as f64 / conns as f64);
                let mut i = t;
                // A slot past the end is not slept for: with few calls a
                // second over many connections, a thread's next slot can lie
                // seconds beyond a short run.
                while next < end {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    // Open loop, without catch-up: a thread held by a slow
                    // login skips the slots it missed instead of bursting.
                    next = (next + interval).max(Instant::now());
                    let body = if register {
                        format!(
                            r#"{{"jsonrpc":"2.0","method":"auth.register","params":{{"username":"f{tag}_{i}","password":"{password}"}},"id":1}}"#
                        )
                    } else {
                        format!(
                            r#"{{"jsonrpc":"2.0","method":"auth.login","params":{{"username":"bench_{}","password":"{}"}},"id":1}}"#,
                            i % users,
                            password
                        )
                    };
                    i += conns;
                    let started = Instant::now();
                    let outcome = match TcpStream::connect(&addr) {
                        Err(_) => "connect_error".to_string(),
                        Ok(mut s) => {
                            let req = format!(
                                "POST /rpc HTTP/1.1\r\nHost: b\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let mut resp = String::new();
                            let _ = s.write_all(req.as_bytes());
                            let _ = s.read_to_string(&mut resp);
                            if resp.contains(success) {
                                "ok".into()
                            } else if resp.contains("-32002") {
                                "shed".into()
                            } else {
                                other_outcome(&resp)
                            }
                        }
                    };
                    out.push((outcome, started.elapsed().as_secs_f64() * 1000.0));
                }
                out
            })
        })
        .collect();
    let all: Vec<(String, f64)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    let lat = |name: &str| {
        let mut v: Vec<f64> = all
            .iter()
            .filter(|(o, _)| o == name)
            .map(|(_, l)| *l)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (ok, shed) = (lat("ok"), lat("shed"));
    let others = all.len() - ok.len() - shed.len();
    let mut by_outcome: std::collections::BTreeMap<&str, usize> = Default::default();
    for (o, _) in all.iter().filter(|(o, _)| o != "ok" && o != "shed") {
        *by_outcome.entry(o).or_default() += 1;
    }
    let other_by: Vec<String> = by_outcome
        .iter()
        .map(|(o, n)| format!("{:?}:{n}", o))
        .collect();
    println!(
        r#"{{"mode":"{}","sent":{},"seconds":{secs},"ok":{},"shed":{},"other":{others},"other_by":{{{}}},"ok_p50_ms":{:.2},"ok_p99_ms":{:.2},"shed_p50_ms":{:.2},"shed_p99_ms":{:.2}}}"#,
        if register { "register" } else { "login" },
        all.len(),
        ok.len(),
        shed.len(),
        other_by.join(","),
        percentile(&ok, 0.5),
        percentile(&ok, 0.99),
        percentile(&shed, 0.5),
        percentile(&shed, 0.99)
    );
}
