//! This process's caches for the hottest reads (token -> session, user ->
//! User). They are answered from only while the change feed
//! ([`super::feed`]) is fresh: every entry is dropped when a change to it is
//! heard, and while the feed has not been read for [`LEASE`] the caches
//! neither answer nor store, so a missed change can never be served.
//!
//! A reader that misses takes `generation()` before fetching and inserts
//! with `insert_*_if(generation, ..)`: if any change was applied in between,
//! the possibly stale value is not cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Change;

/// A User as it is sent: serialized once when assembled
/// (`model::user`), then cached and answered as is (a cached read costs no
/// serialization).
#[derive(Debug, Clone, PartialEq)]
pub struct UserJson {
    pub user_id: i64,
    pub json: Box<str>,
}

/// How long after the snapshot of the last feed read the caches are still
/// trusted. With the feed read every [`super::feed::INTERVAL`], a revocation
/// committed anywhere is dropped here, or the caches are off, within this.
pub const LEASE: Duration = Duration::from_millis(800);
/// Entries also expire on their own, bounding memory held by idle entries.
const LOCAL_TTL: Duration = Duration::from_secs(30);
/// Bounds on memory (a token entry is ~200 bytes, a User ~0.5-5 KiB).
const MAX_TOKENS: usize = 100_000;
const MAX_USERS: usize = 20_000;

/// What an access token stands for, as cached and as introspect answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenInfo {
    pub session_id: i64,
    pub user_id: i64,
    pub username: String,
    pub roles: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    /// How the session was authenticated (`pwd`, `otp`, `hwk`). Entries cached
    /// before this field existed read as empty, which counts as `["pwd"]`.
    #[serde(default)]
    pub amr: Vec<String>,
}

impl TokenInfo {
    /// Whether the session was opened with a second factor: TOTP after
    /// the password, or a passkey (`hwk`: the key and the user verification
    /// it demands are both factors).
    pub fn has_second_factor(&self) -> bool {
        self.amr.iter().any(|m| m == "otp" || m == "hwk")
    }
}

struct Entry<V> {
    value: V,
    until: Instant,
}

pub struct LocalCaches {
    started: Instant,
    /// Milliseconds since `started` until which the caches may answer.
    fresh_until_ms: AtomicU64,
    generation: AtomicU64,
    tokens: Mutex<HashMap<[u8; 32], Entry<Arc<TokenInfo>>>>,
    users: Mutex<HashMap<i64, Entry<Arc<UserJson>>>>,
}

impl Default for LocalCaches {
    fn default() -> LocalCaches {
        LocalCaches {
            started: Instant::now(),
            fresh_until_ms: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            tokens: Mutex::default(),
            users: Mutex::default(),
        }
    }
}

