//! Webhooks: every account event POSTed to each `[WEBHOOKS]` endpoint as
//! JSON, signed per the Standard Webhooks specification (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`). One thread per endpoint reads the event log
//! from the endpoint's stored position and moves it only after a 2xx, so
//! delivery is at least once, in log order (so in order per user), and a
//! restart or a dead receiver loses nothing. A failing event is retried
//! with backoff (1 s doubling to 5 min) until `RETRY_HOURS` after it was
//! written, then skipped with an error in the log. A slow receiver holds
//! only its own thread: no call waits on a webhook. With several instances,
//! one delivers to an endpoint at a time: its thread holds a PostgreSQL
//! advisory lock named after the endpoint on a connection of its own (a
//! dead instance's lock goes with its connection, and another takes over).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::webhooks::{Endpoint, Secret};
use crate::config::PgConfig;
use crate::model::account_events::{cursor_text, event_json};
use crate::store::account_events::{self, Stored};
use crate::store::pg;

/// Events read per round trip, and how long a quiet log is left alone.
const PAGE: i64 = 100;
const IDLE: Duration = Duration::from_millis(200);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(300);
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// What `/metrics` shows of one endpoint's delivery.
pub struct Stats {
    endpoint: String,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Seconds since the oldest event not yet delivered was written (0
    /// when none waits).
    lag_s: AtomicU64,
}

/// Every endpoint's stats in this process, for `/metrics`.
static STATS: Mutex<Vec<Arc<Stats>>> = Mutex::new(Vec::new());

fn stats_for(endpoint: &str) -> Arc<Stats> {
    let stats = Arc::new(Stats {
        endpoint: endpoint.to_string(),
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        lag_s: AtomicU64::new(0),
    });
    STATS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(stats.clone());
    stats
}

/// One `/metrics` series per endpoint: name, kind, help, value.
type Series = (&'static str, &'static str, &'static str, fn(&Stats) -> u64);

/// Prometheus text of every endpoint's delivery; empty without webhooks.
pub fn metrics() -> String {
    let all = STATS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if all.is_empty() {
        return String::new();
    }
    let series: [Series; 3] = [
        (
            "delivered_total",
            "counter",
            "Events a receiver answered 2xx to.",
            |s| s.delivered.load(Ordering::Relaxed),
        ),
        (
            "failed_total",
            "counter",
            "Delivery attempts that failed (each is retried).",
            |s| s.failed.load(Ordering::Relaxed),
        ),
        (
            "lag_seconds",
            "gauge",
            "Age of the oldest event not yet delivered.",
            |s| s.lag_s.load(Ordering::Relaxed),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in series {
        out.push_str(&format!(
            "# HELP profiteer_webhook_{name} {help}\n# TYPE profiteer_webhook_{name} {kind}\n"
        ));
        for s in all.iter() {
            out.push_str(&format!(
                "profiteer_webhook_{name}{{endpoint=\"{}\"}} {}\n",
                s.endpoint,
                value(s)
            ));
        }
    }
    out
}

/// The three Standard Webhooks headers of `body`, sent as message `id` at
/// unix time `ts`.
pub fn sign(secret: &Secret, id: &str, ts: i64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.0) else {
        return String::new(); // HMAC takes a key of any length
    };
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// The JSON an event is POSTed as: what `events.read` answers for it.
fn payload(e: &Stored) -> String {
    event_json(e).to_string()
}

/// The endpoint's lock on a connection of its own, if no other instance
/// holds it.
fn take_lock(pg_config: &PgConfig, ep: &Endpoint) -> Option<postgres::Client> {
    let mut client = pg::connect_one(pg_config).ok()?;
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('profiteer-webhook:' || $1)::bigint)",
            &[&ep.name],
        )
        .ok()?;
    row.try_get::<_, bool>(0)
        .ok()
        .filter(|taken| *taken)
        .map(|_| client)
}

/// Delivers to `ep` until `stop` is set, while this instance holds its lock.
pub fn run(
    pool: pg::Pool,
    pg_config: PgConfig,
    ep: Endpoint,
    retry_for: Duration,
    stop: Arc<AtomicBool>,
) {
    let agent = ureq::AgentBuilder::new()
        .timeout(POST_TIMEOUT)
        .redirects(0)
        .build();
    let stats = stats_for(&ep.name);
    let mut lock: Option<postgres::Client> = None;
    while !stop.load(Ordering::Acquire) {
        if lock.as_ref().is_none_or(postgres::Client::is_closed) {
            lock = take_lock(&pg_config, &ep);
            if lock.is_none() {
                std::thread::sleep(FIRST_RETRY);
                continue;
            }
        }
        match deliver_some(&pool, &agent, &ep, retry_for, &stop, &stats) {
            Ok(0) => std::thread::sleep(IDLE),
            Ok(_) => {}
            Err(e) => {
                log::warn!("webhook {}: {e}; retried", ep.name);
                std::thread::sleep(FIRST_RETRY);
            }
        }
    }
}

/// One page from the endpoint's position on; how many were delivered.
fn deliver_some(
    pool: &pg::Pool,
    agent: &ureq::Agent,
    ep: &Endpoint,
    retry_for: Duration,
    stop: &AtomicBool,
    stats: &Stats,
) -> Result<usize, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let from = account_events::position(&mut conn.client, &ep.name).map_err(|e| e.to_string())?;
    let events = account_events::read(&mut conn.client, from, ep.types.as_deref(), PAGE)
        .map_err(|e| e.to_string())?;
    drop(conn);
    let lag =
        |e: Option<&Stored>| e.map_or(0, |e| (Utc::now() - e.time).num_seconds().max(0) as u64);
    stats.lag_s.store(lag(events.first()), Ordering::Relaxed);
    let mut delivered = 0;
    for (i, e) in events.iter().enumerate() {
        if !deliver(agent, ep, e, retry_for, stop, stats) {
            return Ok(delivered); // stopping: the position stays before it
        }
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        account_events::advance(&mut conn.client, &ep.name, e.at).map_err(|e| e.to_string())?;
        delivered += 1;
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        stats.lag_s.store(lag(events.get(i + 1)), Ordering::Relaxed);
    }
    Ok(delivered)
}

/// Posts `e` until a 2xx or its retry window ends (then logs and skips
/// it); `false` only when stopping first.
fn deliver(
    agent: &ureq::Agent,
    ep: &Endpoint,
    e: &Stored,
    retry_for: Duration,
    stop: &AtomicBool,
    stats: &Stats,
) -> bool {
    let id = format!("evt_{}", cursor_text(e.at).replace('.', "_"));
    let body = payload(e);
    let mut wait = FIRST_RETRY;
    loop {
        let ts = Utc::now().timestamp();
        let sent = agent
            .post(&ep.url)
            .set("content-type", "application/json")
            .set("webhook-id", &id)
            .set("webhook-timestamp", &ts.to_string())
            .set("webhook-signature", &sign(&ep.secret, &id, ts, &body))
            .send_string(&body);
        let why = match sent {
            Ok(_) => return true,
            Err(ureq::Error::Status(code, _)) => format!("answered {code}"),
            Err(other) => other.kind().to_string(),
        };
        stats.failed.fetch_add(1, Ordering::Relaxed);
        let age = (Utc::now() - e.time).to_std().unwrap_or_default();
        if age >= retry_for {
            log::error!(
                "webhook {}: event {id} ({}) given up after {:?}: {why}",
                ep.name,
                e.kind,
                retry_for
            );
            return true;
        }
        log::warn!("webhook {}: event {id}: {why}; again in {wait:?}", ep.name);
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if stop.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        wait = (wait * 2).min(LAST_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example
    /// (standard-webhooks/spec: a known secret, id, timestamp and payload).
    #[test]
    fn signatures_match_the_specifications_example() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sig = sign(
            &Secret(key),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
