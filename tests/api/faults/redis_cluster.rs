//! A Redis Cluster as `REDIS_URI` (several comma-separated URIs): the
//! failed-login counters live in it, shared by every instance; a master
//! lost costs no error (each instance limits on its own meanwhile), and the
//! cluster is used again once it answers, without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::private::PrivateRedisCluster;
use super::*;

/// A wrong password for `username` from `ip`: the error code it got.
fn wrong_login(app: &TestApp, username: &str, ip: &str) -> i64 {
    let r = app.rpc(
        "auth.login",
        json!({"username": username, "password": "not-the-password-9", "ip": ip}),
    );
    r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("a wrong password was accepted: {r}"))
}

/// Where the last login-limit decision of `app` was taken.
fn limiter(app: &TestApp) -> &'static str {
    let text = app.get("/metrics").text();
    if text.contains("profiteer_login_limiter{backend=\"redis\"} 1") {
        "redis"
    } else {
        "local"
    }
}

/// The (login, ip) pair's counter, as named in the cluster.
fn pair_key(app: &TestApp, username: &str, ip: &str) -> String {
    format!("{}rl:pair:{{{username}|{ip}}}", app.prefix)
}

#[test]
fn a_redis_cluster_shares_login_limits_survives_a_lost_master_and_is_used_again() {
    let mut cluster = PrivateRedisCluster::start();
    let a = spawn_with(Options {
        redis_uri: Some(cluster.uri()),
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 2\n".into(),
        ..Options::default()
    });
    let b = a.another();
    a.register("rc_alice");

    // Shared: two failures on A, the third on B is refused.
    let ip = "10.1.2.3";
    assert_eq!(wrong_login(&a, "rc_alice", ip), -32011);
    assert_eq!(wrong_login(&a, "rc_alice", ip), -32011);
    assert_eq!(
        cluster.get(&pair_key(&a, "rc_alice", ip)).as_deref(),
        Some("2")
    );
    assert_eq!(wrong_login(&b, "rc_alice", ip), -32029);
    assert_eq!((limiter(&a), limiter(&b)), ("redis", "redis"));
    // A login makes its address known: the marker is kept beside each of
    // the three counters (in each one's slot), where their scripts look.
    let home = "10.1.2.99";
    b.ok(
        "auth.login",
        json!({"username": "rc_alice", "password": PASSWORD, "ip": home}),
    );
    let p = &a.prefix;
    let known = format!("{p}rl:known:{{rc_alice|{home}}}");
    for counter in [
        format!("{p}rl:pair:{{rc_alice|{home}}}"),
        format!("{p}rl:ip:{{{home}}}"),
        format!("{p}rl:login:{{rc_alice}}"),
    ] {
        let copy = format!("{counter}|{known}");
        assert_eq!(cluster.get(&copy).as_deref(), Some("1"), "{copy}");
    }

    // The master that holds bob's pair counter dies: no -32000 on either
    // instance, and each goes on limiting on its own.
    a.register("rc_bob");
    a.register("rc_carol");
    let ip = "10.4.5.6";
    let master = cluster.owner(&pair_key(&a, "rc_bob", ip));
    // Logins on both instances throughout the loss: each answers what a
    // login answers (a wrong password, a limit, a session), never -32000.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
    let load: Vec<_> = [a.addr, b.addr]
        .into_iter()
        .enumerate()
        .map(|(n, addr)| {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    let params = if i % 2 == 0 {
                        json!({"username": "rc_carol", "password": PASSWORD, "ip": "10.50.0.1"})
                    } else {
                        json!({"username": format!("rc_load{n}_{i}"), "password": "x-wrong-9",
                               "ip": format!("10.60.{n}.{}", i % 250)})
                    };
                    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "auth.login",
                                      "params": params});
                    let head = format!(
                        "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.to_string().len()
                    );
                    let r = http(addr, &head, body.to_string().as_bytes()).json();
                    seen.lock().unwrap().push(r);
                    i += 1;
                }
            })
        })
        .collect();
    cluster.down(master);
    for app in [&a, &b] {
        assert_eq!(wrong_login(app, "rc_bob", ip), -32011);
        assert_eq!(wrong_login(app, "rc_bob", ip), -32011);
        assert_eq!(wrong_login(app, "rc_bob", ip), -32029);
        let ok: Value = app.ok(
            "auth.login",
            json!({"username": "rc_carol", "password": PASSWORD, "ip": ip}),
        );
        assert!(ok["access_token"].is_string(), "{ok}");
        assert_eq!(limiter(app), "local");
    }
    let loaded = a.eventually(Duration::from_secs(60), || seen.lock().unwrap().len() >= 20);
    assert!(loaded, "the login load did not run");
    stop.store(true, Ordering::Release);
    for t in load {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let odd: Vec<&Value> = seen
        .iter()
        .filter(|r| {
            let code = r["error"]["code"].as_i64();
            !(r["result"]["access_token"].is_string()
                || [Some(-32011), Some(-32029)].contains(&code))
        })
        .collect();
    assert!(
        odd.is_empty(),
        "{} of {} logins answered {:?}",
        odd.len(),
        seen.len(),
        odd.first()
    );

    // Back: the cluster is used again, by both, with no restart.
    cluster.up(master);
    cluster.wait_ok();
    let ip = "10.7.8.9";
    let key = pair_key(&a, "rc_dave", ip);
    let counted = a.eventually(Duration::from_secs(30), || {
        assert_ne!(wrong_login(&a, "rc_dave", ip), -32000);
        cluster.get(&key).is_some()
    });
    assert!(counted, "the cluster was not used again:\n{}", a.logs());
    let before: u64 = cluster.get(&key).unwrap().parse().unwrap();
    let shared = b.eventually(Duration::from_secs(30), || {
        assert_ne!(wrong_login(&b, "rc_dave", ip), -32000);
        cluster
            .get(&key)
            .is_some_and(|n| n.parse::<u64>().unwrap() > before)
    });
    assert!(
        shared,
        "B does not count in the cluster again:\n{}",
        b.logs()
    );
    assert_eq!((limiter(&a), limiter(&b)), ("redis", "redis"));
}
