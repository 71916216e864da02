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
    /// Moves to the current window if time has passed one.
    fn roll(&self) {
        let window = self.started.elapsed().as_millis() as u64 / WINDOW_MS;
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
        self.roll();
        self.current.fetch_add(1, Ordering::AcqRel) + 1 + self.previous.load(Ordering::Acquire)
    }

    /// The events in this window and the last, without counting one.
    pub fn recent(&self) -> u64 {
        self.roll();
        self.current.load(Ordering::Acquire) + self.previous.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_over_two_windows_and_forgotten_after() {
        let w = WindowCounter::default();
        for _ in 0..10 {
            w.note();
        }
        assert_eq!(w.recent(), 10);
        std::thread::sleep(std::time::Duration::from_millis(2 * WINDOW_MS + 10));
        assert_eq!(w.recent(), 0);
    }
}
