//! Building and sending HTTP answers, and the access log line that goes with
//! each (request id, method, path, status, outcome, duration; never a body).

use std::borrow::Cow;
use std::io::Cursor;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use tiny_http::{EdgeStats, Header, Response};

use crate::error::AppError;
use crate::metrics::{EdgeCounts, Gauges};
use crate::rpc::CallRecord;
use crate::services::{Call, Services};

pub struct Reply {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    extra: Vec<(&'static str, String)>,
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

impl Reply {
    pub fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            body: text.as_bytes().to_vec(),
            content_type: "text/plain; charset=utf-8",
            extra: Vec::new(),
        }
    }

    pub fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            content_type: "application/json",
            extra: Vec::new(),
        }
    }

    /// JSON made already (an RPC answer), sent as it is.
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            body,
            content_type: "application/json",
            extra: Vec::new(),
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: Vec::new(),
            content_type: "",
            extra: Vec::new(),
        }
    }

    pub fn rpc_error(status: u16, e: &AppError, rid: u64) -> Reply {
        Reply::json(
            status,
            &json!({"jsonrpc": "2.0", "error": e.to_json(rid), "id": null}),
        )
    }

    pub fn not_allowed(allow: &str) -> Reply {
        let mut r = Reply::text(405, "method not allowed");
        r.extra.push(("Allow", allow.to_string()));
        r
    }

    pub fn metrics(svc: &Services, queue_depth: usize, edge: &EdgeStats) -> Reply {
        let mut gauges = Gauges {
            queue_depth,
            queue_capacity: svc.config.server.queue_depth,
            pg_max: svc.config.pg.pool_size,
            edge: EdgeCounts {
                open: edge.open.load(Ordering::Relaxed) as u64,
                refused: edge.refused.load(Ordering::Relaxed),
                header_timeouts: edge.header_timeouts.load(Ordering::Relaxed),
                body_timeouts: edge.body_timeouts.load(Ordering::Relaxed),
                headers_too_large: edge.headers_too_large.load(Ordering::Relaxed),
                bodies_too_large: edge.bodies_too_large.load(Ordering::Relaxed),
                bodies_refused: edge.bodies_refused.load(Ordering::Relaxed),
                bad_requests: edge.bad_requests.load(Ordering::Relaxed),
                bodies_over_budget: edge.bodies_over_budget.load(Ordering::Relaxed),
                inflight_body_bytes: edge.inflight_body_bytes.load(Ordering::Relaxed) as u64,
                idle_closed: edge.idle_closed.load(Ordering::Relaxed),
                accept_errors: edge.accept_errors.load(Ordering::Relaxed),
            },
            side_slots_in_use: super::side_slots_in_use(),
            ..Gauges::default()
        };
        svc.model.gauges(&mut gauges);
        let mut text = svc.metrics.render(&gauges);
        text.push_str(&svc.model.shared_fetches());
        text.push_str(&svc.model.replica_reads());
        text.push_str(&crate::webhooks::metrics());
        let mut r = Reply::text(200, &text);
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r
    }

    /// 503 only while draining or when no writable PostgreSQL primary can
    /// be reached (replicas do not count): Redis
    /// or MongoDB down is degraded service, not unready, or a balancer
    /// would pull every instance at once during an outage the service rides
    /// out. The body names each dependency's state (never error text).
    pub fn readiness(svc: &Services) -> Reply {
        let wait = svc.config.pg.pool_timeout.min(Duration::from_secs(2));
        let probe = svc.model.probe(wait);
        let (pg, redis, mongo) = (probe.postgres, probe.redis, probe.mongo);
        let state = |up: bool| if up { "up" } else { "down" };
        let draining = svc.draining.load(Ordering::Acquire);
        let status = if draining {
            "draining"
        } else if !pg {
            "unavailable"
        } else if redis && mongo {
            "ready"
        } else {
            "degraded"
        };
        let code = if draining || !pg { 503 } else { 200 };
        Reply::json(
            code,
            &json!({
                "status": status,
                "postgres": state(pg),
                "redis": state(redis),
                "mongo": state(mongo),
            }),
        )
    }

    /// Sends the reply and writes the access log line; `outcome` is what
    /// became of the call(s), written only into that line.
    pub fn send(
        self,
        request: tiny_http::Request,
        call: &Call,
        outcome: impl Outcome,
        svc: &Services,
    ) {
        let rid = call.rid;
        // Only the access log needs them, after the request is answered.
        let logged = svc
            .config
            .server
            .access_log
            .then(|| (request.method().clone(), route_label(request.url())));
        let status = self.status;
        let len = self.body.len();
        // The body is in memory, its length known: never chunked (tiny_http
        // chunks past 32 KiB, which cost a big user.gets a copy through the
        // encoder and the answer buffer's regrowth a quarter of its CPU).
        let mut response = Response::new(
            self.status.into(),
            Vec::new(),
            Cursor::new(self.body),
            Some(len),
            None,
        )
        .with_chunked_threshold(usize::MAX);
        if let Some(h) = content_type(self.content_type) {
            response.add_header(h);
        }
        let mut digits = itoa::Buffer::new();
        if let Some(h) = header("X-Request-Id", digits.format(rid)) {
            response.add_header(h);
        }
        for (name, value) in &self.extra {
            if let Some(h) = header(name, value) {
                response.add_header(h);
            }
        }
        if let Err(e) = request.respond(response) {
            log::debug!("rid={rid} answer not delivered: {e}");
        }
        if let Some((method, path)) = logged {
            let took = call.arrived.elapsed().as_micros();
            crate::logging::info_line(|line| {
                let mut digits = itoa::Buffer::new();
                line.push_str("rid=");
                line.push_str(digits.format(rid));
                line.push(' ');
                line.push_str(method.as_str());
                line.push(' ');
                line.push_str(&path);
                line.push_str(" status=");
                line.push_str(digits.format(status));
                line.push_str(" outcome=");
                outcome.write_into(line);
                line.push_str(" took_us=");
                line.push_str(digits.format(took));
            });
        }
    }
}

