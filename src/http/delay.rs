//! Calls refused because the hashing lane is full are answered after a short
//! pause instead of at once. Closed-loop callers (a retrying client, a load
//! generator) would otherwise come straight back, and thousands of refusals
//! a second would take the CPU the lane needs to serve the logins it holds.
//! The pause is spent here, holding only the request, never a worker.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::respond::Reply;
use crate::services::Services;

/// Well under the contract's promise of a fast refusal (tens of ms).
pub const SHED_PAUSE: Duration = Duration::from_millis(25);
/// Answers that may wait; past this a refusal is sent at once.
pub const CAPACITY: usize = 4096;

pub struct Delayed {
    pub due: Instant,
    pub request: tiny_http::Request,
    pub reply: Reply,
    pub rid: u64,
    pub arrived: Instant,
    pub outcome: String,
}

/// Sends each answer when it is due. All pauses are equal, so arrival order
/// is due order. Ends when every worker has stopped and the queue is empty.
pub fn run(svc: &Services, queue: Receiver<Delayed>) {
    for d in queue {
        let now = Instant::now();
        if d.due > now {
            std::thread::sleep(d.due - now);
        }
        d.reply.send(d.request, d.rid, d.arrived, &d.outcome, svc);
    }
}