/// At `max` entries: drop the expired ones, and if that is not enough, an
/// arbitrary half (the map's order): a cache, not a store, and never a
/// full stop-the-world clear on the hot path.
fn make_room<K, V>(map: &mut HashMap<K, Entry<V>>, max: usize) {
    if map.len() < max {
        return;
    }
    let now = Instant::now();
    map.retain(|_, e| e.until > now);
    if map.len() >= max * 3 / 4 {
        let mut keep = false;
        map.retain(|_, _| {
            keep = !keep;
            keep
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalCaches {
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Whether the feed was read recently enough for the caches to answer.
    pub fn is_fresh(&self) -> bool {
        self.ms(Instant::now()) < self.fresh_until_ms.load(Ordering::Acquire)
    }

    /// The feed was read from a snapshot taken after `read_started`, and
    /// every change it held is applied: trust the caches for a lease.
    pub fn fresh_as_of(&self, read_started: Instant) {
        self.fresh_until_ms
            .fetch_max(self.ms(read_started + LEASE), Ordering::AcqRel);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn token(&self, hash: &[u8; 32], now_s: i64) -> Option<Arc<TokenInfo>> {
        if !self.is_fresh() {
            return None;
        }
        let map = lock(&self.tokens);
        let e = map.get(hash)?;
        (e.until > Instant::now() && e.value.exp > now_s).then(|| e.value.clone())
    }

    pub fn insert_token_if(&self, generation: u64, hash: [u8; 32], info: Arc<TokenInfo>) {
        let mut map = lock(&self.tokens);
        if self.is_fresh() && self.generation() == generation {
            make_room(&mut map, MAX_TOKENS);
            map.insert(
                hash,
                Entry {
                    value: info,
                    until: Instant::now() + LOCAL_TTL,
                },
            );
        }
    }

    pub fn user(&self, id: i64) -> Option<Arc<UserJson>> {
        if !self.is_fresh() {
            return None;
        }
        let map = lock(&self.users);
        let e = map.get(&id)?;
        (e.until > Instant::now()).then(|| e.value.clone())
    }

    /// [`LocalCaches::user`] for many, under one lock: `ids[i]`'s User at `i`.
    pub fn users(&self, ids: &[i64]) -> Vec<Option<Arc<UserJson>>> {
        if !self.is_fresh() {
            return vec![None; ids.len()];
        }
        let now = Instant::now();
        let map = lock(&self.users);
        ids.iter()
            .map(|id| {
                let e = map.get(id)?;
                (e.until > now).then(|| e.value.clone())
            })
            .collect()
    }

    pub fn insert_user_if(&self, generation: u64, user: Arc<UserJson>) {
        let mut map = lock(&self.users);
        if self.is_fresh() && self.generation() == generation {
            make_room(&mut map, MAX_USERS);
            map.insert(
                user.user_id,
                Entry {
                    value: user,
                    until: Instant::now() + LOCAL_TTL,
                },
            );
        }
    }

    /// Like [`LocalCaches::insert_user_if`] for many, under one lock.
    pub fn insert_users_if(&self, generation: u64, users: impl Iterator<Item = Arc<UserJson>>) {
        let mut map = lock(&self.users);
        if self.is_fresh() && self.generation() == generation {
            let until = Instant::now() + LOCAL_TTL;
            for user in users {
                make_room(&mut map, MAX_USERS);
                map.insert(user.user_id, Entry { value: user, until });
            }
        }
    }

    /// Drops what `changes` name. The generation moves while both locks are
    /// held, so a concurrent miss cannot re-insert what it fetched before.
    pub fn apply(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let mut tokens = lock(&self.tokens);
        let mut users = lock(&self.users);
        self.generation.fetch_add(1, Ordering::AcqRel);
        for change in changes {
            match *change {
                Change::Session(sid) => tokens.retain(|_, e| e.value.session_id != sid),
                Change::User(uid) => {
                    tokens.retain(|_, e| e.value.user_id != uid);
                    users.remove(&uid);
                }
            }
        }
    }

    /// Drops everything (the feed may have lost changes).
    pub fn clear(&self) {
        let mut tokens = lock(&self.tokens);
        let mut users = lock(&self.users);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tokens.clear();
        users.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(session_id: i64, user_id: i64) -> Arc<TokenInfo> {
        Arc::new(TokenInfo {
            session_id,
            user_id,
            username: "u".into(),
            roles: vec![],
            iat: 0,
            exp: i64::MAX,
            amr: vec!["pwd".into()],
        })
    }

    /// A feed read dated an hour ahead: its lease cannot run out while a
    /// test that is about changes, not leases, runs on a busy machine (a
    /// real read's 800 ms can).
    fn far_read() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn fresh() -> LocalCaches {
        let c = LocalCaches::default();
        c.fresh_as_of(far_read());
        c
    }

    #[test]
    fn a_full_cache_makes_room_without_emptying_itself() {
        let mut map: HashMap<i64, Entry<()>> = (0..100)
            .map(|i| {
                (
                    i,
                    Entry {
                        value: (),
                        until: Instant::now() + LOCAL_TTL,
                    },
                )
            })
            .collect();
        make_room(&mut map, 100);
        assert!((40..=60).contains(&map.len()), "{}", map.len());
        make_room(&mut map, 100);
        assert!(map.len() >= 40);
    }

    #[test]
    fn a_cache_whose_feed_is_stale_neither_answers_nor_stores() {
        let c = LocalCaches::default();
        c.insert_token_if(c.generation(), [1; 32], info(1, 1));
        assert!(c.token(&[1; 32], 0).is_none());
        c.fresh_as_of(far_read());
        c.insert_token_if(c.generation(), [1; 32], info(1, 1));
        assert!(c.token(&[1; 32], 0).is_some());
    }

    /// The contract's "revoked means dead within 1 s" is these two
    /// numbers: a revocation committed anywhere is dropped here by the next
    /// feed read (one every INTERVAL), or the caches stop answering once
    /// LEASE has passed since the last read began. The integration tests
    /// check the mechanism end to end, with slack for a loaded machine.
    #[test]
    fn the_revocation_bound_fits_in_the_contracts_second() {
        assert!(super::super::feed::INTERVAL < LEASE);
        assert!(LEASE + super::super::feed::INTERVAL < Duration::from_secs(1));
    }

    #[test]
    fn a_lease_runs_out_without_a_new_feed_read() {
        let c = LocalCaches::default();
        c.fresh_as_of(Instant::now() - LEASE - Duration::from_millis(1));
        assert!(!c.is_fresh());
        // A read just now makes it fresh, if checked within the lease; a
        // check that a descheduled thread made later proves nothing, so
        // that read is taken again.
        let checked_in_time = (0..5).any(|_| {
            let read = Instant::now();
            c.fresh_as_of(read);
            let fresh = c.is_fresh();
            let in_time = read.elapsed() < LEASE;
            assert!(fresh || !in_time, "a read just now left the cache stale");
            in_time
        });
        assert!(checked_in_time, "five checks each came after the lease");
    }

    #[test]
    fn a_change_during_a_miss_prevents_caching_the_stale_value() {
        let c = fresh();
        let g = c.generation();
        c.apply(&[Change::Session(1)]);
        c.insert_token_if(g, [1; 32], info(1, 1));
        assert!(c.token(&[1; 32], 0).is_none());
    }

    #[test]
    fn user_and_session_changes_drop_their_tokens() {
        let c = fresh();
        c.insert_token_if(c.generation(), [1; 32], info(1, 10));
        c.insert_token_if(c.generation(), [2; 32], info(2, 20));
        c.apply(&[Change::Session(1)]);
        assert!(c.token(&[1; 32], 0).is_none());
        assert!(c.token(&[2; 32], 0).is_some());
        c.apply(&[Change::User(20)]);
        assert!(c.token(&[2; 32], 0).is_none());
    }
}
