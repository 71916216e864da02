//! A plain stderr logger: one line per record, UTC time, level, message.
//! The level comes from `PROFITEER_LOG` (error, warn, info, debug; default
//! info). Callers never pass secrets to it: see `domain` for the types that
//! print `***`.
//!
//! Lines are written by a thread of their own, from a bounded buffer: a
//! request thread (a poller thread routes requests and logs their access
//! lines) must never wait on stderr, which may be a pipe whose reader has
//! stalled. Lines that would take the buffer past [`PENDING_BYTES`] are
//! dropped and counted, and the count is written once there is room. `flush`
//! (called before the process exits) waits, briefly, for what is buffered.
//!
//! The access log, a line per request, goes through [`info_line`]: written
//! straight into the text that is buffered, its time prefix reused within a
//! second, no format string interpreted (it was an eighth of what a
//! server spent on a ping). A thread that answers requests one after another
//! (a worker) gathers its access lines ([`batch_lines`]) in a buffer of its
//! own and adds them to the writer's together: at 16 KiB, at the first line
//! [`GATHER`] or more after the first, and whenever the thread has nothing
//! to do ([`flush_batch`]). A line then costs no allocation and no lock of
//! its own. That thread's other lines go at once, so a warning may be
//! written before access lines of that thread that preceded it.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{Datelike, Timelike};
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Text waiting to be written at most; lines past it are dropped (counted).
const PENDING_BYTES: usize = 4 << 20;
/// A thread's gathered lines are handed on once they are this long.
const BATCH_BYTES: usize = 16 * 1024;
/// How long `flush` waits for the buffer to be written.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);
/// After a write, the writer lets lines gather this long: a thread that
/// logs then finds it asleep rather than waiting, and so never has to wake
/// it (one wake-up per line cost a tenth of a busy server's CPU).
const GATHER: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Counts {
    /// Lines handed to the writer (buffered).
    queued: AtomicU64,
    /// Lines the writer has written (or given up on).
    written: AtomicU64,
    /// Lines dropped because the buffer was full.
    dropped: AtomicU64,
}

/// The text waiting for the writer.
#[derive(Default)]
struct Pending {
    text: String,
    /// Lines in `text`.
    lines: u64,
    /// The writer waits for lines (it must be woken).
    idle: bool,
    /// No writer thread: lines are written where they are made.
    direct: bool,
}

/// Where lines go: the writer thread's buffer. The writer swaps it for the
/// one it has written, so in a steady state nothing is allocated.
#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    counts: Counts,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Queue {
    /// Adds `n` whole lines, or drops (and counts) them all.
    fn push(&self, text: &str, n: u64) {
        let mut p = locked(&self.pending);
        if p.direct {
            drop(p);
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
            return;
        }
        if p.text.len() + text.len() > PENDING_BYTES {
            drop(p);
            self.counts.dropped.fetch_add(n, Ordering::Relaxed);
            return;
        }
        p.text.push_str(text);
        p.lines += n;
        let wake = std::mem::take(&mut p.idle);
        drop(p);
        self.counts.queued.fetch_add(n, Ordering::AcqRel);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Waits for lines, then swaps them for `out` (written and cleared);
    /// returns how many.
    fn take(&self, out: &mut String) -> u64 {
        let mut p = locked(&self.pending);
        while p.text.is_empty() {
            p.idle = true;
            p = self
                .wake
                .wait(p)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        p.idle = false;
        std::mem::swap(&mut p.text, out);
        std::mem::take(&mut p.lines)
    }
}

struct StderrLogger {
    level: LevelFilter,
    queue: &'static Queue,
}

/// A thread's access lines not handed on yet, how many, and when the first
/// was stamped.
struct Batch {
    text: String,
    n: u64,
    first: Duration,
}

thread_local! {
    /// `Some` on a thread that gathers its access lines ([`batch_lines`]).
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// From now on this thread's access lines ([`info_line`]) are gathered and
/// handed on together; the thread must call [`flush_batch`] whenever it is
/// about to wait, and before it ends.
pub fn batch_lines() {
    BATCH.with(|b| {
        b.borrow_mut().get_or_insert_with(|| Batch {
            text: String::new(),
            n: 0,
            first: Duration::ZERO,
        });
    });
}

/// Hands this thread's gathered lines on, if any.
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

/// The batch's text is kept (cleared) for the next lines.
fn queue_batch(queue: &Queue, batch: &mut Batch) {
    if batch.n == 0 {
        return;
    }
    queue.push(&batch.text, std::mem::take(&mut batch.n));
    batch.text.clear();
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
            queue.push(&text, 1);
        }
    });
}

