//! A rate over the last ~0.1-0.2 s from two fixed windows, in atomics: cheap
//! enough to note on every call. Used to tell a storm of refusals from a
//! few (`http::delay`) and token traffic from none (`hashlane`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const WINDOW_MS: u64 = 100;

pub struct WindowCounter {
    started: Instant,
    window: AtomicU64,
    current: AtomicU64,
    previous: AtomicU64,
}

impl Default for WindowCounter {
    fn default() -> WindowCounter {
        WindowCounter {
            started: Instant::now(),
            window: AtomicU64::new(0),
            current: AtomicU64::new(0),
            previous: AtomicU64::new(0),
        }
    }
}

impl WindowCounter {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Moves to the window of `now_ms` if time has passed one.
    fn roll(&self, now_ms: u64) {
        let window = now_ms / WINDOW_MS;
        let seen = self.window.load(Ordering::Acquire);
        if window != seen
            && self
                .window
                .compare_exchange(seen, window, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let last = self.current.swap(0, Ordering::AcqRel);
            let adjacent = window == seen + 1;
            self.previous
                .store(if adjacent { last } else { 0 }, Ordering::Release);
        }
    }

    /// Counts one event; the events in this window and the last.
    pub fn note(&self) -> u64 {
        self.note_at(self.now_ms())
    }

    /// [`WindowCounter::note`] at `now_ms` after the counter started.
    fn note_at(&self, now_ms: u64) -> u64 {
        self.roll(now_ms);
        self.current.fetch_add(1, Ordering::AcqRel) + 1 + self.previous.load(Ordering::Acquire)
    }

    /// The events in this window and the last, without counting one.
    pub fn recent(&self) -> u64 {
        self.recent_at(self.now_ms())
    }

    /// [`WindowCounter::recent`] at `now_ms` after the counter started.
    fn recent_at(&self, now_ms: u64) -> u64 {
        self.roll(now_ms);
        self.current.load(Ordering::Acquire) + self.previous.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The clock is passed in: with the real one, a test thread descheduled
    // for ~100 ms on a busy machine would see its events forgotten.
    #[test]
    fn events_are_counted_over_two_windows_and_forgotten_after() {
        let w = WindowCounter::default();
        for _ in 0..10 {
            w.note_at(WINDOW_MS / 2);
        }
        assert_eq!(w.recent_at(WINDOW_MS / 2), 10);
        assert_eq!(
            w.recent_at(WINDOW_MS + WINDOW_MS / 2),
            10,
            "the last window"
        );
        assert_eq!(w.recent_at(2 * WINDOW_MS + WINDOW_MS / 2), 0);
    }

    #[test]
    fn events_are_forgotten_after_a_quiet_gap_of_more_than_a_window() {
        let w = WindowCounter::default();
        w.note_at(10);
        assert_eq!(w.note_at(WINDOW_MS + 10), 2);
        assert_eq!(w.recent_at(3 * WINDOW_MS + 10), 0);
    }
}
