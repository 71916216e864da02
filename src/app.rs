//! Wiring: builds every service handle from a validated [`Config`], applies
//! migrations, starts the cache feed, the hashing lane, the event
//! writer and the HTTP server; [`App::shutdown`] stops them in order.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cache::{self, LocalCaches};
use crate::config::Config;
use crate::events::EventWriter;
use crate::hashlane::HashLane;
use crate::http::HttpServer;
use crate::metrics::Metrics;
use crate::model::state::Parts;
use crate::model::Model;
use crate::rpc;
use crate::services::Services;
use crate::store::local_limits::LocalLimits;
use crate::store::mongo::Mongo;
use crate::store::pg;
use crate::store::redis::Redis;
use crate::store::replica::Replicas;
use crate::thrift::{self, ThriftServer};
use crate::window::WindowCounter;

pub struct App {
    http: HttpServer,
    thrift: Option<ThriftServer>,
    svc: Arc<Services>,
    stop: Arc<AtomicBool>,
    background: Vec<JoinHandle<()>>,
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("cannot start thread {name}: {e}"))
}

impl App {
    pub fn build(config: Config) -> Result<App, String> {
        for warning in &config.warnings {
            log::warn!("{warning}");
        }
        let pg = pg::build_pool(&config.pg)?;
        let replicas = Arc::new(Replicas::new(pg::build_read_pool(&config.pg)?));
        {
            let mut conn = pg.get().map_err(|e| {
                format!("[PG] PG_URI: cannot connect to PostgreSQL ({e}); is it running?")
            })?;
            pg::migrate(&mut conn.client)?;
            crate::model::mfa::check_keys_at_start(&mut conn.client, &config.auth)?;
        }
        let redis = Arc::new(Redis::connect(&config.redis)?);
        let mongo = Arc::new(Mongo::connect(&config.mongo)?);
        let stop = Arc::new(AtomicBool::new(false));
        let mut background = Vec::new();

        let caches = Arc::new(LocalCaches::default());
        // Not joined at shutdown: a read stuck on a stalled PostgreSQL must
        // not hold the exit; the thread only ever touches the caches.
        spawn("cache-feed", {
            let (caches, replicas, stop) = (caches.clone(), replicas.clone(), stop.clone());
            let pg_config = pg::client_config(&config.pg)?;
            move || cache::feed::run(caches, replicas, pg_config, stop)
        })?;
        background.push(spawn("retention", {
            let (pool, mongo, stop) = (pg.clone(), mongo.clone(), stop.clone());
            let cfg = config.retention.clone();
            move || crate::retention::run(pool, mongo, cfg, stop)
        })?);
        background.push(spawn("erasure", {
            let (pool, mongo, stop) = (pg.clone(), mongo.clone(), stop.clone());
            move || crate::model::lifecycle::run(pool, mongo, stop)
        })?);
        for ep in &config.webhooks.endpoints {
            background.push(spawn(&format!("webhook-{}", ep.name), {
                let (pool, ep, stop) = (pg.clone(), ep.clone(), stop.clone());
                let (pg_config, retry) = (config.pg.clone(), config.webhooks.retry);
                move || crate::webhooks::run(pool, pg_config, ep, retry, stop)
            })?);
        }
        background.push(spawn("mongo-indexes", {
            let (mongo, stop) = (mongo.clone(), stop.clone());
            move || ensure_indexes(&mongo, &stop)
        })?);

        let auth = &config.auth;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("OS random generator: {e}"))?;
        let timer = Instant::now();
        let dummy_hash = bcrypt::hash(secret, auth.bcrypt_cost)
            .map_err(|e| format!("[AUTH] BCRYPT_COST: bcrypt refused it: {e}"))?;
        let hash_time = timer.elapsed();
        let workers = config.server.workers;
        let queue_depth = match auth.hash_queue_depth {
            Some(depth) => {
                if auth.hash_workers + depth > lane_places(workers) {
                    log::warn!(
                        "[AUTH] HASH_WORKERS + HASH_QUEUE_DEPTH = {} places in the hashing lane \
                         for {workers} request workers: a login flood can hold more than half \
                         of them and slow token checks down",
                        auth.hash_workers + depth
                    );
                }
                depth
            }
            None => within_workers(
                lane_depth(auth.hash_workers, hash_time, config.server.request_timeout),
                auth.hash_workers,
                workers,
            ),
        };
        log::info!(
            "bcrypt cost {} takes {} ms here: hashing lane of {} threads, {} queued at most",
            auth.bcrypt_cost,
            hash_time.as_millis(),
            auth.hash_workers,
            queue_depth
        );
        let token_calls = Arc::new(WindowCounter::default());
        let lane = HashLane::start(auth.hash_workers, queue_depth, token_calls.clone());
        let fetch = rayon::ThreadPoolBuilder::new()
            .num_threads(config.server.workers.clamp(2, 64))
            .thread_name(|i| format!("fetch-{i}"))
            .build()
            .map_err(|e| format!("cannot start the fetch pool: {e}"))?;
        let model = Model::new(Parts {
            pg,
            replicas,
            redis,
            mongo: mongo.clone(),
            caches,
            lane,
            login_limits: LocalLimits::new(auth.local_limiter_entries),
            events: EventWriter::start(mongo),
            token_calls,
            fetch,
            dummy_hash,
        });
        let svc = Arc::new(Services {
            draining: Default::default(),
            metrics: Metrics::new(
                rpc::method_names()
                    .into_iter()
                    .chain(thrift::METHODS.iter().copied())
                    .collect(),
            ),
            model,
            config,
        });
        let http = HttpServer::start(svc.clone(), &svc.config.server.host, svc.config.server.port)?;
        let thrift = match (svc.config.thrift.port, http.work_queue()) {
            (Some(port), Some(queue)) => {
                let server =
                    ThriftServer::start(svc.clone(), queue, &svc.config.thrift.host, port)?;
                log::info!("thrift UserService at {}", server.addr());
                if !svc.config.clients.is_empty() {
                    log::warn!(
                        "[THRIFT] PORT: Thrift callers present no caller key ([CLIENTS] \
                         applies to /rpc only): keep the Thrift port on a private network"
                    );
                }
                Some(server)
            }
            _ => None,
        };
        Ok(App {
            http,
            thrift,
            svc,
            stop,
            background,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.http.addr()
    }

    /// Stops accepting, finishes queued and in-flight requests, writes the
    /// queued login events, stops the background threads.
    /// SIGTERM's first step: `/readyz` turns 503 at once so a balancer
    /// stops sending, while requests are still served for `[SERVER]
    /// DRAIN_S`; then [`App::shutdown`].
    pub fn drain(&self) {
        self.svc.draining.store(true, Ordering::Release);
        let drain = self.svc.config.server.drain;
        log::info!(
            "draining: /readyz answers 503, serving on for {} s",
            drain.as_secs_f64()
        );
        std::thread::sleep(drain);
    }

    pub fn shutdown(self) {
        if let Some(thrift) = self.thrift {
            thrift.shutdown();
        }
        self.http.shutdown();
        self.svc.model.shutdown();
        self.stop.store(true, Ordering::Release);
        for t in self.background {
            let _ = t.join();
        }
    }
}

/// As many queued hashes as the lane can finish within three quarters of a
/// request's deadline: a deeper queue would only turn fast refusals (-32002)
/// into slow timeouts (-32001).
fn lane_depth(workers: usize, hash_time: Duration, deadline: Duration) -> usize {
    let per_job = hash_time.as_secs_f64().max(1e-4) / workers.max(1) as f64;
    let fits = (0.75 * deadline.as_secs_f64() / per_job) as usize;
    fits.saturating_sub(workers).clamp(workers, 4096)
}

/// A login waits for its hash on a request worker, so the lane's places
/// (hashing or queued) are capped by default at half the workers: the other
/// half (at least one) stays free for token checks whatever a flood does
/// (an explicit `HASH_QUEUE_DEPTH` is kept, with a warning when it passes
/// this). Without it, a faster machine's deeper default (bcrypt timed at
/// 222 ms instead of 256: 18 queued + 2 hashing = all 20 workers) let a
/// login flood hold every worker, and token checks under it fell from
/// 75-81% of their unloaded rate to 32 calls a second; with a quarter free
/// they read 66-71% (5 workers alone serve 81-90% of what 20 do).
fn within_workers(depth: usize, hash_workers: usize, request_workers: usize) -> usize {
    depth.min(lane_places(request_workers).saturating_sub(hash_workers))
}

/// The lane's places (hashing or queued) that leave the larger half of the
/// request workers, at least one, free.
fn lane_places(request_workers: usize) -> usize {
    request_workers.saturating_sub(request_workers.div_ceil(2).max(1))
}

fn ensure_indexes(mongo: &Mongo, stop: &AtomicBool) {
    let mut warned = false;
    while !stop.load(Ordering::Acquire) {
        match mongo.ensure_indexes() {
            Ok(()) => return,
            Err(e) => {
                if !warned {
                    log::warn!("mongo indexes not created yet, retrying: {e}");
                    warned = true;
                }
                for _ in 0..50 {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lane_holds_what_it_can_hash_within_the_deadline() {
        let ms = Duration::from_millis;
        // 2 threads, 200 ms a hash, 3 s deadline: 22 fit in 2.25 s, 2 run.
        assert_eq!(lane_depth(2, ms(200), ms(3000)), 20);
        // never less than one queued job per thread, never unbounded
        assert_eq!(lane_depth(2, ms(5000), ms(3000)), 2);
        assert_eq!(lane_depth(2, Duration::ZERO, ms(3000)), 4096);
    }

    #[test]
    fn half_the_request_workers_stay_out_of_the_lane() {
        // 20 workers, 2 hashing: 10 places, 8 queued at most.
        assert_eq!(within_workers(18, 2, 20), 8);
        assert_eq!(within_workers(4096, 2, 20), 8);
        assert_eq!(within_workers(5, 2, 20), 5);
        // Odd and few workers: the larger half stays free, at least one.
        assert_eq!(within_workers(20, 1, 3), 0);
        assert_eq!(within_workers(20, 1, 5), 1);
        assert_eq!(within_workers(20, 2, 2), 0);
        assert_eq!(within_workers(4096, 4, 64), 28);
        assert_eq!([1, 2, 3, 20, 21].map(lane_places), [0, 1, 1, 10, 10]);
    }
}
