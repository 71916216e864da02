//! Retention: nothing grows without bound. A background thread deletes, in
//! batches of [`BATCH`] rows, what has been dead for `[RETENTION]
//! SESSIONS_DAYS`: expired or revoked sessions (their tokens go with them),
//! expired access and refresh tokens of live sessions, spent or expired
//! reset tokens, login challenges and email verification tokens, ended
//! username holds, and idempotency keys after a day.
//! Each batch picks its rows with
//! `FOR UPDATE SKIP LOCKED`, so instances running it at once share the work
//! instead of waiting on each other. Login events expire in MongoDB itself:
//! a TTL index on `at` of `LOGIN_EVENTS_DAYS`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::RetentionConfig;
use crate::store::mongo::Mongo;
use crate::store::pg;

/// Rows deleted per statement: short transactions, short locks.
pub const BATCH: i64 = 1000;

/// Each statement deletes up to $2 rows dead for more than $1 seconds.
const SWEEPS: &[(&str, &str)] = &[
    (
        "sessions",
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
         WHERE revoked_at < now() - make_interval(secs => $1) \
            OR expires_at < now() - make_interval(secs => $1) \
         LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
    (
        "access tokens",
        "DELETE FROM access_tokens WHERE token_hash IN (SELECT token_hash FROM access_tokens \
         WHERE expires_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
    // Spent refresh tokens stay while their session lives: presenting one
    // again is how reuse is detected. Expired ones go.
    (
        "refresh tokens",
        "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens \
         WHERE expires_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
    (
        "reset tokens",
        "DELETE FROM password_resets WHERE token_hash IN (SELECT token_hash FROM password_resets \
         WHERE used_at < now() - make_interval(secs => $1) \
            OR expires_at < now() - make_interval(secs => $1) \
         LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
    (
        "login challenges",
        "DELETE FROM mfa_challenges WHERE token_hash IN (SELECT token_hash FROM mfa_challenges \
         WHERE used_at < now() - make_interval(secs => $1) \
            OR expires_at < now() - make_interval(secs => $1) \
         LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
    (
        "email verification tokens",
        "DELETE FROM email_verifications WHERE token_hash IN \
         (SELECT token_hash FROM email_verifications \
         WHERE used_at < now() - make_interval(secs => $1) \
            OR expires_at < now() - make_interval(secs => $1) \
         LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
    ("username holds", crate::store::identity::SWEEP_HOLDS),
    (
        "passkey challenges",
        "DELETE FROM passkey_challenges WHERE challenge_id IN \
         (SELECT challenge_id FROM passkey_challenges \
         WHERE expires_at < now() - make_interval(secs => $1) \
         LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
    (
        "passkey enrolment tokens",
        "DELETE FROM passkey_enrolments WHERE token_hash IN \
         (SELECT token_hash FROM passkey_enrolments \
         WHERE expires_at < now() - make_interval(secs => $1) \
         LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ),
];

/// Time between sweeps: a tenth of the retention, within 1 s and 10 min.
fn interval(cfg: &RetentionConfig) -> Duration {
    (cfg.sessions / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// One sweep: every statement until it deletes less than a batch. The
/// number of rows deleted.
pub fn sweep(pool: &pg::Pool, keep: Duration, stop: &AtomicBool) -> Result<u64, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let secs = keep.as_secs_f64();
    let mut total = 0;
    for (what, sql) in SWEEPS {
        loop {
            let n = conn
                .client
                .execute(*sql, &[&secs, &BATCH])
                .map_err(|e| format!("{what}: {e}"))?;
            total += n;
            if n < BATCH as u64 || stop.load(Ordering::Acquire) {
                break;
            }
        }
    }
    // Kept a day whatever the retention: the contract's promise to callers.
    total += crate::store::idempotency::forget_old(&mut conn.client)
        .map_err(|e| format!("idempotency keys: {e}"))?;
    Ok(total)
}

/// Account events older than `[RETENTION] EVENTS_DAYS`, in batches, oldest
/// first; the newest position deleted is kept, so a reader whose cursor is
/// older learns that it lost events (-32013).
pub fn prune_events(pool: &pg::Pool, keep: Duration, stop: &AtomicBool) -> Result<u64, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let mut total = 0;
    loop {
        let n = crate::store::account_events::prune(&mut conn.client, keep.as_secs_f64(), BATCH)
            .map_err(|e| format!("account events: {e}"))?;
        total += n;
        if n < BATCH as u64 || stop.load(Ordering::Acquire) {
            return Ok(total);
        }
    }
}

/// Runs until `stop` is set.
pub fn run(pool: pg::Pool, mongo: Arc<Mongo>, cfg: RetentionConfig, stop: Arc<AtomicBool>) {
    let mut ttl_index = false;
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if Instant::now() >= next {
            if !ttl_index {
                match mongo.ensure_events_ttl(cfg.login_events) {
                    Ok(()) => ttl_index = true,
                    Err(e) => log::warn!("login events TTL index not set yet: {e}"),
                }
            }
            match sweep(&pool, cfg.sessions, &stop) {
                Ok(0) => {}
                Ok(n) => log::info!("retention: {n} dead rows deleted"),
                Err(e) => log::warn!("retention sweep failed, retried later: {e}"),
            }
            match prune_events(&pool, cfg.events, &stop) {
                Ok(0) => {}
                Ok(n) => log::info!("retention: {n} account events past EVENTS_DAYS deleted"),
                Err(e) => log::warn!("account events not pruned, retried later: {e}"),
            }
            next = Instant::now() + interval(&cfg);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_run_often_for_short_retentions_and_at_most_every_ten_minutes() {
        let cfg = |days: f64| RetentionConfig {
            sessions: Duration::from_secs_f64(days * 86_400.0),
            login_events: Duration::from_secs(1),
            events: Duration::from_secs(1),
        };
        assert_eq!(interval(&cfg(7.0)), Duration::from_secs(600));
        assert_eq!(interval(&cfg(0.0001)), Duration::from_secs(1));
    }
}
