//! The connection edge's counters (what the patched tiny_http did to
//! clients), rendered after the service's own metrics.

use std::fmt::Write;

/// What the connection edge (the patched tiny_http) did, since start.
#[derive(Default)]
pub struct EdgeCounts {
    pub open: u64,
    pub refused: u64,
    pub header_timeouts: u64,
    pub body_timeouts: u64,
    pub headers_too_large: u64,
    pub bodies_too_large: u64,
    pub bodies_refused: u64,
    pub bad_requests: u64,
    pub bodies_over_budget: u64,
    pub inflight_body_bytes: u64,
    pub idle_closed: u64,
    pub accept_errors: u64,
}

pub(super) fn render_edge(out: &mut String, e: &EdgeCounts) {
    let lines = [
        (
            "profiteer_connections_open",
            "gauge",
            "HTTP connections open now.",
            e.open,
        ),
        (
            "profiteer_connections_refused_total",
            "counter",
            "Connections closed at accept: MAX_CONNECTIONS were open.",
            e.refused,
        ),
        (
            "profiteer_header_timeouts_total",
            "counter",
            "408: request line and headers not in within HEADER_TIMEOUT_MS.",
            e.header_timeouts,
        ),
        (
            "profiteer_body_timeouts_total",
            "counter",
            "408: body not in within REQUEST_TIMEOUT_MS of its headers.",
            e.body_timeouts,
        ),
        (
            "profiteer_headers_too_large_total",
            "counter",
            "431 (or 414): a header line over 8 KiB or headers over 64 KiB.",
            e.headers_too_large,
        ),
        (
            "profiteer_body_too_large_total",
            "counter",
            "413: a body over MAX_BODY_BYTES.",
            e.bodies_too_large,
        ),
        (
            "profiteer_bodies_refused_total",
            "counter",
            "Bodies not wanted when their headers ended (no valid client key, not POST /rpc): never read.",
            e.bodies_refused,
        ),
        (
            "profiteer_bad_requests_total",
            "counter",
            "400/501/505/417 at the edge: a malformed head or ambiguous framing (RFC 9112).",
            e.bad_requests,
        ),
        (
            "profiteer_bodies_over_budget_total",
            "counter",
            "503: the body would have passed MAX_INFLIGHT_BODY_BYTES.",
            e.bodies_over_budget,
        ),
        (
            "profiteer_inflight_body_bytes",
            "gauge",
            "Bytes of request bodies held now (read or being read, not yet answered).",
            e.inflight_body_bytes,
        ),
        (
            "profiteer_keepalive_closed_total",
            "counter",
            "Idle keep-alive connections closed after KEEPALIVE_S.",
            e.idle_closed,
        ),
        (
            "profiteer_accept_errors_total",
            "counter",
            "Failed accepts (e.g. EMFILE), each followed by a short pause.",
            e.accept_errors,
        ),
    ];
    for (name, kind, help, value) in lines {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}
