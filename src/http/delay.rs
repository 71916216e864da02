//! Calls refused because the hashing lane is full are answered after a short
//! pause instead of at once. Closed-loop callers (a retrying client, a load
//! generator) would otherwise come straight back, and thousands of refusals
//! a second would take the CPU the lane needs to serve the logins it holds.
//! The pause is spent here, holding only the request, never a worker, and
//! it grows only when refusals pile up: a few refused logins are told at
//! once, a storm of them is slowed down.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::respond::Reply;
use crate::services::Services;

/// The pause while refusals are few: a caller is told at once, nearly.
const SHORT_PAUSE: Duration = Duration::from_millis(5);
/// The pause once refusals pile up (a retry storm): long enough to cut the
/// storm's rate tenfold, short enough that a caller still hears quickly.
const LONG_PAUSE: Duration = Duration::from_millis(50);
/// Refusals waiting at once that mean a storm (at the short pause, more
/// than ~3,000 refusals a second).
const STORM: usize = 16;
/// Answers that may wait; past this a refusal is sent at once.
pub const CAPACITY: usize = 4096;

/// When a refusal made now should be sent, given how many are waiting.
pub fn due(waiting: usize) -> Instant {
    Instant::now()
        + if waiting >= STORM {
            LONG_PAUSE
        } else {
            SHORT_PAUSE
        }
}

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
