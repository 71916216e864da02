//! A request worker: takes queued requests, refuses the ones past their
//! deadline, checks the caller's key, reads the body within its limit and
//! hands it to the JSON-RPC layer.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::Receiver;
use sha2::{Digest, Sha256};

use super::respond::Reply;
use super::Job;
use crate::config::ClientKey;
use crate::error::AppError;
use crate::rpc;
use crate::services::Services;

pub fn run(svc: &Services, queue: Receiver<Job>) {
    for job in queue {
        serve(svc, job);
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

fn serve(svc: &Services, mut job: Job) {
    let deadline = job.arrived + svc.config.server.request_timeout;
    let rid = job.rid;
    if Instant::now() >= deadline {
        svc.metrics.expired.fetch_add(1, Ordering::Relaxed);
        svc.metrics
            .observe("unknown", "timeout", job.arrived.elapsed());
        Reply::rpc_error(503, &AppError::Timeout, rid).send(
            job.request,
            rid,
            job.arrived,
            "timeout",
            svc,
        );
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
    let mut body = Vec::with_capacity(job.request.body_length().unwrap_or(256).min(max));
    let read = job
        .request
        .as_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
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
    let reply = match &answer.body {
        Some(value) => Reply::json(200, value),
        None => Reply::empty(204),
    };
    reply.send(job.request, rid, job.arrived, &outcome, svc);
}
