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
//! straight into the line that is queued, its time prefix reused within a
//! second, no format string interpreted (it was an eighth of what a
//! server spent on a ping).

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{Datelike, Timelike};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Lines waiting to be written at most.
const QUEUED_LINES: usize = 16_384;
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

/// Where lines go: the writer thread's queue.
#[derive(Clone)]
struct Queue {
    lines: Sender<String>,
    counts: Arc<Counts>,
}

impl Queue {
    fn push(&self, line: String) {
        match self.lines.try_send(line) {
            Ok(()) => {
                self.counts.queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(TrySendError::Full(_)) => {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(line)) => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }
}

/// The logger's queue, for [`info_line`]; unset until [`init`].
static QUEUE: OnceLock<Queue> = OnceLock::new();

thread_local! {
    /// The second a thread last stamped, and its text up to the seconds.
    static STAMP: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Now as `2026-12-06T20:35:34.524Z`.
fn stamp_now(out: &mut String) {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    stamp(out, since_epoch);
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
    let mut line = String::with_capacity(128);
    stamp_now(&mut line);
    line.push_str(" INFO  ");
    write(&mut line);
    line.push('\n');
    queue.push(line);
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
        let mut line = String::with_capacity(128);
        stamp_now(&mut line);
        {
            use std::fmt::Write as _;
            let _ = writeln!(line, " {:<5} {}", record.level(), record.args());
        }
        self.queue.push(line);
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
fn write_lines(lines: Receiver<String>, counts: Arc<Counts>) {
    let mut batch = String::new();
    while let Ok(first) = lines.recv() {
        batch.clear();
        batch.push_str(&first);
        let mut n = 1u64;
        while batch.len() < 64 * 1024 {
            match lines.try_recv() {
                Ok(line) => {
                    batch.push_str(&line);
                    n += 1;
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
