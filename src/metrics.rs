//! Prometheus text metrics, kept in plain atomics: per method and outcome a
//! request count and a latency histogram, plus the gauges an operator needs
//! to see admission control at work (queue depth, shed and timed-out counts,
//! pool connections in use).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod edge;
use edge::render_edge;
pub use edge::EdgeCounts;

pub use crate::error::OUTCOMES;

/// Upper bounds in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

struct Series {
    count: AtomicU64,
    sum_us: AtomicU64,
    buckets: [AtomicU64; 13],
}

impl Series {
    fn new() -> Series {
        Series {
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            buckets: Default::default(),
        }
    }
}

pub struct Metrics {
    /// Method names; one more slot at the end for unknown methods.
    methods: Vec<&'static str>,
    series: Vec<Series>,
    pub shed: AtomicU64,
    pub expired: AtomicU64,
    pub unauthorized_clients: AtomicU64,
    /// Open connections on the Thrift port, and those closed at once
    /// because `[THRIFT] MAX_CONNECTIONS` were open.
    pub thrift_connections: AtomicU64,
    pub thrift_refused: AtomicU64,
}

/// Gauges sampled when `/metrics` is read.
#[derive(Default)]
pub struct Gauges {
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub hash_queue_depth: usize,
    pub hash_shed: u64,
    pub hash_ran: u64,
    pub pg_connections: u32,
    pub pg_idle: u32,
    pub pg_max: u32,
    pub redis_connections: u32,
    pub redis_idle: u32,
    pub local_cache_enabled: bool,
    pub events_written: u64,
    pub events_dropped: u64,
    pub events_failed: u64,
    /// Login limits kept in this instance's memory (Redis unreachable).
    pub login_limiter_local: bool,
    /// `/readyz` and `/metrics` requests being answered now.
    pub side_slots_in_use: usize,
    pub edge: EdgeCounts,
}

impl Metrics {
    pub fn new(methods: Vec<&'static str>) -> Metrics {
        let slots = (methods.len() + 1) * OUTCOMES.len();
        Metrics {
            methods,
            series: (0..slots).map(|_| Series::new()).collect(),
            shed: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            unauthorized_clients: AtomicU64::new(0),
            thrift_connections: AtomicU64::new(0),
            thrift_refused: AtomicU64::new(0),
        }
    }

    fn method_index(&self, method: &str) -> usize {
        self.methods
            .iter()
            .position(|m| *m == method)
            .unwrap_or(self.methods.len())
    }

