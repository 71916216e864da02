//! The change feed: a thread that reads `cache_changes` from PostgreSQL every
//! [`INTERVAL`] on its own connection and applies what it finds to this
//! process's caches, then renews their lease. If PostgreSQL cannot be read,
//! the lease runs out and the caches stop answering (reads go to
//! PostgreSQL, which is then down anyway).
//!
//! The feed reads the primary: its connection asks for a writable server
//! (`store::pg::client_config`), and a read that finds the server read-only
//! (a primary demoted) drops the connection and looks again, so after a
//! failover the feed follows the new primary. Each read also gives the
//! primary's WAL position, which replica reads must have replayed
//! ([`Replicas::saw`]); it is published before the changes are applied, so
//! a read that starts after a cache dropped something never goes to a
//! replica that has not replayed that change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Change, LocalCaches};
use crate::store::changes;
use crate::store::replica::Replicas;

pub const INTERVAL: Duration = Duration::from_millis(150);
/// Rows live an hour (`store::changes::prune`); a feed that could not read
/// for half of that drops everything rather than trust what it might miss.
const RESYNC_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often (in reads) old rows are deleted.
const PRUNE_EVERY: u64 = 2000;

fn connect(cfg: &postgres::Config) -> Result<postgres::Client, postgres::Error> {
    let mut client = cfg.connect(postgres::NoTls)?;
    // A stalled server must not hold the feed: the lease is what it renews.
    client.batch_execute("SET statement_timeout = 2000")?;
    Ok(client)
}

/// One read of the changes, on the primary.
fn read(
    client: &mut Option<postgres::Client>,
    cfg: &postgres::Config,
    from: Option<i64>,
) -> Result<changes::Read, String> {
    let read = match client.as_mut() {
        Some(c) => changes::since(c, from),
        None => connect(cfg).and_then(|c| changes::since(client.insert(c), from)),
    }
    .map_err(|e| e.to_string())?;
    if read.writable {
        Ok(read)
    } else {
        Err("the server is read-only (no longer the primary)".into())
    }
}

/// Runs until `stop` is set.
pub fn run(
    caches: Arc<LocalCaches>,
    replicas: Arc<Replicas>,
    mut cfg: postgres::Config,
    stop: Arc<AtomicBool>,
) {
    cfg.connect_timeout(Duration::from_secs(2));
    cfg.keepalives_idle(Duration::from_secs(5));
    let mut client: Option<postgres::Client> = None;
    let mut from: Option<i64> = None;
    let mut last_ok: Option<Instant> = None;
    let mut failing = false;
    let mut reads: u64 = 0;
    while !stop.load(Ordering::Acquire) {
        let started = Instant::now();
        // A new connection after a lost one may reach another server: a
        // standby promoted after a crash hands out again transaction ids the
        // old primary had used, so reading on from `from` could skip its
        // changes. Such a read starts afresh and the caches are emptied.
        let rejoined = client.is_none() && last_ok.is_some();
        match read(&mut client, &cfg, if rejoined { None } else { from }) {
            Ok(read) => {
                // Before anything is dropped (see the module's comment).
                replicas.saw(read.lsn);
                if rejoined || last_ok.is_some_and(|t| t.elapsed() > RESYNC_AFTER) {
                    caches.clear();
                }
                let found: Vec<Change> = read
                    .changes
                    .iter()
                    .filter_map(|(kind, id)| Change::from_kind(kind, *id))
                    .collect();
                if !found.is_empty() {
                    log::debug!(
                        "cache feed: {} changes from xid {:?} on, next from {}",
                        found.len(),
                        from,
                        read.done_below
                    );
                }
                caches.apply(&found);
                caches.fresh_as_of(started);
                from = Some(read.done_below);
                last_ok = Some(started);
                if failing {
                    log::info!("cache feed read again: local caches answer again");
                    failing = false;
                }
                reads += 1;
                if reads.is_multiple_of(PRUNE_EVERY) {
                    if let Some(c) = client.as_mut() {
                        if let Err(e) = changes::prune(c) {
                            log::warn!("old cache changes not pruned: {e}");
                        }
                    }
                }
            }
            Err(e) => {
                if !failing {
                    log::warn!("cache feed not read, local caches off until it is: {e}");
                    failing = true;
                }
                client = None;
            }
        }
        std::thread::sleep(INTERVAL.saturating_sub(started.elapsed()));
    }
}