/// Adds a line stamped `at` to a thread's batch; queues the batch once it is
/// [`BATCH_BYTES`] long or its first line [`GATHER`] old.
fn gather(queue: &Queue, batch: &mut Batch, at: Duration, write: impl FnOnce(&mut String)) {
    write(&mut batch.text);
    if batch.n == 0 {
        batch.first = at;
    }
    batch.n += 1;
    if batch.text.len() >= BATCH_BYTES || at.saturating_sub(batch.first) >= GATHER {
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
        self.queue.push(&text, 1);
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

/// Writes what is buffered, all of it in one write, at most one write per
/// [`GATHER`].
fn write_lines(queue: &Queue) {
    let mut out = String::new();
    loop {
        let n = queue.take(&mut out);
        let dropped = queue.counts.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            stamp_now(&mut out);
            out.push_str(&format!(
                " WARN  {dropped} log lines dropped: stderr was not written fast enough\n"
            ));
        }
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
        queue.counts.written.fetch_add(n, Ordering::AcqRel);
        out.clear();
        // A burst's buffer is not kept for good.
        out.shrink_to(64 * 1024);
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
    let mut first = false;
    let queue = QUEUE.get_or_init(|| {
        first = true;
        Queue::default()
    });
    if !first {
        return;
    }
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_lines(queue));
    if writer.is_err() {
        // Without its thread every line is written where it is made.
        locked(&queue.pending).direct = true;
    }
    let logger = StderrLogger { level, queue };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
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

    /// A worker's access lines: gathered, handed on together at 16 KiB or
    /// once a line comes 5 ms after the first, the rest by `queue_batch`
    /// (what `flush_batch` does when the worker has nothing to do); the
    /// writer takes them all at once; past the buffer's bound a batch's
    /// lines are dropped, every one counted.
    #[test]
    fn gathered_lines_are_handed_on_together_whole_and_counted() {
        use super::{
            gather, locked, queue_batch, Batch, Queue, BATCH_BYTES, GATHER, PENDING_BYTES,
        };
        use std::sync::atomic::Ordering;
        let queue = Queue::default();
        let mut batch = Batch {
            text: String::new(),
            n: 0,
            first: Duration::ZERO,
        };
        let pending = |queue: &Queue| {
            let p = locked(&queue.pending);
            (p.text.clone(), p.lines)
        };
        let t0 = Duration::from_secs(1_000_000);
        let line = |i: usize| move |text: &mut String| text.push_str(&format!("line {i}\n"));
        // Within GATHER of the first and under BATCH_BYTES: held.
        gather(&queue, &mut batch, t0, line(0));
        for i in 1..3 {
            gather(&queue, &mut batch, t0 + GATHER / 2, line(i));
        }
        assert_eq!(pending(&queue).1, 0, "handed on before its time");
        // A line GATHER after the first: the four go together.
        gather(&queue, &mut batch, t0 + GATHER, line(3));
        assert_eq!(
            pending(&queue),
            ("line 0\nline 1\nline 2\nline 3\n".to_string(), 4)
        );
        let mut out = String::new();
        assert_eq!(queue.take(&mut out), 4);
        assert_eq!(out, "line 0\nline 1\nline 2\nline 3\n");
        assert_eq!(pending(&queue).1, 0);
        // Lines of a quick thread: handed on once they reach BATCH_BYTES.
        let mut n = 0;
        while pending(&queue).1 == 0 {
            gather(&queue, &mut batch, t0, line(n));
            n += 1;
            assert!(n < BATCH_BYTES, "never handed on");
        }
        let (text, lines) = pending(&queue);
        assert_eq!(lines as usize, n);
        assert!(text.len() >= BATCH_BYTES && text.ends_with('\n'));
        assert_eq!((batch.n, batch.text.as_str()), (0, ""));
        // Nothing gathered: nothing handed on.
        queue_batch(&queue, &mut batch);
        assert_eq!(pending(&queue).1 as usize, n);
        // Past the bound: the whole batch is dropped and counted.
        locked(&queue.pending).text = "x".repeat(PENDING_BYTES - 8);
        gather(&queue, &mut batch, t0, line(0));
        queue_batch(&queue, &mut batch);
        gather(&queue, &mut batch, t0, line(1));
        gather(&queue, &mut batch, t0, line(2));
        queue_batch(&queue, &mut batch);
        assert_eq!(queue.counts.dropped.load(Ordering::Relaxed), 2);
        assert!(pending(&queue).0.ends_with("xline 0\n"));
        assert_eq!(
            queue.counts.queued.load(Ordering::Relaxed) as usize,
            4 + n + 1
        );
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
