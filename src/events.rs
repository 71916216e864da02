//! Login events go to MongoDB off the request's critical path: the login
//! handler hands the event to a bounded queue and returns; one writer thread
//! inserts them in batches. While MongoDB is down or stalled, events wait
//! in a bounded retry buffer (the oldest dropped first when it is full) and
//! are written once it answers again; each keeps the `_id` it got when
//! first taken, so a retry after a lost reply writes nothing twice. Nothing
//! is lost silently: a full queue or buffer is logged and counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use mongodb::bson::oid::ObjectId;

use crate::store::mongo::{LoginEvent, Mongo};

const QUEUE: usize = 10_000;
/// Events kept for a retry while MongoDB does not take them.
const RETRY_BUFFER: usize = 50_000;
const BATCH: usize = 500;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct EventStats {
    pub written: AtomicU64,
    /// Never written: the queue or the retry buffer was full.
    pub dropped: AtomicU64,
    /// Insert attempts that failed (their events are retried).
    pub failed: AtomicU64,
}

pub struct EventWriter {
    tx: Mutex<Option<Sender<LoginEvent>>>,
    pub stats: Arc<EventStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn note_dropped(stats: &EventStats, n: u64, why: &str) {
    let before = stats.dropped.fetch_add(n, Ordering::Relaxed);
    if before / 1000 != (before + n) / 1000 || before == 0 {
        log::error!("login events dropped ({why}): {} so far", before + n);
    }
}

/// The writer thread: until the queue is closed and what it held is written
/// (or, with MongoDB down at shutdown, given up after one more try).
fn write_loop(mongo: &Mongo, rx: &Receiver<LoginEvent>, stats: &EventStats) {
    let mut pending: VecDeque<(ObjectId, LoginEvent)> = VecDeque::new();
    let mut backoff = FIRST_BACKOFF;
    let mut retry_at: Option<Instant> = None;
    let mut open = true;
    while open || !pending.is_empty() {
        let next = if !open {
            None
        } else if pending.is_empty() {
            rx.recv().ok()
        } else {
            let wait = retry_at.map_or(Duration::ZERO, |t| {
                t.saturating_duration_since(Instant::now())
            });
            match rx.recv_timeout(wait) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            }
        };
        match next {
            Some(e) => pending.push_back((ObjectId::new(), e)),
            None if pending.is_empty() => open = false,
            None => {}
        }
        while let Ok(e) = rx.try_recv() {
            pending.push_back((ObjectId::new(), e));
            if pending.len() >= BATCH && retry_at.is_none() {
                break;
            }
        }
        if pending.len() > RETRY_BUFFER {
            let over = pending.len() - RETRY_BUFFER;
            pending.drain(..over);
            note_dropped(stats, over as u64, "retry buffer full");
        }
        if retry_at.is_some_and(|t| Instant::now() < t) && open {
            continue;
        }
        let n = pending.len().min(BATCH);
        if n == 0 {
            continue;
        }
        let batch: Vec<(ObjectId, LoginEvent)> = pending.iter().take(n).cloned().collect();
        match mongo.insert_events(&batch) {
            Ok(()) => {
                pending.drain(..n);
                stats.written.fetch_add(n as u64, Ordering::Relaxed);
                if retry_at.take().is_some() {
                    log::info!("login events are written again");
                }
                backoff = FIRST_BACKOFF;
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                if retry_at.is_none() {
                    log::warn!("login events not written, kept for a retry: {e}");
                }
                if !open {
                    note_dropped(stats, pending.len() as u64, "shutting down, mongo down");
                    return;
                }
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

impl EventWriter {
    pub fn start(mongo: Arc<Mongo>) -> EventWriter {
        let (tx, rx) = bounded::<LoginEvent>(QUEUE);
        let stats = Arc::new(EventStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("login-events".into())
            .spawn(move || write_loop(&mongo, &rx, &thread_stats))
            .map_err(|e| log::error!("cannot start the login-event writer: {e}"))
            .ok();
        EventWriter {
            tx: Mutex::new(Some(tx)),
            stats,
            thread: Mutex::new(thread),
        }
    }

    pub fn record(&self, event: LoginEvent) {
        let tx = self.tx.lock().ok().and_then(|t| t.clone());
        let sent = match tx {
            Some(tx) => tx.try_send(event),
            None => Err(TrySendError::Disconnected(event)),
        };
        if sent.is_err() {
            note_dropped(&self.stats, 1, "queue full");
        }
    }

    /// Writes what is queued (one more try if MongoDB is down), then stops.
    pub fn shutdown(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            *tx = None;
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}
