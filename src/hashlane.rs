//! The password-hashing lane: bcrypt is slow on purpose, so it runs on its
//! own small pool (`[AUTH] HASH_WORKERS`) with room for a bounded number of
//! jobs, queued or running. A caller reserves a place ([`HashLane::reserve`])
//! before doing any other work for a login, so a login flood is refused for
//! the price of parsing it, and the request workers stay free for token
//! checks. The hashing threads also run at nice +10, and while token checks
//! are heavy only one of them hashes at a time (see [`HashLane::start`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::error::AppError;
use crate::window::WindowCounter;

type Job = Box<dyn FnOnce() + Send>;

/// Token-check calls over the last ~0.2 s above which the lane hashes one
/// password at a time (about 500 calls a second).
const BUSY: u64 = 100;

pub struct HashLane {
    tx: Sender<Job>,
    capacity: usize,
    in_lane: Arc<AtomicUsize>,
    pub shed: AtomicU64,
    /// Jobs of calls that ran (a job reached after its deadline does not).
    pub ran: Arc<AtomicU64>,
    /// What a job took lately, queue wait excluded (nanoseconds, a moving
    /// average; 0 until one ran): a job that would end past its caller's
    /// deadline is not started.
    typical: Arc<AtomicU64>,
}

/// A place in the lane, held from [`HashLane::reserve`] until the job run
/// with it has finished (or, unused, until it drops).
pub struct Ticket<'a> {
    lane: &'a HashLane,
    slot: Slot,
}

/// A hashing thread's permission to run a job now (see [`HashLane::start`]).
struct Turn<'a>(&'a AtomicUsize);

