//! The password-hashing lane: bcrypt is slow on purpose, so it runs on its
//! own small pool (`[AUTH] HASH_WORKERS`) behind a short bounded queue. A
//! login flood fills this lane and is shed with -32002 while the request
//! workers stay free for token checks.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::error::AppError;

type Job = Box<dyn FnOnce() + Send>;

pub struct HashLane {
    tx: Sender<Job>,
    pub shed: AtomicU64,
}

impl HashLane {
    pub fn start(workers: usize, queue_depth: usize) -> HashLane {
        let (tx, rx) = bounded::<Job>(queue_depth);
        let started: Vec<JoinHandle<()>> = (0..workers)
            .map(|i| {
                let rx: Receiver<Job> = rx.clone();
                std::thread::Builder::new()
                    .name(format!("hash-{i}"))
                    .spawn(move || {
                        for job in rx {
                            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                                log::error!("a password-hashing job panicked");
                            }
                        }
                    })
            })
            .filter_map(|spawned| match spawned {
                Ok(handle) => Some(handle),
                Err(e) => {
                    log::error!("cannot start a hashing thread: {e}");
                    None
                }
            })
            .collect();
        if started.is_empty() {
            log::error!("no hashing thread could start: every password check will time out");
        }
        HashLane {
            tx,
            shed: AtomicU64::new(0),
        }
    }

    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Runs `f` on the lane and waits for it until `deadline`. A full lane
    /// answers `Overloaded` at once; a job still queued at its deadline is
    /// skipped, not run late.
    pub fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let (reply_tx, reply_rx) = bounded(1);
        let job: Job = Box::new(move || {
            if Instant::now() < deadline {
                let _ = reply_tx.send(f());
            }
        });
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                return Err(AppError::Overloaded);
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(AppError::Internal("hashing lane stopped".into()))
            }
        }
        match reply_rx.recv_deadline(deadline) {
            Ok(value) => Ok(value),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                Err(AppError::Timeout)
            }
        }
    }

    /// Queues background work (a re-hash after login); `false` if the lane
    /// is full, in which case the work is simply skipped this time.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) -> bool {
        self.tx.try_send(Box::new(f)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_lane_sheds_at_once() {
        let lane = std::sync::Arc::new(HashLane::start(1, 0));
        let deadline = Instant::now() + Duration::from_secs(5);
        let busy = {
            let lane = lane.clone();
            std::thread::spawn(move || {
                lane.run(deadline, || std::thread::sleep(Duration::from_millis(300)))
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        assert!(matches!(
            lane.run(deadline, || ()),
            Err(AppError::Overloaded)
        ));
        assert!(started.elapsed() < Duration::from_millis(250));
        assert!(busy.join().unwrap().is_ok());
    }

    #[test]
    fn a_job_past_its_deadline_times_out() {
        let lane = HashLane::start(1, 4);
        let deadline = Instant::now() + Duration::from_millis(50);
        let r = lane.run(deadline, || std::thread::sleep(Duration::from_millis(200)));
        assert!(matches!(r, Err(AppError::Timeout)));
    }
}
