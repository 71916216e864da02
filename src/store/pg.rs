//! The PostgreSQL pools: r2d2 over r2d2_postgres, with each pooled connection
//! carrying its own prepared statements so a hot query costs one round trip
//! (execute) instead of two (prepare + execute).
//!
//! Failover: `[PG] PG_URI` may name several hosts; a connection is only ever
//! made to the one that accepts writes (`target_session_attrs=read-write`,
//! asked for whatever the URI says). A query that finds its server gone or
//! read-only (a primary stopped or demoted) moves [`EPOCH`] on, and every
//! connection of the primary pool opened before it is discarded instead of
//! reused: the next checkout connects afresh, to whichever host is the
//! primary now.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postgres::config::TargetSessionAttrs;
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};
use r2d2_postgres::PostgresConnectionManager;

use super::error::StoreError;
use crate::config::PgConfig;
use crate::error::Dependency;

pub type Pool = r2d2::Pool<Manager>;
pub type Conn = r2d2::PooledConnection<Manager>;

/// Moves on when a query finds the primary gone or read-only: connections
/// to the primary opened before then are not reused.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// A pooled client and the statements prepared on it.
pub struct PgConn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Whose connection it is, and [`EPOCH`] when it was opened.
    role: Role,
    epoch: u64,
    /// Set when it must not be reused (a replica connection that failed).
    broken: bool,
    /// On a replica: the WAL position its server had replayed when last
    /// asked (`store::replica`).
    pub(super) replayed: i64,
}

impl PgConn {
    /// The statement for `sql`, prepared on this connection the first time.
    pub fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql)?;
        self.statements.insert(sql, st.clone());
        Ok(st)
    }

    /// Closed when it goes back to the pool instead of being reused.
    pub fn retire(&mut self) {
        self.broken = true;
    }

    /// A primary connection opened before the primary was last found gone
    /// or read-only: it may be to the old one.
    fn outdated(&self) -> bool {
        self.role == Role::Primary && self.epoch != EPOCH.load(Ordering::Acquire)
    }
}

/// Which server a pool's connections go to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The writable server (`PG_URI`): its connections follow failover.
    Primary,
    /// Streaming replicas (`PG_READ_URI`).
    Replica,
}

/// Wraps r2d2_postgres's manager to attach the statement cache.
pub struct Manager {
    inner: PostgresConnectionManager<NoTls>,
    role: Role,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let epoch = EPOCH.load(Ordering::Acquire);
        Ok(PgConn {
            client: self.inner.connect()?,
            statements: HashMap::new(),
            role: self.role,
            epoch,
            broken: false,
            replayed: i64::MIN,
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.broken || conn.outdated() || self.inner.has_broken(&mut conn.client)
    }
}

/// Whether `e` says the server went away or cannot take writes: for the
/// primary, a sign that it failed over.
pub fn primary_lost(e: &postgres::Error) -> bool {
    let code = e.code();
    e.is_closed()
        || code == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
        || code == Some(&SqlState::ADMIN_SHUTDOWN)
        || code == Some(&SqlState::CRASH_SHUTDOWN)
        || code == Some(&SqlState::CANNOT_CONNECT_NOW)
        || (e.as_db_error().is_none()
            && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()))
}