impl<'a> Turn<'a> {
    fn take(running: &'a AtomicUsize, token_calls: &WindowCounter) -> Turn<'a> {
        loop {
            let now = running.load(Ordering::Acquire);
            if now >= 1 && token_calls.recent() > BUSY {
                std::thread::sleep(std::time::Duration::from_millis(2));
                continue;
            }
            if running
                .compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Turn(running);
            }
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Gives its place back when dropped: inside the job once it has run.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// nice +10: under contention a hashing thread weighs about a tenth of a
/// request thread, so token checks get the CPU first.
fn lower_priority() {
    use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
    let set = ThreadPriorityValue::try_from(25u8)
        .map_err(|e| format!("{e:?}"))
        .and_then(|v| {
            set_current_thread_priority(ThreadPriority::Crossplatform(v))
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(e) = set {
        log::warn!("hashing thread keeps normal priority: {e}");
    }
}

/// A thread's time on a CPU, and runnable but waiting for one.
#[derive(Clone, Copy)]
struct CpuTimes {
    ran: Duration,
    waited: Duration,
}

/// This thread's [`CpuTimes`] so far, from `/proc/thread-self/schedstat`
/// (nanoseconds); `None` where the kernel does not keep them.
fn cpu_times() -> Option<CpuTimes> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some(CpuTimes {
        ran: Duration::from_nanos(fields.next()??),
        waited: Duration::from_nanos(fields.next()??),
    })
}

/// The longest rest after one hash.
const MAX_REST: Duration = Duration::from_secs(1);

/// How long a hashing thread rests after a job that ran `ran` on a CPU and
/// waited `waited` for one, `took` in all. Scheduling priority alone does
/// not keep bcrypt out of the way: a hash that always wants a CPU costs
/// the token checks sharing it about a quarter of their rate here even
/// under SCHED_IDLE (`wiki/performance.md`). So a hash that waited for the
/// CPU longer than it ran (the cores are wanted by other work) is followed
/// by a rest as long as it took: under contention a hashing thread wants
/// the CPU at most half the time; without it, no rest at all.
fn rest_after(ran: Duration, waited: Duration, took: Duration) -> Duration {
    if ran >= Duration::from_millis(1) && waited > ran {
        took.min(MAX_REST)
    } else {
        Duration::ZERO
    }
}

impl HashLane {
    /// `workers` threads; at most `workers + queue_depth` jobs at once.
    /// While `token_calls` counts heavy token-check traffic, only one hash
    /// runs at a time, leaving the other cores to those checks (scheduling
    /// priority alone is not enough: every preemption costs them latency).
    pub fn start(workers: usize, queue_depth: usize, token_calls: Arc<WindowCounter>) -> HashLane {
        let capacity = workers + queue_depth;
        let (tx, rx) = bounded::<Job>(capacity);
        let running = Arc::new(AtomicUsize::new(0));
        let mut started = 0;
        for i in 0..workers {
            let rx: Receiver<Job> = rx.clone();
            let (running, token_calls) = (running.clone(), token_calls.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    for job in rx {
                        let _turn = Turn::take(&running, &token_calls);
                        let (before, started) = (cpu_times(), Instant::now());
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            log::error!("a password-hashing job panicked");
                        }
                        if let (Some(before), Some(after)) = (before, cpu_times()) {
                            std::thread::sleep(rest_after(
                                after.ran.saturating_sub(before.ran),
                                after.waited.saturating_sub(before.waited),
                                started.elapsed(),
                            ));
                        }
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => log::error!("cannot start a hashing thread: {e}"),
            }
        }
        if started == 0 {
            log::error!("no hashing thread could start: every password check will time out");
        }
        HashLane {
            tx,
            capacity,
            in_lane: Arc::new(AtomicUsize::new(0)),
            shed: AtomicU64::new(0),
            ran: Arc::new(AtomicU64::new(0)),
            typical: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Jobs queued or running.
    pub fn in_lane(&self) -> usize {
        self.in_lane.load(Ordering::Acquire)
    }

    /// A place in the lane, or `Overloaded` at once when it is full.
    pub fn reserve(&self) -> Result<Ticket<'_>, AppError> {
        let taken = self
            .in_lane
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            self.shed.fetch_add(1, Ordering::Relaxed);
            return Err(AppError::Overloaded);
        }
        Ok(Ticket {
            lane: self,
            slot: Slot(self.in_lane.clone()),
        })
    }

    /// Queues background work (a re-hash after login); `false` if the lane
    /// is full, in which case the work is simply skipped this time.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) -> bool {
        let Ok(ticket) = self.reserve() else {
            return false;
        };
        let slot = ticket.slot;
        self.tx
            .try_send(Box::new(move || {
                let _slot = slot;
                f();
            }))
            .is_ok()
    }
}

/// Moves the average job time `typical` an eighth of the way to `took`.
fn note_time(typical: &AtomicU64, took: Duration) {
    let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    let _ = typical.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(if old == 0 {
            took
        } else {
            old - old / 8 + took / 8
        })
    });
}

impl Ticket<'_> {
    /// Runs `f` on the lane and waits for it until `deadline`. A job still
    /// queued when it could no longer end by its deadline (going by what
    /// jobs took lately) is skipped, not run late.
    pub fn run<T: Send + 'static>(
        self,
        deadline: Instant,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let (reply_tx, reply_rx) = bounded(1);
        let slot = self.slot;
        let (ran, typical) = (self.lane.ran.clone(), self.lane.typical.clone());
        let job: Job = Box::new(move || {
            // Its caller gives up (-32001) before it could end: the hash is
            // not started, and its CPU time goes to a job that can finish.
            let started = Instant::now();
            let expected = Duration::from_nanos(typical.load(Ordering::Relaxed));
            if started + expected < deadline {
                ran.fetch_add(1, Ordering::Relaxed);
                let value = f();
                note_time(&typical, started.elapsed());
                // The place is free before the caller wakes up with the value.
                drop(slot);
                let _ = reply_tx.send(value);
            }
        });
        // The reservation guarantees room; a failure means the lane stopped.
        if self.lane.tx.try_send(job).is_err() {
            return Err(AppError::Internal(
                "hashing lane refused a reserved job".into(),
            ));
        }
        match reply_rx.recv_deadline(deadline) {
            Ok(value) => Ok(value),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                Err(AppError::Timeout)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far longer than any scheduling hiccup: a job parked on a gate holds
    /// its place (and its worker) until the test opens the gate, and gives
    /// up by itself after this so a failing test still ends.
    const HOLD: Duration = Duration::from_secs(30);

    /// Runs, from another thread, a job that signals once it runs and then
    /// holds the lane's worker until the returned gate is opened (a send or
    /// a drop). No sleep guesses how long the other thread takes to start.
    fn occupy(lane: &Arc<HashLane>) -> (Sender<()>, std::thread::JoinHandle<Result<(), AppError>>) {
        let (running_tx, running_rx) = bounded::<()>(1);
        let (open, gate) = bounded::<()>(1);
        let busy = {
            let lane = lane.clone();
            std::thread::spawn(move || {
                lane.reserve()?.run(Instant::now() + HOLD * 2, move || {
                    let _ = running_tx.send(());
                    let _ = gate.recv_timeout(HOLD);
                })
            })
        };
        assert!(
            running_rx.recv_timeout(HOLD).is_ok(),
            "the busy job never ran"
        );
        (open, busy)
    }

    #[test]
    fn a_full_lane_refuses_reservations_at_once_and_frees_them_after_use() {
        let lane = Arc::new(HashLane::start(1, 0, Default::default()));
        let (open, busy) = occupy(&lane);
        // The only place is held until `open`, that is for HOLD: a reserve
        // that waited for a place instead of refusing would take that long
        // (and then succeed). Seconds of slack, not milliseconds, so a
        // descheduled test thread does not count as waiting.
        let asked = Instant::now();
        let refused = lane.reserve();
        let waited = asked.elapsed();
        assert!(matches!(refused, Err(AppError::Overloaded)));
        assert!(
            waited < Duration::from_secs(5),
            "reserve waited {waited:?} for a place"
        );
        drop(refused);
        open.send(()).unwrap();
        assert!(busy.join().unwrap().is_ok());
        assert_eq!(lane.in_lane(), 0);
        assert!(lane.reserve().is_ok());
    }

    #[test]
    fn a_hash_rests_as_long_as_it_took_only_when_it_waited_for_the_cpu_more_than_it_ran() {
        let ms = Duration::from_millis;
        // Uncontended: no rest, however long the hash.
        assert_eq!(rest_after(ms(240), ms(10), ms(250)), Duration::ZERO);
        assert_eq!(rest_after(ms(240), ms(240), ms(480)), Duration::ZERO);
        // Contended: a rest as long as the hash took, at most MAX_REST.
        assert_eq!(rest_after(ms(240), ms(500), ms(740)), ms(740));
        assert_eq!(rest_after(ms(240), ms(2000), ms(2240)), MAX_REST);
        // A job that hardly ran (one skipped past its deadline): no rest.
        assert_eq!(rest_after(Duration::ZERO, ms(5), ms(5)), Duration::ZERO);
    }

    #[test]
    fn this_threads_cpu_times_count_what_it_ran() {
        let Some(before) = cpu_times() else {
            return; // a kernel without schedstat: the lane never rests
        };
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = cpu_times().unwrap();
        assert!(after.ran > before.ran, "{x}");
        assert!(after.waited >= before.waited);
    }

    #[test]
    fn the_typical_job_time_starts_at_the_first_and_moves_an_eighth_each_time() {
        let typical = AtomicU64::new(0);
        note_time(&typical, Duration::from_millis(800));
        assert_eq!(typical.load(Ordering::Relaxed), 800_000_000);
        note_time(&typical, Duration::ZERO);
        assert_eq!(typical.load(Ordering::Relaxed), 700_000_000);
    }

    #[test]
    fn a_job_that_could_not_end_by_its_deadline_is_never_started() {
        use std::sync::atomic::AtomicBool;
        let lane = HashLane::start(1, 4, Default::default());
        // One job of at least 300 ms makes that the typical time.
        let far = Instant::now() + HOLD;
        let slow = lane.reserve().unwrap().run(far, || {
            std::thread::sleep(Duration::from_millis(300));
        });
        assert!(slow.is_ok());
        // 150 ms left cannot fit a 300 ms job: skipped at once, not started.
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let near = Instant::now() + Duration::from_millis(150);
        let r = lane.reserve().unwrap().run(near, move || {
            flag.store(true, Ordering::SeqCst);
        });
        assert!(matches!(r, Err(AppError::Timeout)));
        assert!(!started.load(Ordering::SeqCst));
    }

    #[test]
    fn an_unused_reservation_gives_its_place_back() {
        let lane = HashLane::start(1, 0, Default::default());
        drop(lane.reserve().unwrap());
        assert_eq!(lane.in_lane(), 0);
    }

    #[test]
    fn a_job_past_its_deadline_times_out_and_is_skipped() {
        let lane = HashLane::start(1, 4, Default::default());
        // The job cannot finish before `run` returns (the gate opens only
        // after), so the only passing answer is the timeout at the deadline;
        // a `run` that waited for the job would get its value after HOLD.
        let (open, gate) = bounded::<()>(1);
        let deadline = Instant::now() + Duration::from_millis(50);
        let r = lane.reserve().unwrap().run(deadline, move || {
            let _ = gate.recv_timeout(HOLD);
        });
        assert!(matches!(r, Err(AppError::Timeout)));
        drop(open);
    }

    #[test]
    fn a_job_whose_deadline_passed_in_the_queue_is_never_started() {
        use std::sync::atomic::AtomicBool;
        let lane = Arc::new(HashLane::start(1, 4, Default::default()));
        // The only worker is held until `run` below has returned, so the
        // short job is still queued when its deadline passes.
        let (open, busy) = occupy(&lane);
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let short = Instant::now() + Duration::from_millis(50);
        let r = lane.reserve().unwrap().run(short, move || {
            flag.store(true, Ordering::SeqCst);
        });
        assert!(matches!(r, Err(AppError::Timeout)));
        open.send(()).unwrap();
        assert!(busy.join().unwrap().is_ok());
        // The lane is idle again, so the skipped job has been taken off it.
        let until = Instant::now() + HOLD;
        while lane.in_lane() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(lane.in_lane(), 0, "the skipped job kept its place");
        assert!(!started.load(Ordering::SeqCst));
    }
}
