//! Redis: the shared failed-login counters (nothing is cached here: see
//! `cache`). Every call goes through a small circuit breaker: after a
//! failure, Redis is skipped for a second, so a dead Redis costs callers a
//! fallback instead of a connect timeout per request.
//!
//! `REDIS_URI` names one server, or several comma-separated `redis://`
//! URIs: the seed nodes of a Redis Cluster. With a cluster every key's id
//! is hash-tagged (`kind:{id}`), so a counter and the keys kept beside it
//! (see `limits`) share a slot and one script can touch them all; a master
//! that cannot be reached, or a cluster that says CLUSTERDOWN, is an
//! unreachable Redis like any other, and the breaker tries again a second
//! later, so the cluster is used again as soon as it answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Connection, ConnectionLike, RedisResult};

use super::error::StoreError;
use crate::config::RedisConfig;
use crate::error::Dependency;

const BREAKER_OPEN_FOR: Duration = Duration::from_secs(1);

/// How often a cluster command is tried again after a moved slot or a
/// connection error before the caller falls back: once, after at most
/// 100 ms. The crate's default (16 tries, waits from 1.28 s up) would hold a
/// login for seconds while a master is down or the cluster says CLUSTERDOWN.
const CLUSTER_RETRIES: u32 = 1;
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (10, 100);

enum Pool {
    Single(r2d2::Pool<redis::Client>),
    Cluster(r2d2::Pool<ClusterClient>),
}

pub struct Redis {
    pool: Pool,
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

impl r2d2::CustomizeConnection<ClusterConnection, redis::RedisError> for Timeouts {
    fn on_acquire(&self, conn: &mut ClusterConnection) -> Result<(), redis::RedisError> {
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

/// A pool of `client`'s connections as `[REDIS]` says, one Redis or a
/// cluster alike: connections opened on demand, each with the command
/// timeout, failures logged quietly.
fn pool<M>(cfg: &RedisConfig, client: M) -> r2d2::Pool<M>
where
    M: r2d2::ManageConnection<Error = redis::RedisError>,
    Timeouts: r2d2::CustomizeConnection<M::Connection, redis::RedisError>,
{
    r2d2::Pool::builder()
        .max_size(cfg.pool_size)
        .min_idle(Some(0))
        .connection_timeout(cfg.connect_timeout)
        .test_on_check_out(false)
        .connection_customizer(Box::new(Timeouts(cfg.timeout)))
        .error_handler(Box::new(QuietErrors))
        .build_unchecked(client)
}

impl Redis {
    pub fn connect(cfg: &RedisConfig) -> Result<Redis, String> {
        let invalid = |_| "[REDIS] REDIS_URI is not a valid Redis URI".to_string();
        let nodes = cluster_nodes(&cfg.uri);
        let pool = if nodes.len() > 1 {
            let client = ClusterClient::builder(nodes)
                .connection_timeout(cfg.connect_timeout)
                .response_timeout(cfg.timeout)
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
                .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1)
                .build()
                .map_err(invalid)?;
            Pool::Cluster(pool(cfg, client))
        } else {
            let client = redis::Client::open(cfg.uri.as_str()).map_err(invalid)?;
            Pool::Single(pool(cfg, client))
        };
        Ok(Redis {
            pool,
            prefix: cfg.key_prefix.clone(),
            started: Instant::now(),
            open_until_ms: AtomicU64::new(0),
        })
    }

    /// `<prefix><kind>:<id>`: every key this service writes; in a cluster
    /// `<prefix><kind>:{<id>}`, the id a hash tag (see [`Redis::beside`]).
    pub fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        if self.is_cluster() {
            format!("{}{kind}:{{{id}}}", self.prefix)
        } else {
            format!("{}{kind}:{id}", self.prefix)
        }
    }

    /// A key named after `key` and `what` that lives in `key`'s cluster
    /// slot: `key`'s hash tag comes first in it, so it is this key's too.
    pub fn beside(&self, key: &str, what: &str) -> String {
        format!("{key}|{what}")
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.pool, Pool::Cluster(_))
    }

    pub fn pool_state(&self) -> r2d2::State {
        match &self.pool {
            Pool::Single(p) => p.state(),
            Pool::Cluster(p) => p.state(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `f` on a pooled connection, unless the breaker is open.
    /// Only an unreachable Redis opens the breaker.
    pub fn run<T>(
        &self,
        f: impl FnOnce(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        if self.now_ms() < self.open_until_ms.load(Ordering::Relaxed) {
            return Err(StoreError::Unreachable(
                Dependency::Redis,
                "circuit open".into(),
            ));
        }
        let result = match &self.pool {
            Pool::Single(p) => p.get().map(|mut c| f(&mut *c)),
            Pool::Cluster(p) => p.get().map(|mut c| f(&mut *c)),
        };
        let result = match result {
            Ok(answer) => answer.map_err(StoreError::from),
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

    /// In a cluster PING goes to every master: up only if all answer.
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

/// The seed nodes a `REDIS_URI` names: one URI, or several separated by
/// commas (a Redis Cluster).
fn cluster_nodes(uri: &str) -> Vec<&str> {
    uri.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(uri: &str) -> RedisConfig {
        RedisConfig {
            uri: uri.into(),
            pool_size: 1,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            key_prefix: "p:".into(),
        }
    }

    #[test]
    fn one_uri_is_one_server_and_keys_keep_their_names() {
        let r = Redis::connect(&config("redis://127.0.0.1:1/0")).unwrap();
        assert!(!r.is_cluster());
        assert_eq!(r.key("rl:ip", "10.0.0.1"), "p:rl:ip:10.0.0.1");
    }

    #[test]
    fn several_uris_are_a_cluster_and_ids_are_hash_tags() {
        let r = Redis::connect(&config("redis://127.0.0.1:1,redis://127.0.0.1:2")).unwrap();
        assert!(r.is_cluster());
        let key = r.key("rl:ip", "10.0.0.1");
        assert_eq!(key, "p:rl:ip:{10.0.0.1}");
        assert_eq!(r.beside(&key, "k"), "p:rl:ip:{10.0.0.1}|k");
    }
}
