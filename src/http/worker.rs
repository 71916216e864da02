//! A request worker: takes queued requests, refuses the ones past their
//! deadline, checks the caller's key and hands the body (read already, within
//! its limit, by the connection's poller thread) to the JSON-RPC layer.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, TryRecvError};
use sha2::{Digest, Sha256};

use super::delay::{Delayed, Pacer};
use super::respond::{Outcomes, Reply};
use super::{HttpJob, Job, Task};
use crate::config::ClientKey;
use crate::error::AppError;
use crate::rpc;
use crate::services::Services;

pub fn run(svc: &Services, queue: Receiver<Job>, pacer: &Pacer) {
    // Access lines are gathered, and queued whenever the queue is empty.
    crate::logging::batch_lines();
    loop {
        let job = match queue.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                crate::logging::flush_batch();
                match queue.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            }
        };
        match job {
            Job::Http(job) => serve(svc, job, pacer),
            Job::Task(task) => run_task(svc, task),
        }
    }
    crate::logging::flush_batch();
}

/// A call from another front end; a panic in it must not end this worker.
fn run_task(svc: &Services, task: Task) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(svc))).is_err() {
        log::error!("a queued task panicked");
    }
}

/// The configured caller whose key this request presents; `Err` when callers
/// must authenticate and this one did not. `Ok(None)`: no `[CLIENTS]`.
/// Two `X-Client-Key` headers, or a list in one, present no key: which one
/// counts would depend on who reads them (a proxy may join or split them).
pub(super) fn caller<'a>(
    svc: &'a Services,
    request: &tiny_http::Request,
) -> Result<Option<&'a ClientKey>, ()> {
    if svc.config.clients.is_empty() {
        return Ok(None);
    }
    let mut keys = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("X-Client-Key"))
        .map(|h| h.value.as_str());
    let presented = keys.next().ok_or(())?;
    if keys.next().is_some() || presented.contains(',') {
        return Err(());
    }
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    svc.config
        .clients
        .iter()
        .find(|c| c.key_sha256 == digest)
        .map(Some)
        .ok_or(())
}

/// The request's deadline passed before it could run: 503 / -32001.
fn expired(svc: &Services, job: HttpJob) {
    svc.metrics.expired.fetch_add(1, Ordering::Relaxed);
    svc.metrics
        .observe("unknown", "timeout", job.call.arrived.elapsed());
    Reply::rpc_error(503, &AppError::Timeout, job.call.rid).send(
        job.request,
        &job.call,
        "timeout",
        svc,
    );
}

fn serve(svc: &Services, mut job: HttpJob, pacer: &Pacer) {
    let call = job.call;
    if Instant::now() >= call.deadline {
        expired(svc, job);
        return;
    }
    let client = match caller(svc, &job.request) {
        Ok(c) => c,
        Err(()) => {
            svc.metrics
                .unauthorized_clients
                .fetch_add(1, Ordering::Relaxed);
            Reply::rpc_error(401, &AppError::Unauthorized, call.rid).send(
                job.request,
                &call,
                "unauthorized",
                svc,
            );
            return;
        }
    };
    let body = job.request.take_body();
    let answer = rpc::handle(&rpc::Request { svc, call, client }, &body);
    let reply = match answer.body {
        Some(bytes) => Reply::json_bytes(200, bytes),
        None => Reply::empty(204),
    };
    let lane_full =
        !answer.calls.is_empty() && answer.calls.iter().all(|c| c.outcome == "overloaded");
    let outcome = Outcomes(answer.calls);
    if lane_full {
        let refusal = Delayed {
            due: Instant::now(),
            request: job.request,
            reply,
            call,
            outcome,
        };
        pacer.refuse(svc, refusal);
        return;
    }
    reply.send(job.request, &call, &outcome, svc);
}
