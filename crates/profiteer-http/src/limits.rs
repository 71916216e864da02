//! profiteer patch: the bounds every connection lives within, and the
//! counters that show them at work. See `conn.rs` for where each applies.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::Request;

/// Decides, as soon as a request's headers end, whether its body is wanted
/// (e.g. whether the caller's key is good). It sees the request line and
/// headers (the body is empty); it runs for every request that has a body,
/// before any byte of it is read and before a `100 Continue`. `false`: the
/// body is never read, the request is handed on body-less (for the
/// application to refuse) and the connection closes after its answer.
pub type HeadCheck = Arc<dyn Fn(&Request) -> bool + Send + Sync>;

/// Bounds in time and memory for every connection.
#[derive(Clone)]
pub struct Limits {
    /// Open connections beyond this are closed as soon as they are accepted.
    pub max_connections: usize,
    /// The request line and all headers must arrive within this, counted
    /// from the connection's accept (first request) or from the first byte
    /// of the request (later ones); else 408 and close.
    pub header_timeout: Duration,
    /// A kept-alive connection with no new request for this long is closed.
    pub keepalive: Duration,
    /// The body must have arrived by the request's arrival plus this; else
    /// 408 and close.
    pub request_timeout: Duration,
    /// A body over this is answered 413 (by its Content-Length before any
    /// of it is read; a chunked one as soon as it passes the limit).
    pub max_body_bytes: usize,
    /// All bodies held in memory together (being read, or read and not yet
    /// answered) at most this: a request that would pass it is answered 503
    /// and its connection closed, by its Content-Length before any of its
    /// body is read (a chunked one as its body grows past it).
    /// `max_connections × max_body_bytes` alone is gigabytes.
    pub max_inflight_body_bytes: usize,
    /// One header line (or the request line) longer than this: 431.
    pub max_header_line: usize,
    /// The request line and headers together longer than this: 431.
    pub max_header_bytes: usize,
    /// An answer must be written within this, else the connection closes.
    pub write_timeout: Duration,
    /// See [`HeadCheck`]; `None` wants every body.
    pub head_check: Option<HeadCheck>,
    /// Threads that serve the connections (each a share of them).
    pub pollers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1 << 20,
            max_inflight_body_bytes: 256 << 20,
            max_header_line: 8 * 1024,
            max_header_bytes: 64 * 1024,
            write_timeout: Duration::from_secs(10),
            head_check: None,
            pollers: 2,
        }
    }
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("keepalive", &self.keepalive)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_inflight_body_bytes", &self.max_inflight_body_bytes)
            .field("max_header_line", &self.max_header_line)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("write_timeout", &self.write_timeout)
            .field("head_check", &self.head_check.is_some())
            .field("pollers", &self.pollers)
            .finish()
    }
}

/// What the edge did, for an operator's metrics. All counts since start.
#[derive(Debug, Default)]
pub struct EdgeStats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections closed at accept because `max_connections` were open.
    pub refused: AtomicU64,
    /// 408: request line and headers not complete within `header_timeout`.
    pub header_timeouts: AtomicU64,
    /// 408: body not complete by the request's deadline.
    pub body_timeouts: AtomicU64,
    /// 431: a header line or all headers over their limit.
    pub headers_too_large: AtomicU64,
    /// 413: a body over `max_body_bytes`.
    pub bodies_too_large: AtomicU64,
    /// 400, 501, 505, 417: a head `httparse` or the RFC 9112 framing rules
    /// refused, or a broken chunked body (connection closed).
    pub bad_requests: AtomicU64,
    /// 503: the body would have passed `max_inflight_body_bytes`.
    pub bodies_over_budget: AtomicU64,
    /// Bytes of request bodies held now (see `max_inflight_body_bytes`).
    pub inflight_body_bytes: AtomicUsize,
    /// Requests whose body the [`HeadCheck`] did not want (never read).
    pub bodies_refused: AtomicU64,
    /// Kept-alive connections closed after `keepalive` without a request.
    pub idle_closed: AtomicU64,
    /// Failed `accept` calls (each followed by a pause).
    pub accept_errors: AtomicU64,
    /// Requests handed to the application whose answer the connection's
    /// thread has not yet written (or given up on). A server that stops
    /// waits for this to reach 0: the answers are written by those threads,
    /// not by the application's, and would die with the process.
    pub answering: AtomicUsize,
}

impl EdgeStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Holds one place among the open connections; gives it back on drop.
pub(crate) struct OpenSlot(pub(crate) Arc<EdgeStats>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bytes of request bodies held in memory, counted in
/// `EdgeStats::inflight_body_bytes` against `Limits::max_inflight_body_bytes`
/// from before they are read until the request's answer comes back.
pub(crate) struct BodyBytes {
    stats: Arc<EdgeStats>,
    held: usize,
}

impl BodyBytes {
    pub(crate) fn new(stats: Arc<EdgeStats>) -> BodyBytes {
        BodyBytes { stats, held: 0 }
    }

    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Holds `more` bytes more; `false` (and nothing more held) when that
    /// would pass `max` in all.
    pub(crate) fn grow(&mut self, more: usize, max: usize) -> bool {
        let taken = self.stats.inflight_body_bytes.fetch_update(
            Ordering::AcqRel,
            Ordering::Acquire,
            |all| all.checked_add(more).filter(|&all| all <= max),
        );
        if taken.is_ok() {
            self.held += more;
        }
        taken.is_ok()
    }
}

impl Drop for BodyBytes {
    fn drop(&mut self) {
        self.stats
            .inflight_body_bytes
            .fetch_sub(self.held, Ordering::AcqRel);
    }
}