/// The Content-Type header of each kind of answer, made once.
fn content_type(value: &'static str) -> Option<Header> {
    static JSON: OnceLock<Option<Header>> = OnceLock::new();
    match value {
        "" => None,
        "application/json" => JSON.get_or_init(|| header("Content-Type", value)).clone(),
        _ => header("Content-Type", value),
    }
}

/// A request's path as the access log shows it (no query), without a copy
/// for the paths served.
fn route_label(url: &str) -> Cow<'static, str> {
    let path = url.split('?').next().unwrap_or("");
    match ["/rpc", "/healthz", "/readyz", "/metrics"]
        .into_iter()
        .find(|known| *known == path)
    {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(path.to_string()),
    }
}

/// What became of a request, as its access line shows it.
pub trait Outcome {
    fn write_into(&self, line: &mut String);
}

/// A label of the HTTP layer's own ("timeout", "-").
impl Outcome for &str {
    fn write_into(&self, line: &mut String) {
        line.push_str(self);
    }
}

/// The outcome of each call of a body, `method:outcome` joined by commas,
/// as the access log shows it (written where it goes, never collected).
pub struct Outcomes(pub Vec<CallRecord>);

impl Outcome for &Outcomes {
    fn write_into(&self, line: &mut String) {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(c.method);
            line.push(':');
            line.push_str(c.outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_method_colon_outcome_joined_by_commas() {
        let calls = |v: &[(&'static str, &'static str)]| {
            let mut line = String::new();
            (&Outcomes(
                v.iter()
                    .map(|&(method, outcome)| CallRecord { method, outcome })
                    .collect(),
            ))
                .write_into(&mut line);
            line
        };
        assert_eq!(calls(&[]), "");
        assert_eq!(calls(&[("ping", "ok")]), "ping:ok");
        assert_eq!(
            calls(&[("auth.login", "ok"), ("unknown", "invalid_request")]),
            "auth.login:ok,unknown:invalid_request"
        );
    }

    #[test]
    fn served_paths_are_labelled_without_their_query() {
        assert_eq!(route_label("/rpc"), "/rpc");
        assert!(matches!(
            route_label("/metrics?x=1"),
            Cow::Borrowed("/metrics")
        ));
        assert_eq!(route_label("/other?secret=1"), "/other");
    }
}
