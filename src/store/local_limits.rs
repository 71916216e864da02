//! The in-process twin of `store::limits`: the same counters, decisions and
//! known-address markers, kept in this instance's memory for while Redis
//! cannot be reached, so logins go on with limits (per instance) rather
//! than with none. Bounded: a full counter table forgets its oldest
//! tenth. It used to refuse new counters instead, and then a flood of
//! strangers' failures (34,000 logins with distinct names and addresses)
//! locked out everyone, the owner at its known address too (issue 28).
//! Forgetting gives an attacker a fresh count only after thousands of
//! failed logins of its own, each a bcrypt check; known-address markers,
//! which only successful logins write, are never forgotten to make room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::limits::{Counter, Success};

/// Entries of each table by default (`[AUTH] LOCAL_LIMITER_ENTRIES`);
/// about 100 bytes each.
const CAPACITY: usize = 100_000;

#[derive(Default)]
struct Tables {
    /// key -> (count, expires)
    counters: HashMap<String, (u64, Instant)>,
    /// known-address marker -> expires
    known: HashMap<String, Instant>,
}

/// Whether `map` has room for one more entry, after dropping what expired
/// and, if `forget_oldest`, the oldest tenth (all windows are as long, so
/// the soonest to expire are the oldest).
fn room<V>(
    map: &mut HashMap<String, V>,
    capacity: usize,
    expiry: impl Fn(&V) -> Instant,
    now: Instant,
    forget_oldest: bool,
) -> bool {
    if map.len() < capacity {
        return true;
    }
    map.retain(|_, v| expiry(v) > now);
    if map.len() < capacity || !forget_oldest {
        return map.len() < capacity;
    }
    let mut expiries: Vec<Instant> = map.values().map(&expiry).collect();
    let tenth = (capacity / 10).clamp(1, expiries.len());
    let (_, cutoff, _) = expiries.select_nth_unstable(tenth - 1);
    let cutoff = *cutoff;
    map.retain(|_, v| expiry(v) > cutoff);
    map.len() < capacity
}

pub struct LocalLimits {
    tables: Mutex<Tables>,
    /// Entries of each table at most.
    capacity: usize,
    /// Whether the last login-limit decision was taken here (Redis was
    /// unreachable) rather than in Redis: shown in `/metrics`.
    in_force: AtomicBool,
}

impl Default for LocalLimits {
    fn default() -> LocalLimits {
        LocalLimits::new(CAPACITY)
    }
}

impl LocalLimits {
    pub fn new(capacity: usize) -> LocalLimits {
        LocalLimits {
            tables: Mutex::default(),
            capacity,
            in_force: AtomicBool::default(),
        }
    }

    pub fn in_force(&self) -> bool {
        self.in_force.load(Ordering::Relaxed)
    }

    pub fn set_in_force(&self, local: bool) {
        if self.in_force.swap(local, Ordering::Relaxed) != local {
            if local {
                log::warn!("redis unreachable: login limits are kept per instance");
            } else {
                log::info!("login limits are kept in redis again");
            }
        }
    }

    /// As `store::limits::admit`: `None` admitted and counted, `Some(s)`
    /// refused for `s` seconds.
    pub fn admit(&self, known: Option<&str>, counters: &[Counter], window_s: u64) -> Option<u64> {
        let now = Instant::now();
        let window = Duration::from_secs(window_s.max(1));
        let Ok(mut t) = self.tables.lock() else {
            return Some(window_s.max(1)); // poisoned: refuse, never unlimited
        };
        let known = known.is_some_and(|k| t.known.get(k).is_some_and(|until| *until > now));
        let mut wait = 0;
        for c in counters.iter().filter(|c| !(known && c.exempt_if_known)) {
            if let Some((count, until)) = t.counters.get(&c.key) {
                if *until > now && *count >= c.ceiling {
                    wait = wait.max(until.duration_since(now).as_secs().max(1));
                }
            }
        }
        if wait > 0 {
            return Some(wait);
        }
        for c in counters {
            let live = t
                .counters
                .get(&c.key)
                .is_some_and(|(_, until)| *until > now);
            if !live
                && !room(
                    &mut t.counters,
                    self.capacity,
                    |(_, until)| *until,
                    now,
                    true,
                )
            {
                return Some(window_s.max(1));
            }
        }
        for c in counters {
            let entry = t.counters.entry(c.key.clone()).or_insert((0, now + window));
            if entry.1 <= now {
                *entry = (0, now + window);
            }
            entry.0 += 1;
        }
        None
    }

