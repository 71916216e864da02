//! A request worker: takes queued requests, refuses the ones past their
//! deadline, checks the caller's key, reads the body within its limit and
//! hands it to the JSON-RPC layer.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::Receiver;
use sha2::{Digest, Sha256};

use super::delay::{Delayed, Pacer};
use super::respond::Reply;
use super::Job;
use crate::config::ClientKey;
use crate::error::AppError;
use crate::rpc;
use crate::services::Services;

pub fn run(svc: &Services, queue: Receiver<Job>, pacer: &Pacer) {
    for job in queue {
        serve(svc, job, pacer);
    }
}

/// The configured caller whose key this request presents; `Err` when callers
/// must authenticate and this one did not. `Ok(None)`: no `[CLIENTS]`.
fn caller<'a>(
    svc: &'a Services,
    request: &tiny_http::Request,
) -> Result<Option<&'a ClientKey>, ()> {
    if svc.config.clients.is_empty() {
        return Ok(None);
    }
    let presented = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("X-Client-Key"))
        .map(|h| h.value.as_str())
        .ok_or(())?;
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    svc.config
        .clients
        .iter()
        .find(|c| c.key_sha256 == digest)
        .map(Some)
        .ok_or(())
}

enum BodyError {
    Late,
    Io(std::io::Error),
}

/// Reads at most `max + 1` bytes (one more tells "too large"), giving up at
/// the deadline. Bodies up to 64 KiB were read already by the connection's
/// thread; a larger one arrives here and is read in chunks, so a client that
/// trickles it cannot hold this worker past the deadline plus one socket
/// timeout.
fn read_body(
    request: &mut tiny_http::Request,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::with_capacity(request.body_length().unwrap_or(256).min(max + 1));
    let mut reader = request.as_reader().take(max as u64 + 1);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut chunk).map_err(BodyError::Io)?;
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..n]);
        if Instant::now() >= deadline {
            return Err(BodyError::Late);
        }
    }
}

/// The request's deadline passed before it could run: 503 / -32001.
fn expired(svc: &Services, job: Job) {
    svc.metrics.expired.fetch_add(1, Ordering::Relaxed);
    svc.metrics
        .observe("unknown", "timeout", job.arrived.elapsed());
    Reply::rpc_error(503, &AppError::Timeout, job.rid).send(
        job.request,
        job.rid,
        job.arrived,
        "timeout",
        svc,
    );
}

fn serve(svc: &Services, mut job: Job, pacer: &Pacer) {
    let deadline = job.arrived + svc.config.server.request_timeout;
    let rid = job.rid;
    if Instant::now() >= deadline {
        expired(svc, job);
        return;
    }
    let client = match caller(svc, &job.request) {
        Ok(c) => c,
        Err(()) => {
            svc.metrics
                .unauthorized_clients
                .fetch_add(1, Ordering::Relaxed);
            Reply::rpc_error(401, &AppError::Unauthorized, rid).send(
                job.request,
                rid,
                job.arrived,
                "unauthorized",
                svc,
            );
            return;
        }
    };
    let max = svc.config.server.max_body_bytes;
    let body = match read_body(&mut job.request, max, deadline) {
        Ok(body) => body,
        Err(BodyError::Late) => {
            expired(svc, job);
            return;
        }
        Err(BodyError::Io(e)) => {
            log::debug!("rid={rid} body not read: {e}");
            Reply::text(400, "request body could not be read").send(
                job.request,
                rid,
                job.arrived,
                "bad_body",
                svc,
            );
            return;
        }
    };
    if body.len() > max {
        svc.metrics.too_large.fetch_add(1, Ordering::Relaxed);
        Reply::too_large().send(job.request, rid, job.arrived, "too_large", svc);
        return;
    }
    let answer = rpc::handle(
        &rpc::Request {
            svc,
            arrived: job.arrived,
            deadline,
            rid,
            client,
        },
        &body,
    );
    let outcome = answer
        .calls
        .iter()
        .map(|c| format!("{}:{}", c.method, c.outcome))
        .collect::<Vec<_>>()
        .join(",");
    let reply = match answer.body {
        Some(text) => Reply::json_text(200, text),
        None => Reply::empty(204),
    };
    let lane_full =
        !answer.calls.is_empty() && answer.calls.iter().all(|c| c.outcome == "overloaded");
    if lane_full {
        let refusal = Delayed {
            due: Instant::now(),
            request: job.request,
            reply,
            rid,
            arrived: job.arrived,
            outcome,
        };
        pacer.refuse(svc, refusal);
        return;
    }
    reply.send(job.request, rid, job.arrived, &outcome, svc);
}
