//! In-process caches for the hottest reads (token -> session, user -> User),
//! kept correct across instances: every write that changes what they hold
//! publishes an invalidation on Redis pub/sub, and each instance drops the
//! matching entries. While the subscription is down the local caches are
//! emptied and bypassed, so a missed message can never leave a stale entry.
//!
//! A reader that misses takes `generation()` before fetching and inserts
//! with `insert_*_if(generation, ..)`: if any invalidation happened in
//! between, the possibly stale value is not cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::user::UserJson;
use crate::store::redis::Redis;

/// Entries also expire on their own, bounding any staleness.
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
    /// How the session was authenticated (`pwd`, `otp`). Entries cached
    /// before this field existed read as empty, which counts as `["pwd"]`.
    #[serde(default)]
    pub amr: Vec<String>,
}

impl TokenInfo {
    /// Whether the session was opened with a second factor.
    pub fn has_otp(&self) -> bool {
        self.amr.iter().any(|m| m == "otp")
    }
}

struct Entry<V> {
    value: V,
    until: Instant,
}

#[derive(Default)]
pub struct LocalCaches {
    enabled: AtomicBool,
    generation: AtomicU64,
    tokens: Mutex<HashMap<[u8; 32], Entry<Arc<TokenInfo>>>>,
    users: Mutex<HashMap<i64, Entry<Arc<UserJson>>>>,
}

/// An invalidation message, as published on the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    Session(i64),
    User(i64),
}

impl Invalidation {
    pub fn encode(self) -> String {
        match self {
            Invalidation::Session(id) => format!("s:{id}"),
            Invalidation::User(id) => format!("u:{id}"),
        }
    }

    pub fn decode(text: &str) -> Option<Invalidation> {
        let (kind, id) = text.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "s" => Some(Invalidation::Session(id)),
            "u" => Some(Invalidation::User(id)),
            _ => None,
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
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn token(&self, hash: &[u8; 32], now_s: i64) -> Option<Arc<TokenInfo>> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let map = lock(&self.tokens);
        let e = map.get(hash)?;
        (e.until > Instant::now() && e.value.exp > now_s).then(|| e.value.clone())
    }

    pub fn insert_token_if(&self, generation: u64, hash: [u8; 32], info: Arc<TokenInfo>) {
        let mut map = lock(&self.tokens);
        if self.enabled.load(Ordering::Acquire) && self.generation() == generation {
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
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let map = lock(&self.users);
        let e = map.get(&id)?;
        (e.until > Instant::now()).then(|| e.value.clone())
    }

    pub fn insert_user_if(&self, generation: u64, user: Arc<UserJson>) {
        let mut map = lock(&self.users);
        if self.enabled.load(Ordering::Acquire) && self.generation() == generation {
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
        if self.enabled.load(Ordering::Acquire) && self.generation() == generation {
            let until = Instant::now() + LOCAL_TTL;
            for user in users {
                make_room(&mut map, MAX_USERS);
                map.insert(user.user_id, Entry { value: user, until });
            }
        }
    }

    /// Drops what `inv` names. The generation moves first, under both
    /// locks' protection order, so a concurrent miss cannot re-insert.
    pub fn apply(&self, inv: Invalidation) {
        let mut tokens = lock(&self.tokens);
        let mut users = lock(&self.users);
        self.generation.fetch_add(1, Ordering::AcqRel);
        match inv {
            Invalidation::Session(sid) => tokens.retain(|_, e| e.value.session_id != sid),
            Invalidation::User(uid) => {
                tokens.retain(|_, e| e.value.user_id != uid);
                users.remove(&uid);
            }
        }
    }

    fn set_enabled(&self, on: bool) {
        let mut tokens = lock(&self.tokens);
        let mut users = lock(&self.users);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tokens.clear();
        users.clear();
        self.enabled.store(on, Ordering::Release);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }
}

/// Listens on the invalidation channel until `stop` is set. Reconnects on
/// failure; the caches are off from the moment the link is lost until the
/// subscription is back.
pub fn subscribe(caches: Arc<LocalCaches>, redis: Arc<Redis>, stop: Arc<AtomicBool>) {
    let channel = redis.channel();
    let mut was_up = true;
    while !stop.load(Ordering::Acquire) {
        let result = (|| -> redis::RedisResult<()> {
            let mut conn = redis.subscriber_connection()?;
            let mut pubsub = conn.as_pubsub();
            pubsub.subscribe(&channel)?;
            // Short, so a stop request is noticed quickly.
            pubsub.set_read_timeout(Some(Duration::from_millis(100)))?;
            caches.set_enabled(true);
            if !was_up {
                log::info!("invalidation channel subscribed again: local caches on");
            }
            was_up = true;
            while !stop.load(Ordering::Acquire) {
                match pubsub.get_message() {
                    Ok(msg) => {
                        let payload: String = msg.get_payload().unwrap_or_default();
                        if let Some(inv) = Invalidation::decode(&payload) {
                            caches.apply(inv);
                        }
                    }
                    Err(e) if e.is_timeout() => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })();
        caches.set_enabled(false);
        if let Err(e) = result {
            if was_up {
                log::warn!("invalidation channel lost, local caches off until it is back: {e}");
            }
            was_up = false;
            std::thread::sleep(Duration::from_millis(250));
        }
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
    fn invalidations_round_trip_through_text() {
        for inv in [Invalidation::Session(7), Invalidation::User(-1)] {
            assert_eq!(Invalidation::decode(&inv.encode()), Some(inv));
        }
        assert_eq!(Invalidation::decode("x:1"), None);
    }

    #[test]
    fn a_disabled_cache_neither_answers_nor_stores() {
        let c = LocalCaches::default();
        c.insert_token_if(c.generation(), [1; 32], info(1, 1));
        assert!(c.token(&[1; 32], 0).is_none());
        c.set_enabled(true);
        c.insert_token_if(c.generation(), [1; 32], info(1, 1));
        assert!(c.token(&[1; 32], 0).is_some());
    }

    #[test]
    fn an_invalidation_during_a_miss_prevents_caching_the_stale_value() {
        let c = LocalCaches::default();
        c.set_enabled(true);
        let g = c.generation();
        c.apply(Invalidation::Session(1));
        c.insert_token_if(g, [1; 32], info(1, 1));
        assert!(c.token(&[1; 32], 0).is_none());
    }

    #[test]
    fn user_and_session_invalidations_drop_their_tokens() {
        let c = LocalCaches::default();
        c.set_enabled(true);
        c.insert_token_if(c.generation(), [1; 32], info(1, 10));
        c.insert_token_if(c.generation(), [2; 32], info(2, 20));
        c.apply(Invalidation::Session(1));
        assert!(c.token(&[1; 32], 0).is_none());
        assert!(c.token(&[2; 32], 0).is_some());
        c.apply(Invalidation::User(20));
        assert!(c.token(&[2; 32], 0).is_none());
    }
}
