//! The PostgreSQL pool: r2d2 over r2d2_postgres, with each pooled connection
//! carrying its own prepared statements so a hot query costs one round trip
//! (execute) instead of two (prepare + execute).

use std::collections::HashMap;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};
use r2d2_postgres::PostgresConnectionManager;

use super::error::StoreError;
use crate::config::PgConfig;
use crate::error::Dependency;

pub type Pool = r2d2::Pool<Manager>;
pub type Conn = r2d2::PooledConnection<Manager>;

/// A pooled client and the statements prepared on it.
pub struct PgConn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
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
}

/// Wraps r2d2_postgres's manager to attach the statement cache.
pub struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// The client configuration `[PG] PG_URI` describes.
pub fn client_config(cfg: &PgConfig) -> Result<postgres::Config, String> {
    cfg.uri
        .parse()
        .map_err(|_| "[PG] PG_URI is not a valid PostgreSQL URI".to_string())
}

pub fn build_pool(cfg: &PgConfig) -> Result<Pool, String> {
    let pg_config = client_config(cfg)?;
    let manager = Manager(PostgresConnectionManager::new(pg_config, NoTls));
    Ok(r2d2::Pool::builder()
        .max_size(cfg.pool_size)
        .min_idle(Some(0))
        .connection_timeout(cfg.pool_timeout)
        .max_lifetime(Some(cfg.pool_recycle))
        // A checkout test is one more round trip per request; a broken
        // connection is detected by `has_broken` and by the query itself.
        .test_on_check_out(false)
        .error_handler(Box::new(QuietErrors))
        .build_unchecked(manager))
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
/// the request's deadline, whichever is shorter).
pub fn get(pool: &Pool, wait: Duration) -> Result<Conn, StoreError> {
    pool.get_timeout(wait.max(Duration::from_millis(1)))
        .map_err(|e| StoreError::Unreachable(Dependency::Postgres, e.to_string()))
}

pub use super::migrations::migrate;

/// One connection outside any pool, for the operator commands (`migrate`,
/// `create-admin`), waiting at most `[PG] PG_POOL_TIMEOUT` to connect.
pub fn connect_one(cfg: &PgConfig) -> Result<Client, String> {
    let mut pg_config: postgres::Config = cfg
        .uri
        .parse()
        .map_err(|_| "[PG] PG_URI is not a valid PostgreSQL URI".to_string())?;
    pg_config.connect_timeout(cfg.pool_timeout);
    pg_config
        .connect(NoTls)
        .map_err(|e| format!("[PG] PG_URI: cannot connect to PostgreSQL ({e}); is it running?"))
}