    pub fn observe(&self, method: &str, outcome: &str, took: Duration) {
        // Every label comes from `AppError::outcome` (or is "ok"); one that
        // did not would be a bug, never counted as a success.
        let o = OUTCOMES
            .iter()
            .position(|x| *x == outcome)
            .or_else(|| OUTCOMES.iter().position(|x| *x == "internal_error"))
            .unwrap_or(0);
        let Some(s) = self
            .series
            .get(self.method_index(method) * OUTCOMES.len() + o)
        else {
            return;
        };
        s.count.fetch_add(1, Ordering::Relaxed);
        s.sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|le| secs <= *le) {
            s.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("# HELP profiteer_requests_total JSON-RPC calls by method and outcome.\n");
        out.push_str("# TYPE profiteer_requests_total counter\n");
        let names: Vec<&str> = self.methods.iter().copied().chain(["unknown"]).collect();
        let each = |f: &mut dyn FnMut(&str, &str, &Series)| {
            for (mi, m) in names.iter().enumerate() {
                for (oi, o) in OUTCOMES.iter().enumerate() {
                    if let Some(s) = self.series.get(mi * OUTCOMES.len() + oi) {
                        if s.count.load(Ordering::Relaxed) > 0 {
                            f(m, o, s);
                        }
                    }
                }
            }
        };
        each(&mut |m, o, s| {
            let _ = writeln!(
                out,
                "profiteer_requests_total{{method=\"{m}\",outcome=\"{o}\"}} {}",
                s.count.load(Ordering::Relaxed)
            );
        });
        out.push_str("# HELP profiteer_request_duration_seconds Time from arrival to answer.\n");
        out.push_str("# TYPE profiteer_request_duration_seconds histogram\n");
        each(&mut |m, o, s| {
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "profiteer_request_duration_seconds_bucket{{method=\"{m}\",outcome=\"{o}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "profiteer_request_duration_seconds_bucket{{method=\"{m}\",outcome=\"{o}\",le=\"+Inf\"}} {count}\n\
                 profiteer_request_duration_seconds_sum{{method=\"{m}\",outcome=\"{o}\"}} {}\n\
                 profiteer_request_duration_seconds_count{{method=\"{m}\",outcome=\"{o}\"}} {count}",
                s.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
        });
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let lines: [(&str, &str, &str, String); 18] = [
            (
                "profiteer_queue_depth",
                "gauge",
                "Requests waiting for a worker.",
                g.queue_depth.to_string(),
            ),
            (
                "profiteer_queue_capacity",
                "gauge",
                "Most requests that may wait.",
                g.queue_capacity.to_string(),
            ),
            (
                "profiteer_shed_total",
                "counter",
                "Requests refused because the queue was full (-32002).",
                load(&self.shed).to_string(),
            ),
            (
                "profiteer_expired_total",
                "counter",
                "Requests that waited past their deadline (-32001).",
                load(&self.expired).to_string(),
            ),
            (
                "profiteer_unauthorized_clients_total",
                "counter",
                "Requests refused with 401.",
                load(&self.unauthorized_clients).to_string(),
            ),
            (
                "profiteer_side_slots_in_use",
                "gauge",
                "/readyz and /metrics requests being answered now (at most 4).",
                g.side_slots_in_use.to_string(),
            ),
            (
                "profiteer_hash_queue_depth",
                "gauge",
                "Password hashes queued or running on the hashing lane.",
                g.hash_queue_depth.to_string(),
            ),
            (
                "profiteer_hash_shed_total",
                "counter",
                "Calls shed because the hashing lane was full.",
                g.hash_shed.to_string(),
            ),
            (
                "profiteer_hash_jobs_total",
                "counter",
                "Password hashes and checks of calls run on the hashing lane.",
                g.hash_ran.to_string(),
            ),
            (
                "profiteer_pg_pool_connections",
                "gauge",
                "PostgreSQL connections open.",
                g.pg_connections.to_string(),
            ),
            (
                "profiteer_pg_pool_in_use",
                "gauge",
                "PostgreSQL connections in use.",
                (g.pg_connections - g.pg_idle.min(g.pg_connections)).to_string(),
            ),
            (
                "profiteer_pg_pool_max",
                "gauge",
                "PostgreSQL pool size.",
                g.pg_max.to_string(),
            ),
            (
                "profiteer_redis_pool_connections",
                "gauge",
                "Redis connections open.",
                g.redis_connections.to_string(),
            ),
            (
                "profiteer_redis_pool_in_use",
                "gauge",
                "Redis connections in use.",
                (g.redis_connections - g.redis_idle.min(g.redis_connections)).to_string(),
            ),
            (
                "profiteer_local_cache_enabled",
                "gauge",
                "1 while the cache feed is fresh (local caches answer).",
                u8::from(g.local_cache_enabled).to_string(),
            ),
            (
                "profiteer_login_events_written_total",
                "counter",
                "Login events stored in MongoDB.",
                g.events_written.to_string(),
            ),
            (
                "profiteer_login_events_dropped_total",
                "counter",
                "Login events never written: queue or retry buffer full.",
                g.events_dropped.to_string(),
            ),
            (
                "profiteer_login_events_failed_total",
                "counter",
                "Failed attempts to write login events (their events are retried).",
                g.events_failed.to_string(),
            ),
        ];
        let thrift = [
            (
                "profiteer_thrift_connections",
                "gauge",
                "Open connections on the Thrift port.",
                load(&self.thrift_connections).to_string(),
            ),
            (
                "profiteer_thrift_refused_total",
                "counter",
                "Thrift connections closed at once: [THRIFT] MAX_CONNECTIONS were open.",
                load(&self.thrift_refused).to_string(),
            ),
        ];
        for (name, kind, help, value) in lines.into_iter().chain(thrift) {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        render_edge(&mut out, &g.edge);
        let local = u8::from(g.login_limiter_local);
        let _ = writeln!(
            out,
            "# HELP profiteer_login_limiter 1 for where the last login-limit decision was \
             taken: redis (shared by every instance) or local (this instance, Redis unreachable).\n\
             # TYPE profiteer_login_limiter gauge\n\
             profiteer_login_limiter{{backend=\"redis\"}} {}\n\
             profiteer_login_limiter{{backend=\"local\"}} {local}",
            1 - local
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_calls_show_as_counts_and_cumulative_buckets() {
        let m = Metrics::new(vec!["ping"]);
        m.observe("ping", "ok", Duration::from_micros(700));
        m.observe("nope", "method_not_found", Duration::from_millis(2));
        let g = Gauges {
            queue_depth: 0,
            queue_capacity: 1,
            hash_queue_depth: 0,
            hash_shed: 0,
            hash_ran: 0,
            pg_connections: 0,
            pg_idle: 0,
            pg_max: 1,
            redis_connections: 0,
            redis_idle: 0,
            local_cache_enabled: true,
            events_written: 0,
            events_dropped: 0,
            events_failed: 0,
            edge: EdgeCounts::default(),
            login_limiter_local: false,
            side_slots_in_use: 0,
        };
        let text = m.render(&g);
        assert!(text.contains("profiteer_requests_total{method=\"ping\",outcome=\"ok\"} 1"));
        assert!(text.contains("method=\"unknown\",outcome=\"method_not_found\"} 1"));
        assert!(text.contains("{method=\"ping\",outcome=\"ok\",le=\"0.0005\"} 0"));
        assert!(text.contains("{method=\"ping\",outcome=\"ok\",le=\"0.001\"} 1"));
        assert!(text.contains("profiteer_login_limiter{backend=\"redis\"} 1"));
        assert!(text.contains("profiteer_login_limiter{backend=\"local\"} 0"));
    }
}
