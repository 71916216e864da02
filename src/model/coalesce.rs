//! Concurrent cache misses of one kind share their queries: while a fetch is
//! in flight, later misses queue, and the next fetch asks for all of them at
//! once (one `= ANY($1)` in PostgreSQL, one `$in` in MongoDB instead of one
//! round trip each). The profile of the miss paths showed round trips and
//! thread switches, not query work, dominating; a shared query saves both.
//!
//! No thread of its own and no timer: the caller that finds a free fetch
//! slot runs the fetch on its own thread (the only path when traffic is
//! light: one caller, one fetch, no waiting). Callers that queue sleep until
//! their answer is filled in, or until they are handed the next batch to
//! run, so each queued caller is woken exactly once per batch it is in.
//!
//! A fetch that starts after a caller queued sees every write that finished
//! before the caller asked: a batch is taken from the queue before its
//! fetch begins.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::AppError;

/// What a fetch found, keyed; a key that is absent was not found.
pub type Found<K, V> = Result<HashMap<K, V>, AppError>;

/// The query of a batch: its keys, and the latest deadline among its callers.
pub type Fetch<'a, K, V> = &'a dyn Fn(&[K], Instant) -> Found<K, V>;

/// Token misses in one shared lookup at most, and lookups running at once
/// (`model::session::introspect`).
pub const SHARED_TOKENS: usize = 64;
pub const SHARED_TOKEN_FETCHES: usize = 2;
/// User ids in one shared fetch at most, and shared fetches running at
/// once (`model::user::get_many`).
pub const SHARED_FETCH_IDS: usize = 256;
pub const SHARED_FETCHES: usize = 2;

pub struct Coalescer<K, V> {
    queue: Mutex<Queue<K, V>>,
    /// Keys asked for in one fetch at most (a batch holds at least one caller).
    max_keys: usize,
    /// Fetches in flight at once (each holds a database connection).
    max_running: usize,
    /// Fetches run and callers answered: their ratio is the sharing.
    fetches: AtomicU64,
    callers: AtomicU64,
}

struct Queue<K, V> {
    waiting: VecDeque<Caller<K, V>>,
    running: usize,
}

struct Caller<K, V> {
    keys: Vec<K>,
    deadline: Instant,
    slot: Arc<Slot<K, V>>,
}

enum State<K, V> {
    Waiting,
    /// This caller runs the batch (its own keys are the first entry).
    Run(Vec<Caller<K, V>>),
    Done(Found<K, V>),
}

struct Slot<K, V> {
    state: Mutex<State<K, V>>,
    ready: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<K: Hash + Eq + Clone, V: Clone> Coalescer<K, V> {
    pub fn new(max_keys: usize, max_running: usize) -> Self {
        Coalescer {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                running: 0,
            }),
            max_keys: max_keys.max(1),
            max_running: max_running.max(1),
            fetches: AtomicU64::new(0),
            callers: AtomicU64::new(0),
        }
    }

    /// `(fetches run, callers answered)` since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.fetches.load(Ordering::Relaxed),
            self.callers.load(Ordering::Relaxed),
        )
    }

    /// The values of `keys` that exist. `fetch(keys, deadline)` runs the
    /// query for a batch (possibly other callers' keys too) before the
    /// latest deadline among them.
    pub fn get(&self, keys: Vec<K>, deadline: Instant, fetch: Fetch<'_, K, V>) -> Found<K, V> {
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Waiting),
            ready: Condvar::new(),
        });
        let batch = {
            let mut q = lock(&self.queue);
            q.waiting.push_back(Caller {
                keys,
                deadline,
                slot: slot.clone(),
            });
            if q.running < self.max_running {
                q.running += 1;
                Some(self.take(&mut q))
            } else {
                None
            }
        };
        if let Some(batch) = batch {
            self.run(batch, fetch);
        }
        let mut state = lock(&slot.state);
        loop {
            match std::mem::replace(&mut *state, State::Waiting) {
                State::Done(found) => return found,
                State::Run(batch) => {
                    drop(state);
                    self.run(batch, fetch);
                    state = lock(&slot.state);
                }
                State::Waiting => {
                    state = slot
                        .ready
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        }
    }

    /// The next batch from the front of the queue: callers in arrival order
    /// while their keys fit, at least one.
    fn take(&self, q: &mut Queue<K, V>) -> Vec<Caller<K, V>> {
        let mut batch = Vec::new();
        let mut keys = 0;
        while let Some(next) = q.waiting.front() {
            if !batch.is_empty() && keys + next.keys.len() > self.max_keys {
                break;
            }
            keys += next.keys.len();
            if let Some(caller) = q.waiting.pop_front() {
                batch.push(caller);
            }
        }
        batch
    }

    /// Runs one batch, answers its callers, and hands the next batch (if
    /// any caller is queued) to the first caller in it, keeping the fetch
    /// slot; or gives the slot back.
    fn run(&self, batch: Vec<Caller<K, V>>, fetch: Fetch<'_, K, V>) {
        let mut guard = Running {
            owner: self,
            batch: Some(batch),
        };
        let batch = guard.batch.as_deref().unwrap_or_default();
        let deadline = batch.iter().map(|c| c.deadline).max();
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.callers
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let found = match deadline {
            Some(deadline) => fetch(&union(batch), deadline),
            None => Ok(HashMap::new()),
        };
        guard.finish(found);
    }

    fn hand_on(&self) {
        let mut q = lock(&self.queue);
        if q.waiting.is_empty() {
            q.running -= 1;
            return;
        }
        let next = self.take(&mut q);
        drop(q);
        if let Some(first) = next.first() {
            let slot = first.slot.clone();
            *lock(&slot.state) = State::Run(next);
            slot.ready.notify_one();
        }
    }
}

