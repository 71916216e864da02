//! A plain stderr logger: one line per record, UTC time, level, message.
//! The level comes from `PROFITEER_LOG` (error, warn, info, debug; default
//! info). Callers never pass secrets to it: see `domain` for the types that
//! print `***`.
//!
//! Lines are written by a thread of their own, from a bounded queue: a
//! request thread (a poller thread routes requests and logs their access
//! lines) must never wait on stderr, which may be a pipe whose reader has
//! stalled. When the queue is full, lines are dropped and counted, and the
//! count is written once there is room. `flush` (called before the process
//! exits) waits, briefly, for what is queued.
//!
//! The access log, a line per request, goes through [`info_line`]: written
//! straight into the text that is queued, its time prefix reused within a
//! second, no format string interpreted (it was an eighth of what a
//! server spent on a ping). A thread that answers requests one after another
//! (a worker) gathers its access lines ([`batch_lines`]) and queues them
//! together: at 16 KiB, at the first line [`GATHER`] or more after the
//! first, and whenever the thread has nothing to do ([`flush_batch`]); a
//! line then costs no allocation and no queue operation of its own. Its other lines are queued at once, so a warning
//! may be written before access lines of that thread that preceded it.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{Datelike, Timelike};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Texts (lines, or a thread's gathered lines) waiting to be written at most.
const QUEUED_LINES: usize = 16_384;
/// A thread's gathered lines are queued once they are this long.
const BATCH_BYTES: usize = 16 * 1024;
/// How long `flush` waits for the queue to be written.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);
/// After a write, the writer lets lines gather this long: a thread that
/// logs then finds it asleep rather than waiting in the queue, and so never
/// has to wake it (one wake-up per line cost a tenth of a busy server's CPU).
const GATHER: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Counts {
    /// Lines handed to the writer (queued).
    queued: AtomicU64,
    /// Lines the writer has written (or given up on).
    written: AtomicU64,
    /// Lines dropped because the queue was full.
    dropped: AtomicU64,
}

struct StderrLogger {
    level: LevelFilter,
    queue: Queue,
}

/// Whole lines, newline-terminated, and how many.
struct Lines {
    text: String,
    n: u64,
}

/// Where lines go: the writer thread's queue.
#[derive(Clone)]
struct Queue {
    lines: Sender<Lines>,
    counts: Arc<Counts>,
}

impl Queue {
    fn push(&self, lines: Lines) {
        let n = lines.n;
        match self.lines.try_send(lines) {
            Ok(()) => {
                self.counts.queued.fetch_add(n, Ordering::AcqRel);
            }
            Err(TrySendError::Full(_)) => {
                self.counts.dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(lines)) => {
                let _ = std::io::stderr().lock().write_all(lines.text.as_bytes());
            }
        }
    }
}

/// A thread's access lines not queued yet, and when the first was stamped.
struct Batch {
    lines: Lines,
    first: Duration,
}