/// `conn` was found on a read-only server: it and every connection opened
/// before it are retired.
pub fn demoted(conn: &mut PgConn) {
    conn.retire();
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// Called with every error a query on the primary failed with: one that
/// says the primary is gone or read-only retires every connection to it.
pub fn note_error(e: &postgres::Error) {
    if primary_lost(e) {
        EPOCH.fetch_add(1, Ordering::AcqRel);
    }
}

/// The client configuration `[PG] PG_URI` describes, asking for a writable
/// server whatever the URI says: with several hosts, the primary among them.
pub fn client_config(cfg: &PgConfig) -> Result<postgres::Config, String> {
    let mut config: postgres::Config = cfg
        .uri
        .parse()
        .map_err(|_| "[PG] PG_URI is not a valid PostgreSQL URI".to_string())?;
    config.target_session_attrs(TargetSessionAttrs::ReadWrite);
    Ok(config)
}

/// The client configuration of `[PG] PG_READ_URI`, if given: read-only
/// servers only (a promoted replica is then no longer read from), and a
/// short connect timeout unless the URI sets one, so a replica down costs
/// little.
pub fn read_config(cfg: &PgConfig) -> Result<Option<postgres::Config>, String> {
    let Some(uri) = &cfg.read_uri else {
        return Ok(None);
    };
    let mut config: postgres::Config = uri
        .parse()
        .map_err(|_| "[PG] PG_READ_URI is not a valid PostgreSQL URI".to_string())?;
    config.target_session_attrs(TargetSessionAttrs::ReadOnly);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(READ_CONNECT_TIMEOUT);
    }
    Ok(Some(config))
}

/// How long reads wait for a replica connection at most (and how long a
/// replica connect may take unless `PG_READ_URI` says otherwise).
pub const READ_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub fn build_pool(cfg: &PgConfig) -> Result<Pool, String> {
    let manager = Manager {
        inner: PostgresConnectionManager::new(client_config(cfg)?, NoTls),
        role: Role::Primary,
    };
    Ok(pool_builder(cfg, cfg.pool_size)
        .connection_timeout(cfg.pool_timeout)
        .build_unchecked(manager))
}

/// The pool of `[PG] PG_READ_URI`, if given.
pub fn build_read_pool(cfg: &PgConfig) -> Result<Option<Pool>, String> {
    let Some(config) = read_config(cfg)? else {
        return Ok(None);
    };
    let manager = Manager {
        inner: PostgresConnectionManager::new(config, NoTls),
        role: Role::Replica,
    };
    Ok(Some(
        pool_builder(cfg, cfg.read_pool_size)
            .connection_timeout(READ_CONNECT_TIMEOUT.min(cfg.pool_timeout))
            .build_unchecked(manager),
    ))
}

fn pool_builder(cfg: &PgConfig, size: u32) -> r2d2::Builder<Manager> {
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .max_lifetime(Some(cfg.pool_recycle))
        // A checkout test is one more round trip per request; a broken
        // connection is detected by `has_broken` and by the query itself.
        .test_on_check_out(false)
        .error_handler(Box::new(QuietErrors))
}

/// r2d2 logs connection failures itself; keep them at `warn`, once per
/// failure, without the URI.
#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<postgres::Error> for QuietErrors {
    fn handle_error(&self, error: postgres::Error) {
        log::warn!("postgres connection failed: {error}");
    }
}

/// A connection, waiting at most `wait` (the pool timeout or what is left of
/// the request's deadline, whichever is shorter). Idle connections opened
/// before the primary was last found lost are closed on the way, not used.
pub fn get(pool: &Pool, wait: Duration) -> Result<Conn, StoreError> {
    let wait = wait.max(Duration::from_millis(1));
    let until = std::time::Instant::now() + wait;
    loop {
        let conn = pool
            .get_timeout(until.saturating_duration_since(std::time::Instant::now()))
            .map_err(|e| StoreError::Unreachable(Dependency::Postgres, e.to_string()))?;
        if !conn.outdated() {
            return Ok(conn);
        }
        // Dropped: `has_broken` says so, and the pool closes it.
    }
}

pub use super::migrations::migrate;

/// One connection outside any pool, for the operator commands (`migrate`,
/// `create-admin`), to the primary, waiting at most `[PG] PG_POOL_TIMEOUT`
/// to connect.
pub fn connect_one(cfg: &PgConfig) -> Result<Client, String> {
    let mut pg_config = client_config(cfg)?;
    pg_config.connect_timeout(cfg.pool_timeout);
    pg_config
        .connect(NoTls)
        .map_err(|e| format!("[PG] PG_URI: cannot connect to PostgreSQL ({e}); is it running?"))
}