/// Every key of a batch once.
fn union<K: Hash + Eq + Clone, V>(batch: &[Caller<K, V>]) -> Vec<K> {
    if let [one] = batch {
        return one.keys.clone();
    }
    let mut seen = HashSet::new();
    batch
        .iter()
        .flat_map(|c| c.keys.iter())
        .filter(|k| seen.insert(*k))
        .cloned()
        .collect()
}

/// A batch being run. If the fetch unwinds, the drop still answers every
/// caller (an internal error) and passes the slot on, so no caller waits
/// forever.
struct Running<'a, K: Hash + Eq + Clone, V: Clone> {
    owner: &'a Coalescer<K, V>,
    batch: Option<Vec<Caller<K, V>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Running<'_, K, V> {
    fn finish(&mut self, found: Found<K, V>) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        for caller in batch {
            let mine = match &found {
                Ok(all) => Ok(caller
                    .keys
                    .iter()
                    .filter_map(|k| all.get(k).map(|v| (k.clone(), v.clone())))
                    .collect()),
                Err(e) => Err(e.clone()),
            };
            *lock(&caller.slot.state) = State::Done(mine);
            caller.slot.ready.notify_one();
        }
        self.owner.hand_on();
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Running<'_, K, V> {
    fn drop(&mut self) {
        if self.batch.is_some() {
            self.finish(Err(AppError::Internal(
                "a shared fetch did not finish".into(),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn a_lone_caller_fetches_its_own_keys_on_its_own_thread() {
        let c: Coalescer<i64, i64> = Coalescer::new(100, 2);
        let me = std::thread::current().id();
        let found = c
            .get(vec![1, 2], soon(), &|keys, _| {
                assert_eq!(std::thread::current().id(), me);
                Ok(keys
                    .iter()
                    .filter(|k| **k != 2)
                    .map(|k| (*k, k * 10))
                    .collect())
            })
            .unwrap_or_default();
        assert_eq!(found, HashMap::from([(1, 10)]));
    }

    #[test]
    fn callers_that_queue_behind_a_fetch_share_the_next_one_and_get_their_own_keys() {
        let c: Arc<Coalescer<i64, i64>> = Arc::new(Coalescer::new(1000, 1));
        let fetches = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16i64)
            .map(|i| {
                let (c, fetches) = (c.clone(), fetches.clone());
                std::thread::spawn(move || {
                    let fetch = |keys: &[i64], _| {
                        // The first fetch lasts until the 15 other callers
                        // have queued behind it (not a fixed 50 ms that a
                        // slow thread start could outlast).
                        if fetches.fetch_add(1, Ordering::SeqCst) == 0 {
                            let until = Instant::now() + Duration::from_secs(30);
                            while lock(&c.queue).waiting.len() < 15 && Instant::now() < until {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                        Ok(keys.iter().map(|k| (*k, -k)).collect())
                    };
                    let found = c.get(vec![i, 100 + i], soon(), &fetch);
                    (i, found.unwrap_or_default())
                })
            })
            .collect();
        for t in threads {
            let (i, found) = t.join().unwrap_or_default();
            assert_eq!(found, HashMap::from([(i, -i), (100 + i, -100 - i)]));
        }
        // One fetch at a time: the first caller's, then one for the 15
        // that queued behind it (one by one would be 16).
        let n = fetches.load(Ordering::SeqCst);
        assert_eq!(n, 2, "{n} fetches for 16 callers");
    }

    #[test]
    fn an_error_reaches_every_caller_of_the_batch_and_the_next_batch_still_runs() {
        let c: Coalescer<i64, i64> = Coalescer::new(10, 1);
        let failed = c.get(vec![1], soon(), &|_, _| Err(AppError::Timeout));
        assert!(matches!(failed, Err(AppError::Timeout)));
        let ok = c.get(vec![1], soon(), &|k, _| {
            Ok(k.iter().map(|k| (*k, 1)).collect())
        });
        assert_eq!(ok.unwrap_or_default().len(), 1);
    }

    #[test]
    fn a_fetch_that_panics_answers_its_callers_and_frees_the_slot() {
        let c: Arc<Coalescer<i64, i64>> = Arc::new(Coalescer::new(10, 1));
        let c2 = c.clone();
        let joined = std::thread::spawn(move || {
            c2.get(vec![1], soon(), &|_, _| -> Found<i64, i64> {
                panic!("boom")
            })
        })
        .join();
        assert!(joined.is_err());
        let ok = c.get(vec![2], soon(), &|k, _| {
            Ok(k.iter().map(|k| (*k, 1)).collect())
        });
        assert_eq!(ok.unwrap_or_default().len(), 1);
    }

    #[test]
    fn a_batch_holds_at_most_max_keys_unless_one_caller_asks_for_more() {
        let c: Coalescer<i64, i64> = Coalescer::new(3, 1);
        let mut q = Queue {
            waiting: VecDeque::new(),
            running: 0,
        };
        for keys in [vec![1, 2], vec![3], vec![4, 5]] {
            q.waiting.push_back(Caller {
                keys,
                deadline: soon(),
                slot: Arc::new(Slot {
                    state: Mutex::new(State::Waiting),
                    ready: Condvar::new(),
                }),
            });
        }
        assert_eq!(c.take(&mut q).len(), 2);
        assert_eq!(c.take(&mut q).len(), 1);
        let mut big = Queue {
            waiting: VecDeque::new(),
            running: 0,
        };
        big.waiting.push_back(Caller {
            keys: vec![1, 2, 3, 4, 5],
            deadline: soon(),
            slot: Arc::new(Slot {
                state: Mutex::new(State::Waiting),
                ready: Condvar::new(),
            }),
        });
        assert_eq!(c.take(&mut big).len(), 1);
    }
}