thread_local! {
    /// `Some` on a thread that gathers its access lines ([`batch_lines`]).
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// From now on this thread's access lines ([`info_line`]) are gathered and
/// queued together; the thread must call [`flush_batch`] whenever it is
/// about to wait, and before it ends.
pub fn batch_lines() {
    BATCH.with(|b| {
        b.borrow_mut().get_or_insert_with(|| Batch {
            lines: Lines {
                text: String::new(),
                n: 0,
            },
            first: Duration::ZERO,
        });
    });
}

/// Queues this thread's gathered lines, if any.
pub fn flush_batch() {
    let Some(queue) = QUEUE.get() else {
        return;
    };
    BATCH.with(|b| {
        if let Some(batch) = b.borrow_mut().as_mut() {
            queue_batch(queue, batch);
        }
    });
}

fn queue_batch(queue: &Queue, batch: &mut Batch) {
    if batch.lines.n == 0 {
        return;
    }
    // The next batch is likely about as long as this one.
    let room = (2 * batch.lines.text.len()).clamp(256, BATCH_BYTES + 256);
    let text = std::mem::replace(&mut batch.lines.text, String::with_capacity(room));
    queue.push(Lines {
        text,
        n: std::mem::take(&mut batch.lines.n),
    });
}

/// The logger's queue, for [`info_line`]; unset until [`init`].
static QUEUE: OnceLock<Queue> = OnceLock::new();

thread_local! {
    /// The second a thread last stamped, and its text up to the seconds.
    static STAMP: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Now, since the Unix epoch.
fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Now as `2026-12-06T20:35:34.524Z`.
fn stamp_now(out: &mut String) {
    stamp(out, now());
}

/// `since_epoch` as `2026-12-06T20:35:34.524Z`, without parsing a format
/// string per line: the part up to the seconds is worked out once per
/// second per thread, the milliseconds appended.
fn stamp(out: &mut String, since_epoch: Duration) {
    let second = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    STAMP.with(|cached| {
        let mut cached = cached.borrow_mut();
        let (seen, text) = &mut *cached;
        if *seen != second {
            text.clear();
            let at = chrono::DateTime::from_timestamp(second, 0).unwrap_or_default();
            use std::fmt::Write as _;
            let _ = write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                at.year(),
                at.month(),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
            );
            *seen = second;
        }
        out.push_str(text);
    });
    out.push('.');
    let ms = since_epoch.subsec_millis().min(999);
    for digit in [ms / 100, ms / 10 % 10, ms % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
    out.push('Z');
}

/// An info line whose text `write` appends (no newline), as `log::info!`
/// would print it from this crate, at a fraction of the cost: for lines
/// written on every request.
pub fn info_line(write: impl FnOnce(&mut String)) {
    if log::max_level() < LevelFilter::Info {
        return;
    }
    let Some(queue) = QUEUE.get() else {
        return;
    };
    let at = now();
    let write = |text: &mut String| {
        stamp(text, at);
        text.push_str(" INFO  ");
        write(text);
        text.push('\n');
    };
    BATCH.with(|b| match b.borrow_mut().as_mut() {
        Some(batch) => gather(queue, batch, at, write),
        None => {
            let mut text = String::with_capacity(128);
            write(&mut text);
            queue.push(Lines { text, n: 1 });
        }
    });
}

/// Adds a line stamped `at` to a thread's batch; queues the batch once it is
/// [`BATCH_BYTES`] long or its first line [`GATHER`] old.
fn gather(queue: &Queue, batch: &mut Batch, at: Duration, write: impl FnOnce(&mut String)) {
    write(&mut batch.lines.text);
    if batch.lines.n == 0 {
        batch.first = at;
    }
    batch.lines.n += 1;
    if batch.lines.text.len() >= BATCH_BYTES || at.saturating_sub(batch.first) >= GATHER {
        queue_batch(queue, batch);
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
            && (metadata.target().starts_with("profiteer") || metadata.level() <= Level::Warn)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut text = String::with_capacity(128);
        stamp_now(&mut text);
        {
            use std::fmt::Write as _;
            let _ = writeln!(text, " {:<5} {}", record.level(), record.args());
        }
        self.queue.push(Lines { text, n: 1 });
    }

    fn flush(&self) {
        let until = Instant::now() + FLUSH_WITHIN;
        let counts = &self.queue.counts;
        let queued = counts.queued.load(Ordering::Acquire);
        while counts.written.load(Ordering::Acquire) < queued && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = std::io::stderr().flush();
    }
}

/// Writes queued lines, as many as are waiting in one write, at most one
/// write per [`GATHER`].
fn write_lines(lines: Receiver<Lines>, counts: Arc<Counts>) {
    let mut batch = String::new();
    while let Ok(first) = lines.recv() {
        batch.clear();
        batch.push_str(&first.text);
        let mut n = first.n;
        while batch.len() < 64 * 1024 {
            match lines.try_recv() {
                Ok(more) => {
                    batch.push_str(&more.text);
                    n += more.n;
                }
                Err(_) => break,
            }
        }
        let dropped = counts.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            stamp_now(&mut batch);
            batch.push_str(&format!(
                " WARN  {dropped} log lines dropped: stderr was not written fast enough\n"
            ));
        }
        let _ = std::io::stderr().lock().write_all(batch.as_bytes());
        counts.written.fetch_add(n, Ordering::AcqRel);
        std::thread::sleep(GATHER);
    }
}

pub fn init() {
    let level = match std::env::var("PROFITEER_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("warn") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Debug,
        Ok("off") => LevelFilter::Off,
        _ => LevelFilter::Info,
    };
    let (tx, rx) = bounded(QUEUED_LINES);
    let counts = Arc::new(Counts::default());
    let writer = {
        let counts = counts.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(rx, counts))
    };
    // Without its thread the sender is disconnected at once, and every
    // line is written directly (see `log`).
    drop(writer);
    let queue = Queue { lines: tx, counts };
    let logger = StderrLogger {
        level,
        queue: queue.clone(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        let _ = QUEUE.set(queue);
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use std::time::Duration;

    #[test]
    fn timestamps_read_as_rfc3339_utc_with_milliseconds() {
        let at = |ms: i64| {
            let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single();
            let epoch_ms = t.map_or(0, |t| t.timestamp_millis()) + ms;
            let mut s = String::new();
            super::stamp(&mut s, Duration::from_millis(epoch_ms as u64));
            s
        };
        assert_eq!(at(67), "2026-01-02T03:04:05.067Z");
        // The same second again (the cached part), then the next ones.
        assert_eq!(at(999), "2026-01-02T03:04:05.999Z");
        assert_eq!(at(1_005), "2026-01-02T03:04:06.005Z");
        assert_eq!(at(86_400_000), "2026-01-03T03:04:05.000Z");
    }

    /// A worker's access lines: gathered, queued together at 16 KiB or once
    /// a line comes 5 ms after the first, the rest by `queue_batch` (what
    /// `flush_batch` does when the worker has nothing to do); a full queue
    /// counts every line of a batch it refuses as dropped.
    #[test]
    fn gathered_lines_are_queued_together_whole_and_counted() {
        use super::{gather, queue_batch, Batch, Counts, Lines, Queue, BATCH_BYTES, GATHER};
        let (tx, rx) = crossbeam_channel::bounded(1);
        let queue = Queue {
            lines: tx,
            counts: std::sync::Arc::new(Counts::default()),
        };
        let mut batch = Batch {
            lines: Lines {
                text: String::new(),
                n: 0,
            },
            first: Duration::ZERO,
        };
        let t0 = Duration::from_secs(1_000_000);
        let line = |i: usize| move |text: &mut String| text.push_str(&format!("line {i}\n"));
        // Within GATHER of the first and under BATCH_BYTES: held.
        gather(&queue, &mut batch, t0, line(0));
        for i in 1..3 {
            gather(&queue, &mut batch, t0 + GATHER / 2, line(i));
        }
        assert!(rx.try_recv().is_err(), "queued before its time");
        // A line GATHER after the first: the four go out together.
        gather(&queue, &mut batch, t0 + GATHER, line(3));
        let sent = rx.try_recv().expect("a batch GATHER old was held");
        assert_eq!(sent.n, 4);
        assert_eq!(sent.text, "line 0\nline 1\nline 2\nline 3\n");
        // Lines of a quick thread: queued once they reach BATCH_BYTES.
        let mut n = 0;
        while rx.is_empty() {
            gather(&queue, &mut batch, t0, line(n));
            n += 1;
            assert!(n < BATCH_BYTES, "never queued");
        }
        let sent = rx.try_recv().unwrap();
        assert_eq!(sent.n as usize, n);
        assert!(sent.text.len() >= BATCH_BYTES && sent.text.ends_with('\n'));
        assert_eq!(batch.lines.n, 0);
        // Nothing gathered: nothing queued.
        queue_batch(&queue, &mut batch);
        assert!(rx.is_empty());
        // The queue full: the batch's lines are counted as dropped.
        gather(&queue, &mut batch, t0, line(0));
        queue_batch(&queue, &mut batch);
        gather(&queue, &mut batch, t0, line(1));
        gather(&queue, &mut batch, t0, line(2));
        queue_batch(&queue, &mut batch);
        use std::sync::atomic::Ordering;
        assert_eq!(queue.counts.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(rx.try_recv().unwrap().text, "line 0\n");
        let queued = queue.counts.queued.load(Ordering::Relaxed) as usize;
        assert_eq!(queued, 4 + n + 1);
    }

    #[test]
    fn a_reused_second_prefix_reads_as_a_fresh_timestamp() {
        let mut fresh = String::new();
        let before = chrono::Utc::now();
        super::stamp_now(&mut fresh); // formats the second
        let mut reused = String::new();
        super::stamp_now(&mut reused); // most likely reuses it
        let after = chrono::Utc::now();
        for s in [&fresh, &reused] {
            let t = chrono::DateTime::parse_from_rfc3339(s).expect(s);
            assert!(
                t >= before - chrono::Duration::milliseconds(1) && t <= after,
                "{s}"
            );
            assert_eq!(s.len(), "2026-01-02T03:04:05.067Z".len(), "{s}");
        }
    }
}