    /// As `store::limits::succeeded`.
    pub fn succeeded(&self, s: &Success) {
        let now = Instant::now();
        let Ok(mut t) = self.tables.lock() else {
            return;
        };
        if let Some((known, ttl_s)) = s.known {
            let capacity = self.capacity;
            if t.known.contains_key(known)
                || room(&mut t.known, capacity, |until| *until, now, false)
            {
                t.known
                    .insert(known.to_string(), now + Duration::from_secs(ttl_s));
            }
        }
        if let Some(clear) = s.clear {
            t.counters.remove(clear);
        }
        for key in s.refund {
            if let Some((count, _)) = t.counters.get_mut(key) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(key: &str, ceiling: u64, exempt_if_known: bool) -> Counter {
        Counter {
            key: key.into(),
            ceiling,
            exempt_if_known,
        }
    }

    #[test]
    fn a_counter_at_its_ceiling_refuses_and_counts_nothing_more() {
        let l = LocalLimits::default();
        let cs = [counter("pair", 2, false), counter("login", 10, true)];
        assert_eq!(l.admit(None, &cs, 60), None);
        assert_eq!(l.admit(None, &cs, 60), None);
        let wait = l.admit(None, &cs, 60).unwrap();
        assert!((1..=60).contains(&wait));
        // the refused attempt was not counted on the other counter
        let t = l.tables.lock().unwrap();
        assert_eq!(t.counters["login"].0, 2);
    }

    #[test]
    fn a_known_address_is_exempt_from_the_exempt_counters_only() {
        let l = LocalLimits::default();
        let login = [counter("login", 1, true)];
        assert_eq!(l.admit(Some("known"), &login, 60), None);
        assert!(l.admit(Some("known"), &login, 60).is_some());
        l.succeeded(&Success {
            known: Some(("known", 60)),
            clear: Some("pair"),
            refund: &[],
        });
        assert_eq!(l.admit(Some("known"), &login, 60), None);
        let pair = [counter("pair", 1, false)];
        assert_eq!(l.admit(Some("known"), &pair, 60), None);
        assert!(l.admit(Some("known"), &pair, 60).is_some());
    }

    #[test]
    fn success_clears_the_pair_and_refunds_one_attempt() {
        let l = LocalLimits::default();
        let cs = [counter("pair", 3, false), counter("ip", 3, false)];
        l.admit(None, &cs, 60);
        l.admit(None, &cs, 60);
        l.succeeded(&Success {
            known: Some(("known", 60)),
            clear: Some("pair"),
            refund: &["ip".to_string()],
        });
        let t = l.tables.lock().unwrap();
        assert!(!t.counters.contains_key("pair"));
        assert_eq!(t.counters["ip"].0, 1);
    }

    #[test]
    fn a_full_table_forgets_its_oldest_counters_to_admit_a_newcomer() {
        let l = LocalLimits::new(100);
        {
            let mut t = l.tables.lock().unwrap();
            let later = Instant::now() + Duration::from_secs(60);
            for i in 0..100 {
                let until = later + Duration::from_millis(i);
                t.counters.insert(format!("k{i}"), (5, until));
            }
        }
        assert_eq!(l.admit(None, &[counter("new", 5, false)], 60), None);
        let t = l.tables.lock().unwrap();
        assert!(t.counters.len() <= 100);
        assert!(t.counters.contains_key("new"));
        assert!(!t.counters.contains_key("k0"), "the oldest stays");
        assert!(t.counters.contains_key("k99"), "the newest went");
    }

    #[test]
    fn known_addresses_are_never_forgotten_to_make_room_for_strangers() {
        let l = LocalLimits::new(10);
        l.succeeded(&Success {
            known: Some(("owner", 60)),
            clear: None,
            refund: &[],
        });
        let owners_limit = [counter("login", 1, true)];
        assert_eq!(l.admit(Some("owner"), &owners_limit, 60), None);
        for i in 0..100 {
            let stranger = [counter(&format!("s{i}"), 5, false)];
            assert_eq!(l.admit(None, &stranger, 60), None, "stranger {i}");
        }
        assert!(l.tables.lock().unwrap().counters.len() <= 10);
        assert_eq!(l.admit(Some("owner"), &owners_limit, 60), None);
    }
}
