//! What the model keeps between calls: the stores it reads and writes, the
//! caches, the hashing lane, the fallback login limits, the login-event
//! writer and the shared fetches. Only `crate::model` reads its fields; the
//! layers above reach it through [`crate::services::Ctx`] for a call, and
//! through the few methods below for `/metrics`, `/readyz` and shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{LocalCaches, TokenInfo, UserJson};
use crate::domain::TokenHash;
use crate::error::AppError;
use crate::events::EventWriter;
use crate::hashlane::HashLane;
use crate::metrics::Gauges;
use crate::model::coalesce::Coalescer;
use crate::store::error::StoreError;
use crate::store::local_limits::LocalLimits;
use crate::store::mongo::Mongo;
use crate::store::pg::{self, PgConn};
use crate::store::redis::Redis;
use crate::store::replica::{PrimaryConn, Replicas};
use crate::window::WindowCounter;

pub struct Model {
    pub(in crate::model) pg: pg::Pool,
    /// Streaming replicas for reads (`PG_READ_URI`), and what they must
    /// have replayed to be read from.
    pub(in crate::model) replicas: Arc<Replicas>,
    pub(in crate::model) redis: Arc<Redis>,
    pub(in crate::model) mongo: Arc<Mongo>,
    pub(in crate::model) caches: Arc<LocalCaches>,
    pub(in crate::model) lane: HashLane,
    /// Login limits for while Redis cannot be reached (per instance).
    pub(in crate::model) login_limits: LocalLimits,
    pub(in crate::model) events: EventWriter,
    /// Calls other than password hashing, counted to tell the hashing lane
    /// when token checks need the CPU.
    pub(in crate::model) token_calls: Arc<WindowCounter>,
    /// Runs a model's independent fetches (PostgreSQL and MongoDB) at once.
    pub(in crate::model) fetch: rayon::ThreadPool,
    /// Concurrent token misses, sharing their Redis and PostgreSQL lookups.
    pub(in crate::model) token_misses: Coalescer<TokenHash, Arc<TokenInfo>>,
    /// Concurrent User misses, sharing their PostgreSQL and MongoDB queries.
    pub(in crate::model) user_misses: Coalescer<i64, Arc<UserJson>>,
    /// Verified against when a login names no account, so an unknown user
    /// costs the same bcrypt time as a wrong password.
    pub(in crate::model) dummy_hash: String,
}

/// What a [`Model`] is made of, built by `App::build` (and the tests).
pub struct Parts {
    pub pg: pg::Pool,
    pub replicas: Arc<Replicas>,
    pub redis: Arc<Redis>,
    pub mongo: Arc<Mongo>,
    pub caches: Arc<LocalCaches>,
    pub lane: HashLane,
    pub login_limits: LocalLimits,
    pub events: EventWriter,
    pub token_calls: Arc<WindowCounter>,
    pub fetch: rayon::ThreadPool,
    pub dummy_hash: String,
}

/// Which dependencies answered a readiness probe.
pub struct Probe {
    pub postgres: bool,
    pub redis: bool,
    pub mongo: bool,
}

impl Model {
    pub fn new(p: Parts) -> Model {
        use crate::model::coalesce::{
            SHARED_FETCHES, SHARED_FETCH_IDS, SHARED_TOKENS, SHARED_TOKEN_FETCHES,
        };
        Model {
            pg: p.pg,
            replicas: p.replicas,
            redis: p.redis,
            mongo: p.mongo,
            caches: p.caches,
            lane: p.lane,
            login_limits: p.login_limits,
            events: p.events,
            token_calls: p.token_calls,
            fetch: p.fetch,
            token_misses: Coalescer::new(SHARED_TOKENS, SHARED_TOKEN_FETCHES),
            user_misses: Coalescer::new(SHARED_FETCH_IDS, SHARED_FETCHES),
            dummy_hash: p.dummy_hash,
        }
    }

