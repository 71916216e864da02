//! Reads on streaming replicas (`[PG] PG_READ_URI`), never staler than what
//! this instance has seen.
//!
//! "Seen" is a WAL position of the primary: the highest of those the cache
//! feed reads with each poll (so every change the feed applied is below it)
//! and of those read right after each of this instance's own writes (so
//! its writes are below it). A replica connection serves a read only if its
//! server has replayed up to there (`pg_last_wal_replay_lsn()`, asked again
//! only when "seen" has moved past what it said last); otherwise the read
//! goes to the primary. So an instance reads its own writes at once, and
//! once its feed has dropped a revoked token from the cache, no read of
//! that token goes to a replica that still has it alive.
//!
//! A replica that cannot be reached costs one wait of at most
//! [`pg::READ_CONNECT_TIMEOUT`], then it is skipped for [`SKIP`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pg::{self, Conn, PgConn, Pool};

/// How long a replica that failed is left alone.
pub const SKIP: Duration = Duration::from_secs(5);

/// Where reads went, for `/metrics`.
#[derive(Default)]
pub struct ReadStats {
    pub primary: AtomicU64,
    pub replica: AtomicU64,
    /// Times a replica was asked how far it had replayed.
    pub checks: AtomicU64,
    /// How far behind "seen" a replica was when last asked, in bytes of
    /// WAL (0 when it had caught up); -1 before any was asked.
    pub lag_bytes: AtomicI64,
}

pub struct Replicas {
    pool: Option<Pool>,
    /// The primary's WAL position this instance has seen (bytes from 0/0).
    seen: AtomicI64,
    /// While set and not past, the replicas are not asked.
    skip_until: Mutex<Option<Instant>>,
    pub stats: ReadStats,
}

/// What a replica said when asked how far it has replayed.
enum Replay {
    CaughtUp,
    Behind,
    /// Not a standby, or not answering: not to be read from.
    Unusable,
}

impl Replicas {
    /// `pool`: that of `PG_READ_URI`, if given.
    pub fn new(pool: Option<Pool>) -> Replicas {
        let stats = ReadStats::default();
        stats.lag_bytes.store(-1, Ordering::Relaxed);
        Replicas {
            pool,
            seen: AtomicI64::new(0),
            skip_until: Mutex::new(None),
            stats,
        }
    }

    pub fn configured(&self) -> bool {
        self.pool.is_some()
    }

    /// The primary was at `lsn` (or past it): replicas must have replayed
    /// that far to be read from.
    pub fn saw(&self, lsn: i64) {
        self.seen.fetch_max(lsn, Ordering::SeqCst);
    }

    /// After a write on `conn` (the primary): its WAL position now, which
    /// is past the write's commit. Nothing to do without replicas.
    pub fn after_write(&self, conn: &mut PgConn) {
        if self.pool.is_none() || conn.client.is_closed() {
            return;
        }
        let lsn = conn.client.query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
            &[],
        );
        match lsn.and_then(|row| row.try_get::<_, i64>(0)) {
            Ok(lsn) => self.saw(lsn),
            // The write's own call has its answer already; a primary that
            // stopped answering since is found by the next query.
            Err(e) => log::debug!("WAL position after a write not read: {e}"),
        }
    }

    /// A replica connection whose server has replayed everything seen, or
    /// `None`: no replica configured, skipped, behind, or not answering.
    /// Waits at most `wait` for a connection.
    pub fn connection(&self, wait: Duration) -> Option<Conn> {
        let pool = self.pool.as_ref()?;
        if self.skipped() {
            return None;
        }
        // Read before the replica is asked: a position seen meanwhile is
        // the next read's business.
        let seen = self.seen.load(Ordering::SeqCst);
        let mut conn = match pool.try_get() {
            Some(conn) => conn,
            // Every replica connection busy: the primary takes this read
            // rather than have it wait.
            None if pool.state().connections >= pool.max_size() => return None,
            None => match pool.get_timeout(wait.min(pg::READ_CONNECT_TIMEOUT)) {
                Ok(conn) => conn,
                Err(e) => {
                    self.skip(&format!("no connection ({e})"));
                    return None;
                }
            },
        };
        match self.replayed(&mut conn, seen) {
            Replay::CaughtUp => Some(conn),
            Replay::Behind => None,
            Replay::Unusable => {
                conn.retire();
                self.skip("it is not a standby or did not answer");
                None
            }
        }
    }

    /// Whether `conn`'s server has replayed up to `seen`, asking it only if
    /// what it said last is below.
    fn replayed(&self, conn: &mut PgConn, seen: i64) -> Replay {
        if conn.replayed < seen {
            self.stats.checks.fetch_add(1, Ordering::Relaxed);
            let asked = conn.client.query_one(
                "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint",
                &[],
            );
            // NULL: not in recovery (a primary, or a promoted replica).
            match asked.and_then(|row| row.try_get::<_, Option<i64>>(0)) {
                Ok(Some(lsn)) => conn.replayed = lsn,
                Ok(None) | Err(_) => return Replay::Unusable,
            }
        }
        self.stats
            .lag_bytes
            .store((seen - conn.replayed).max(0), Ordering::Relaxed);
        if conn.replayed >= seen {
            Replay::CaughtUp
        } else {
            Replay::Behind
        }
    }

    /// A read on a replica connection failed: the connection is not reused,
    /// and if the server is gone, the replicas are skipped for a while.
    pub fn failed(&self, conn: &mut PgConn, e: &postgres::Error) {
        conn.retire();
        if pg::primary_lost(e) {
            self.skip(&format!("a read failed ({e})"));
        } else {
            log::debug!("a replica read failed, read again on the primary: {e}");
        }
    }

    fn skipped(&self) -> bool {
        let mut until = self.skip_until.lock().unwrap_or_else(|p| p.into_inner());
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn skip(&self, why: &str) {
        let mut until = self.skip_until.lock().unwrap_or_else(|p| p.into_inner());
        if until.is_none() {
            log::warn!(
                "replica reads off for {} s, reads go to the primary: {why}",
                SKIP.as_secs()
            );
        }
        *until = Some(Instant::now() + SKIP);
    }

    /// A read went to the primary or a replica.
    pub fn count(&self, replica: bool) {
        let counter = if replica {
            &self.stats.replica
        } else {
            &self.stats.primary
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A primary connection lent to a call that may write: when the call is
/// done with it, the primary's WAL position is read on it
/// ([`Replicas::after_write`]), so the instance's next reads wait for a
/// replica that has replayed the write.
pub struct PrimaryConn<'a> {
    conn: Conn,
    replicas: &'a Replicas,
}

impl<'a> PrimaryConn<'a> {
    pub fn new(conn: Conn, replicas: &'a Replicas) -> PrimaryConn<'a> {
        PrimaryConn { conn, replicas }
    }
}

impl std::ops::Deref for PrimaryConn<'_> {
    type Target = PgConn;
    fn deref(&self) -> &PgConn {
        &self.conn
    }
}

impl std::ops::DerefMut for PrimaryConn<'_> {
    fn deref_mut(&mut self) -> &mut PgConn {
        &mut self.conn
    }
}

impl Drop for PrimaryConn<'_> {
    fn drop(&mut self) {
        self.replicas.after_write(&mut self.conn);
    }
}
