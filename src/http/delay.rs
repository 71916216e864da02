//! Calls refused because the hashing lane is full are answered at once,
//! unless refusals come in a storm (closed-loop callers retrying straight
//! away): then each refusal is held for a short pause first. Thousands of
//! refusals a second would otherwise take the CPU the lane needs to finish
//! the logins it holds. The pause is spent on one thread that holds only the
//! request, never a worker.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::respond::{Outcomes, Reply};
use crate::services::{Call, Services};
use crate::window::WindowCounter;

/// The pause during a storm: cuts a retry storm's rate by two orders of
/// magnitude, and a caller still hears well within the deadline.
const PAUSE: Duration = Duration::from_millis(100);
/// Refusals over the last ~0.2 s that make a storm: more than 40, i.e.
/// about 200 a second (a storm paced at `PAUSE` stays above it).
const STORM: u64 = 40;
/// Answers that may wait; past this a refusal is sent at once.
pub const CAPACITY: usize = 4096;

pub struct Delayed {
    pub due: Instant,
    pub request: tiny_http::Request,
    pub reply: Reply,
    pub call: Call,
    pub outcome: Outcomes,
}

/// Counts refusals and sends or holds each answer.
pub struct Pacer {
    tx: Sender<Delayed>,
    refusals: WindowCounter,
}

impl Pacer {
    pub fn new(tx: Sender<Delayed>) -> Pacer {
        Pacer {
            tx,
            refusals: WindowCounter::default(),
        }
    }

    /// Sends a lane refusal now, or after the pause during a storm.
    pub fn refuse(&self, svc: &Services, d: Delayed) {
        if storm_pause(&self.refusals).is_none() {
            d.reply.send(d.request, &d.call, &d.outcome, svc);
            return;
        }
        let d = Delayed {
            due: Instant::now() + PAUSE,
            ..d
        };
        if let Err(TrySendError::Full(d) | TrySendError::Disconnected(d)) = self.tx.try_send(d) {
            d.reply.send(d.request, &d.call, &d.outcome, svc);
        }
    }
}

/// Counts one refusal in `refusals`: the pause to hold its answer for when
/// they come in a storm, `None` when it goes out at once. The Thrift
/// port's connection threads hold their own refusals this long.
pub fn storm_pause(refusals: &WindowCounter) -> Option<Duration> {
    (refusals.note() > STORM).then_some(PAUSE)
}

/// Sends each held answer when it is due. All pauses are equal, so arrival
/// order is due order. Ends when every worker has stopped and none is left.
pub fn run(svc: &Services, queue: Receiver<Delayed>) {
    for d in queue {
        let now = Instant::now();
        if d.due > now {
            std::thread::sleep(d.due - now);
        }
        d.reply.send(d.request, &d.call, &d.outcome, svc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_refusals_are_no_storm_and_many_are() {
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let pacer = Pacer::new(tx);
        assert!((0..STORM).all(|_| pacer.refusals.note() <= STORM));
        assert!(pacer.refusals.note() > STORM);
    }
}