    /// A pooled connection to the primary, waited for at most `wait`.
    pub fn connection(&self, wait: Duration) -> Result<PrimaryConn<'_>, StoreError> {
        Ok(PrimaryConn::new(pg::get(&self.pg, wait)?, &self.replicas))
    }

    /// Runs the read-only `f` on a replica that has replayed everything
    /// this instance has seen, else (or if it fails there) on the primary,
    /// waiting at most `wait` for a connection.
    pub fn read<T>(
        &self,
        wait: Duration,
        f: impl FnMut(&mut PgConn) -> Result<T, postgres::Error>,
    ) -> Result<T, AppError> {
        self.read_found(wait, f, |_| true)
    }

    /// [`Model::read`] for lookups: an answer from a replica that
    /// `complete` finds short (a row written on another instance that this
    /// one's feed has not seen yet, so the replica may still lack it) is
    /// asked of the primary again. A token issued by one instance is so
    /// found by the next at once, as without replicas.
    pub fn read_found<T>(
        &self,
        wait: Duration,
        mut f: impl FnMut(&mut PgConn) -> Result<T, postgres::Error>,
        complete: impl Fn(&T) -> bool,
    ) -> Result<T, AppError> {
        if let Some(mut conn) = self.replicas.connection(wait) {
            match f(&mut conn) {
                Ok(found) if complete(&found) => {
                    self.replicas.count(true);
                    return Ok(found);
                }
                Ok(_) => {}
                Err(e) => self.replicas.failed(&mut conn, &e),
            }
        }
        let mut conn = pg::get(&self.pg, wait)?;
        let found = f(&mut conn)?;
        self.replicas.count(false);
        Ok(found)
    }

    /// Runs `f` on the fetch pool (see `Ctx::start_mongo`).
    pub fn spawn_fetch(&self, f: impl FnOnce(&Mongo) + Send + 'static) {
        let mongo = self.mongo.clone();
        self.fetch.spawn(move || f(&mongo));
    }

    /// A call that reached a handler and hashes no password: token traffic,
    /// which the hashing lane yields the CPU to.
    pub fn note_token_call(&self) {
        self.token_calls.note();
    }

    /// Token calls noted in the last window (tests of dispatch).
    #[cfg(test)]
    pub fn recent_token_calls(&self) -> u64 {
        self.token_calls.recent()
    }

    /// Fills in what the model knows of `/metrics`' gauges.
    pub fn gauges(&self, g: &mut Gauges) {
        let pg = self.pg.state();
        let redis = self.redis.pool_state();
        let events = &self.events.stats;
        g.hash_queue_depth = self.lane.in_lane();
        g.hash_shed = self.lane.shed.load(Ordering::Relaxed);
        g.hash_ran = self.lane.ran.load(Ordering::Relaxed);
        g.pg_connections = pg.connections;
        g.pg_idle = pg.idle_connections;
        g.redis_connections = redis.connections;
        g.redis_idle = redis.idle_connections;
        g.local_cache_enabled = self.caches.is_fresh();
        g.events_written = events.written.load(Ordering::Relaxed);
        g.events_dropped = events.dropped.load(Ordering::Relaxed);
        g.events_failed = events.failed.load(Ordering::Relaxed);
        g.login_limiter_local = self.login_limits.in_force();
    }

    /// How much concurrent cache misses shared their queries, as
    /// Prometheus text.
    pub fn shared_fetches(&self) -> String {
        let (tf, tc) = self.token_misses.counts();
        let (uf, uc) = self.user_misses.counts();
        format!(
            "# HELP profiteer_shared_fetches_total Fetches run for cache misses (callers share them).\n\
             # TYPE profiteer_shared_fetches_total counter\n\
             profiteer_shared_fetches_total{{kind=\"token\"}} {tf}\n\
             profiteer_shared_fetches_total{{kind=\"user\"}} {uf}\n\
             # HELP profiteer_shared_fetch_callers_total Cache misses answered by those fetches.\n\
             # TYPE profiteer_shared_fetch_callers_total counter\n\
             profiteer_shared_fetch_callers_total{{kind=\"token\"}} {tc}\n\
             profiteer_shared_fetch_callers_total{{kind=\"user\"}} {uc}\n"
        )
    }

    /// Where the read-only work ran (primary or replica) and how far behind
    /// a replica was when last asked, as Prometheus text.
    pub fn replica_reads(&self) -> String {
        let stats = &self.replicas.stats;
        format!(
            "# HELP profiteer_pg_reads_total Read-only PostgreSQL work (user reads, auth.sessions, \
             token misses) by the server it ran on.\n\
             # TYPE profiteer_pg_reads_total counter\n\
             profiteer_pg_reads_total{{target=\"primary\"}} {}\n\
             profiteer_pg_reads_total{{target=\"replica\"}} {}\n\
             # HELP profiteer_pg_replica_checks_total Times a replica was asked how far it had \
             replayed (only when what it said last was behind what this instance had seen).\n\
             # TYPE profiteer_pg_replica_checks_total counter\n\
             profiteer_pg_replica_checks_total {}\n\
             # HELP profiteer_pg_replica_lag_bytes How far a replica's replay was behind the \
             primary WAL position this instance had seen, when last asked (-1: never asked).\n\
             # TYPE profiteer_pg_replica_lag_bytes gauge\n\
             profiteer_pg_replica_lag_bytes {}\n",
            stats.primary.load(Ordering::Relaxed),
            stats.replica.load(Ordering::Relaxed),
            stats.checks.load(Ordering::Relaxed),
            stats.lag_bytes.load(Ordering::Relaxed),
        )
    }

    /// Asks each dependency, waiting at most `wait` for any: MongoDB on a
    /// thread of its own, so a stalled server cannot hold the caller.
    pub fn probe(&self, wait: Duration) -> Probe {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mongo = self.mongo.clone();
        let _ = std::thread::Builder::new()
            .name("ready-mongo".into())
            .spawn(move || {
                let _ = tx.send(mongo.ping().is_ok());
            });
        let (postgres, redis) = std::thread::scope(|s| {
            let redis = s.spawn(|| self.redis.ping().is_ok());
            let postgres = self.primary_answers(wait);
            (postgres, redis.join().unwrap_or(false))
        });
        Probe {
            postgres,
            redis,
            mongo: rx.recv_timeout(wait).unwrap_or(false),
        }
    }

    /// Whether a writable primary answers. A pooled connection found on a
    /// read-only server (the primary was demoted) retires the pool's
    /// connections, and one more, fresh, is tried: the probe then reaches
    /// whichever host is the primary now.
    fn primary_answers(&self, wait: Duration) -> bool {
        for _ in 0..2 {
            let Ok(mut conn) = pg::get(&self.pg, wait) else {
                return false;
            };
            match conn.client.query_one("SHOW transaction_read_only", &[]) {
                Ok(row) => match row.try_get::<_, String>(0).as_deref() {
                    Ok("off") => return true,
                    _ => pg::demoted(&mut conn),
                },
                Err(e) => pg::note_error(&e),
            }
        }
        false
    }

    /// Writes the queued login events before the process exits.
    pub fn shutdown(&self) {
        self.events.shutdown();
    }
}
