//! Primary failover (contract, "Scale-out"): a private primary and its
//! `pg_basebackup -R` standby, instances whose `PG_URI` names both hosts
//! with `target_session_attrs=read-write`. The primary stops (or turns
//! read-only), the standby is promoted, and with no restart every instance
//! writes to the new primary, `/readyz` answers 200 again, the cache feed
//! follows, and nothing acknowledged before a clean shutdown is missing.

use std::time::Duration;

use serde_json::json;

use super::private::PrivatePg;
use super::*;

/// The contract's bound for writing to a promoted standby.
const FAILOVER: Duration = Duration::from_secs(15);

/// A primary and a streaming standby of it.
pub struct PgPair {
    pub primary: PrivatePg,
    pub standby: PrivatePg,
}

impl PgPair {
    pub fn start() -> PgPair {
        let primary = PrivatePg::start();
        let standby = PrivatePg::standby_of(&primary);
        PgPair { primary, standby }
    }

    /// Both hosts, libpq style: whichever is writable takes the writes.
    /// The standby comes first, so every start also shows that migrations
    /// and writes skip a read-only host.
    pub fn write_uri(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
            self.standby.port, self.primary.port
        )
    }

    /// The standby alone, for `PG_READ_URI`.
    pub fn read_uri(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.standby.port)
    }
}

/// An instance on `pair` (its database made on the primary), with
/// `PG_URI` naming both hosts and `ini` (which may use `{db}`) after it.
pub fn spawn_on(pair: &PgPair, ini: &str) -> TestApp {
    let opts = Options {
        pg_base: Some(pair.primary.base()),
        ..Options::default()
    };
    let (name, config) = prepare(&opts);
    let text = std::fs::read_to_string(&config).unwrap();
    let pg = format!(
        "[PG]\nPG_URI = {}\n{}\n",
        pair.write_uri(&name),
        ini.replace("{db}", &name)
    );
    std::fs::write(&config, text + &pg).unwrap();
    let mut app = start(&config, &[]);
    app.name = name.clone();
    app.prefix = format!("{name}:");
    app.pg_base = pair.primary.base();
    app
}

/// Whether `app` can write now: a registration succeeds.
fn writes(app: &TestApp, username: &str) -> bool {
    let r = app.rpc(
        "auth.register",
        json!({"username": username, "password": PASSWORD}),
    );
    r.get("result").is_some()
}

fn usernames_on(pg: &PrivatePg, db: &str) -> Vec<String> {
    pg.client(db)
        .query("SELECT username FROM users ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The primary stops (fast: a clean shutdown), the standby is promoted:
/// both instances write again, with no restart, and are ready; every
/// registration acknowledged before the shutdown is on the new primary.
#[test]
fn after_a_promotion_every_instance_writes_to_the_new_primary_and_nothing_acknowledged_is_lost() {
    let pair = PgPair::start();
    let a = spawn_on(&pair, "");
    let b = a.another();
    let mut acked = Vec::new();
    for i in 0..20 {
        let (app, name) = if i % 2 == 0 {
            (&a, "fo_a")
        } else {
            (&b, "fo_b")
        };
        let username = format!("{name}{i}");
        assert!(writes(app, &username), "{username} not written");
        acked.push(username);
    }
    assert_eq!(a.get("/readyz").status, 200);

    pair.primary.down();
    // No host takes writes (the standby is read-only): not ready.
    let unready = a.eventually(FAILOVER, || a.get("/readyz").status == 503);
    assert!(unready, "/readyz stayed 200 with no primary");
    pair.standby.promote();

    for (app, name) in [(&a, "a"), (&b, "b")] {
        let mut n = 0;
        let wrote = app.eventually(FAILOVER, || {
            n += 1;
            writes(app, &format!("fo_after_{name}{n}"))
        });
        assert!(wrote, "instance {name} never wrote to the promoted standby");
        let ready = app.eventually(FAILOVER, || app.get("/readyz").status == 200);
        assert!(
            ready,
            "instance {name}: /readyz stayed 503 after the promotion"
        );
    }
    let stored = usernames_on(&pair.standby, &a.name);
    for username in &acked {
        assert!(
            stored.contains(username),
            "{username} was acknowledged before the shutdown and is lost"
        );
    }
}

/// The primary turns read-only with its connections open (as a demoted
/// primary would): `/readyz` is 503. The standby is promoted. A pooled
/// connection to the
/// old primary fails one write with 25006 and is dropped with every other
/// connection opened before: the writes that follow all succeed (reusing
/// one would fail them), `/readyz` is 200 again, and the cache feed has
/// moved too: a logout on A kills the token B had cached.
#[test]
fn connections_found_on_a_read_only_server_are_dropped_and_the_feed_follows_the_new_primary() {
    let pair = PgPair::start();
    let a = spawn_on(&pair, "");
    let b = a.another();
    let (_, t) = a.register_and_login("ro_victim");
    let token = t["access_token"].as_str().unwrap().to_string();
    assert!(active(&b, &token));
    // Every pool holds connections to the primary.
    for i in 0..4 {
        assert!(writes(&a, &format!("ro_a{i}")));
        assert!(writes(&b, &format!("ro_b{i}")));
    }
    pair.standby.caught_up_with(&pair.primary);

    pair.primary.text(
        "postgres",
        "ALTER SYSTEM SET default_transaction_read_only = on",
    );
    pair.primary.text("postgres", "SELECT pg_reload_conf()");
    // The pooled connections still reach the old primary, which answers
    // `SELECT 1` but takes no write: not ready.
    let unready = a.eventually(FAILOVER, || a.get("/readyz").status == 503);
    assert!(unready, "/readyz stayed 200 with only read-only servers");
    pair.standby.promote();

    for (app, name) in [(&a, "a"), (&b, "b")] {
        let mut n = 0;
        let wrote = app.eventually(FAILOVER, || {
            n += 1;
            writes(app, &format!("ro_after_{name}{n}"))
        });
        assert!(wrote, "instance {name} never wrote to the promoted standby");
        for i in 0..10 {
            let username = format!("ro_then_{name}{i}");
            assert!(
                writes(app, &username),
                "instance {name}: {username} failed after a write had succeeded"
            );
        }
        assert_eq!(app.get("/readyz").status, 200, "instance {name}");
    }
    let old = usernames_on(&pair.primary, &a.name);
    assert!(!old.iter().any(|u| u.starts_with("ro_then_")), "{old:?}");

    a.ok("auth.logout", json!({"token": token}));
    assert!(
        dead_within(&b, &token, Duration::from_millis(2500)).is_some(),
        "B's cache feed stayed on the old primary: the logged-out token is alive there"
    );
}
