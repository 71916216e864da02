//! Login events go to MongoDB off the request's critical path: the login
//! handler hands the event to a bounded queue and returns; one writer thread
//! inserts them in batches. Nothing is lost silently: a full queue or a failed
//! insert is logged and counted (`/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};

use crate::store::mongo::{LoginEvent, Mongo};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;

#[derive(Default)]
pub struct EventStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

pub struct EventWriter {
    tx: Mutex<Option<Sender<LoginEvent>>>,
    pub stats: Arc<EventStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl EventWriter {
    pub fn start(mongo: Arc<Mongo>) -> EventWriter {
        let (tx, rx) = bounded::<LoginEvent>(QUEUE);
        let stats = Arc::new(EventStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("login-events".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(e) => batch.push(e),
                            Err(_) => break,
                        }
                    }
                    let n = batch.len() as u64;
                    match mongo.insert_events(&batch) {
                        Ok(()) => thread_stats.written.fetch_add(n, Ordering::Relaxed),
                        Err(e) => {
                            log::error!("{n} login events not written to mongo: {e}");
                            thread_stats.failed.fetch_add(n, Ordering::Relaxed)
                        }
                    };
                }
            })
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
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if self
                    .stats
                    .dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    log::error!("login event queue full: events are being dropped");
                }
            }
        }
    }

    /// Writes what is queued, then stops.
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
