//! The User view: account and roles from PostgreSQL, profile from MongoDB,
//! fetched in parallel and cached (in this process and in Redis). Every
//! write that changes a User calls [`invalidate`] before it returns.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::Invalidation;
use crate::error::AppError;
use crate::services::Ctx;
use crate::store::accounts::{self, Account};

/// How long an assembled User stays in Redis.
const REDIS_TTL_S: u64 = 300;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    pub email: Option<String>,
    pub state: String,
    pub roles: Vec<String>,
    pub profile: Map<String, Value>,
    pub mfa: Mfa,
    pub created_at: String,
    pub updated_at: String,
}

/// The second factors a user has: `{totp: bool}`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Mfa {
    pub totp: bool,
}

/// What a cached User must hold to be answered as is: one written by a
/// build without `mfa` is refused (and re-read), so no answer lacks it.
#[derive(Deserialize)]
struct CachedShape {
    #[allow(dead_code)] // only its presence is checked
    mfa: serde::de::IgnoredAny,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A User as it is sent: serialized once when assembled, then cached and
/// answered as is (a cached read costs no serialization).
#[derive(Debug, Clone, PartialEq)]
pub struct UserJson {
    pub user_id: i64,
    pub json: Box<str>,
}

impl UserJson {
    fn of(user: &User) -> Result<UserJson, AppError> {
        let json = serde_json::to_string(user)
            .map_err(|e| AppError::Internal(format!("serializing a user: {e}")))?;
        Ok(UserJson {
            user_id: user.user_id,
            json: json.into_boxed_str(),
        })
    }

    /// From Redis: accepted only if it is a JSON object (a tombstone is not).
    fn from_cache(user_id: i64, bytes: &[u8]) -> Option<UserJson> {
        let text = std::str::from_utf8(bytes).ok()?;
        let valid = text.starts_with('{') && serde_json::from_str::<CachedShape>(text).is_ok();
        valid.then(|| UserJson {
            user_id,
            json: text.into(),
        })
    }
}

fn assemble(account: Account, profile: Option<Map<String, Value>>) -> User {
    User {
        user_id: account.id,
        username: account.username,
        email: account.email,
        state: account.state,
        roles: account.roles,
        profile: profile.unwrap_or_default(),
        mfa: Mfa { totp: account.totp },
        created_at: rfc3339(account.created_at),
        updated_at: rfc3339(account.updated_at),
    }
}

/// One user, or `None` if there is no such account.
pub fn get(ctx: &Ctx, id: i64) -> Result<Option<Arc<UserJson>>, AppError> {
    Ok(get_many(ctx, &[id])?.remove(&id))
}

/// The users among `ids` that exist, keyed by id. Costs a constant number of
/// round trips whatever the count: local cache, one Redis MGET, then one
/// PostgreSQL query and one MongoDB query in parallel for the rest.
pub fn get_many(ctx: &Ctx, ids: &[i64]) -> Result<HashMap<i64, Arc<UserJson>>, AppError> {
    let svc = ctx.svc;
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing: Vec<i64> = Vec::new();
    for &id in ids {
        if found.contains_key(&id) {
            continue;
        }
        match svc.caches.user(id) {
            Some(user) => {
                found.insert(id, user);
            }
            None => missing.push(id),
        }
    }
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(found);
    }
    ctx.check_deadline()?;
    let fetched = if missing.len() > SHARED_FETCH_MAX_IDS {
        fetch(ctx, &missing)?
    } else {
        // Concurrent misses share one Redis MGET and one fetch from each
        // database (see `model::coalesce`).
        svc.user_misses
            .get(missing, ctx.deadline, &|ids, deadline| {
                fetch(&Ctx { deadline, ..*ctx }, ids)
            })?
    };
    found.extend(fetched);
    Ok(found)
}

/// Above this many missed ids a call is a batch already and runs its own
/// fetch, so a big `user.gets` does not delay small reads queued with it.
const SHARED_FETCH_MAX_IDS: usize = 64;
/// Ids in one shared fetch at most, and shared fetches running at once.
pub const SHARED_FETCH_IDS: usize = 256;
pub const SHARED_FETCHES: usize = 2;

/// The users among `ids` from Redis (one MGET), then the rest assembled from
/// PostgreSQL and MongoDB and cached (here and in Redis).
fn fetch(ctx: &Ctx, ids: &[i64]) -> Result<HashMap<i64, Arc<UserJson>>, AppError> {
    let svc = ctx.svc;
    let generation = svc.caches.generation();
    let keys: Vec<String> = ids.iter().map(|id| svc.redis.key("user", id)).collect();
    let cached = svc.redis.mget(&keys).unwrap_or_default();
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let hit = cached
            .get(i)
            .and_then(|v| v.as_deref())
            .and_then(|bytes| UserJson::from_cache(*id, bytes));
        match hit {
            Some(user) => {
                found.insert(*id, Arc::new(user));
            }
            None => missing.push(*id),
        }
    }
    svc.caches
        .insert_users_if(generation, found.values().cloned());
    if missing.is_empty() {
        return Ok(found);
    }
    // The two fetches run at once: MongoDB on the fetch pool, PostgreSQL
    // right here on the calling thread (one hand-off, not two: the
    // profile showed thread switches, not queries, dominating this path).
    let mut profiles = Ok(HashMap::new());
    let accounts = svc.fetch.in_place_scope(|scope| {
        scope.spawn(|_| profiles = svc.mongo.profiles(&missing).map_err(AppError::from));
        let mut conn = ctx.pg()?;
        Ok::<Vec<Account>, AppError>(accounts::accounts(&mut conn, &missing)?)
    });
    let (accounts, mut profiles) = (accounts?, profiles?);
    let mut assembled = Vec::with_capacity(accounts.len());
    let mut to_cache = Vec::with_capacity(accounts.len());
    for account in accounts {
        let id = account.id;
        let user = Arc::new(UserJson::of(&assemble(account, profiles.remove(&id)))?);
        to_cache.push((
            svc.redis.key("user", id),
            user.json.as_bytes().to_vec(),
            REDIS_TTL_S,
        ));
        assembled.push(user);
    }
    svc.caches
        .insert_users_if(generation, assembled.iter().cloned());
    // A cache that cannot be written is only a slower next read.
    if svc.caches.generation() == generation {
        let _ = svc.redis.fill_many(&to_cache);
    }
    found.extend(assembled.into_iter().map(|u| (u.user_id, u)));
    Ok(found)
}

/// Drops a user from every cache, here and (through Redis pub/sub) in every
/// other instance, including the tokens that carry its roles.
pub fn invalidate(ctx: &Ctx, id: i64) {
    crate::model::session::forget(
        ctx,
        &[],
        &[Invalidation::User(id)],
        &[ctx.svc.redis.key("user", id)],
    );
}
