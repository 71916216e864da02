//! Redis: the shared failed-login counters (nothing is cached here: see
//! `cache`). Every call goes through a small circuit breaker: after a
//! failure, Redis is skipped for a second, so a dead Redis costs callers a
//! fallback instead of a connect timeout per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult};

use super::error::StoreError;
use crate::config::RedisConfig;
use crate::error::Dependency;

const BREAKER_OPEN_FOR: Duration = Duration::from_secs(1);

pub struct Redis {
    pool: r2d2::Pool<redis::Client>,
    prefix: String,
    started: Instant,
    /// Milliseconds since `started` until which Redis is skipped.
    open_until_ms: AtomicU64,
}

#[derive(Debug)]
struct Timeouts(Duration);

impl r2d2::CustomizeConnection<Connection, redis::RedisError> for Timeouts {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), redis::RedisError> {
        conn.set_read_timeout(Some(self.0))?;
        conn.set_write_timeout(Some(self.0))
    }
}

#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<redis::RedisError> for QuietErrors {
    fn handle_error(&self, error: redis::RedisError) {
        log::debug!("redis connection failed: {error}");
    }
}

impl Redis {
    pub fn connect(cfg: &RedisConfig) -> Result<Redis, String> {
        let client = redis::Client::open(cfg.uri.as_str())
            .map_err(|_| "[REDIS] REDIS_URI is not a valid Redis URI".to_string())?;
        let pool = r2d2::Pool::builder()
            .max_size(cfg.pool_size)
            .min_idle(Some(0))
            .connection_timeout(cfg.connect_timeout)
            .test_on_check_out(false)
            .connection_customizer(Box::new(Timeouts(cfg.timeout)))
            .error_handler(Box::new(QuietErrors))
            .build_unchecked(client);
        Ok(Redis {
            pool,
            prefix: cfg.key_prefix.clone(),
            started: Instant::now(),
            open_until_ms: AtomicU64::new(0),
        })
    }

    /// `<prefix><kind>:<id>`: every key this service writes.
    pub fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    pub fn pool_state(&self) -> r2d2::State {
        self.pool.state()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `f` on a pooled connection, unless the breaker is open.
    /// Only an unreachable Redis opens the breaker.
    pub fn run<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        if self.now_ms() < self.open_until_ms.load(Ordering::Relaxed) {
            return Err(StoreError::Unreachable(
                Dependency::Redis,
                "circuit open".into(),
            ));
        }
        let result = match self.pool.get() {
            Ok(mut conn) => f(&mut conn).map_err(StoreError::from),
            Err(e) => Err(StoreError::Unreachable(Dependency::Redis, e.to_string())),
        };
        if let Err(StoreError::Unreachable(_, cause)) = &result {
            let until = self.now_ms() + BREAKER_OPEN_FOR.as_millis() as u64;
            if self.open_until_ms.swap(until, Ordering::Relaxed) < self.now_ms() {
                log::warn!("redis unavailable, skipping it for 1 s: {cause}");
            }
        }
        result
    }

    pub fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| redis::cmd("PING").query::<String>(c).map(|_| ()))
    }

    pub fn del(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.run(|c| redis::cmd("DEL").arg(keys).query::<i64>(c).map(|_| ()))
    }
}
