//! What a token stands for, answered from the fastest place that is
//! correct: this process's cache, then Redis, then PostgreSQL (the source of
//! truth, so a flushed or dead Redis logs nobody out). Revocations go the
//! other way through [`forget`]: PostgreSQL first, then every cache.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration as ChronoDuration, Utc};

use crate::cache::{Invalidation, TokenInfo};
use crate::domain::{Token, TokenHash, TokenKind};
use crate::error::AppError;
use crate::model::coalesce::Found;
use crate::services::Ctx;
use crate::store::sessions::{self, Pair};

/// The active session behind an access token, or `None` for any token that
/// is unknown, expired, revoked, of another kind, or whose user is inactive.
pub fn introspect(ctx: &Ctx, token: &str) -> Result<Option<Arc<TokenInfo>>, AppError> {
    if Token::kind_of(token) != Some(TokenKind::Access) {
        return Ok(None);
    }
    let svc = ctx.svc;
    let hash = TokenHash::of(token);
    if let Some(info) = svc.caches.token(&hash.0, Utc::now().timestamp()) {
        return Ok(Some(info));
    }
    // Concurrent misses share one Redis MGET and one PostgreSQL query (see
    // `model::coalesce`): under load, one wake-up per call instead of two
    // round trips.
    let mut found = svc
        .token_misses
        .get(vec![hash], ctx.deadline, &|hashes, deadline| {
            lookup(&Ctx { deadline, ..*ctx }, hashes)
        })?;
    Ok(found.remove(&hash))
}

/// Token misses in one shared lookup at most, and lookups running at once.
pub const SHARED_TOKENS: usize = 64;
pub const SHARED_TOKEN_FETCHES: usize = 2;

/// The active tokens among `hashes`: Redis first (one MGET), PostgreSQL for
/// the rest (one query), caching what PostgreSQL found here and in Redis.
fn lookup(ctx: &Ctx, hashes: &[TokenHash]) -> Found<TokenHash, Arc<TokenInfo>> {
    let svc = ctx.svc;
    let generation = svc.caches.generation();
    let now = Utc::now().timestamp();
    let keys: Vec<String> = hashes
        .iter()
        .map(|h| svc.redis.key("tok", h.hex()))
        .collect();
    // Redis down or slow: PostgreSQL answers everything.
    let cached = svc.redis.mget(&keys).unwrap_or_default();
    let mut found = HashMap::with_capacity(hashes.len());
    let mut rest = Vec::new();
    for (i, hash) in hashes.iter().enumerate() {
        let hit = cached
            .get(i)
            .and_then(|v| v.as_deref())
            .and_then(|bytes| serde_json::from_slice::<TokenInfo>(bytes).ok())
            .filter(|info| info.exp > now);
        match hit {
            Some(info) => {
                let info = Arc::new(info);
                svc.caches.insert_token_if(generation, hash.0, info.clone());
                found.insert(*hash, info);
            }
            None => rest.push(*hash),
        }
    }
    if rest.is_empty() {
        return Ok(found);
    }
    let sessions = {
        let mut conn = ctx.pg()?;
        sessions::by_access_tokens(&mut conn, &rest)?
    };
    let mut fill = Vec::new();
    for (hash, s) in sessions {
        let exp = s.expires_at.timestamp();
        if s.revoked || exp <= now || s.state != "active" {
            continue;
        }
        let info = Arc::new(TokenInfo {
            session_id: s.session_id,
            user_id: s.user_id,
            username: s.username,
            roles: s.roles,
            iat: s.issued_at.timestamp(),
            exp,
            amr: s.amr,
        });
        if let Ok(bytes) = serde_json::to_vec(&*info) {
            fill.push((svc.redis.key("tok", hash.hex()), bytes, (exp - now) as u64));
        }
        svc.caches.insert_token_if(generation, hash.0, info.clone());
        found.insert(hash, info);
    }
    if svc.caches.generation() == generation {
        let _ = svc.redis.fill_many(&fill);
    }
    Ok(found)
}

/// Like [`introspect`], but a token that is not active is -32030.
pub fn require(ctx: &Ctx, token: &str) -> Result<Arc<TokenInfo>, AppError> {
    introspect(ctx, token)?.ok_or(AppError::Unauthorized)
}

/// Drops tokens and users from every cache after PostgreSQL changed: the
/// Redis entries (replaced by short-lived tombstones), this process's entries, and (by publishing) every other
/// instance's. Redis failures are logged: the local part always happens, and
/// other instances run with their caches off while they cannot hear Redis.
pub fn forget(ctx: &Ctx, tokens: &[TokenHash], what: &[Invalidation], extra_keys: &[String]) {
    let svc = ctx.svc;
    for inv in what {
        svc.caches.apply(*inv);
    }
    let mut keys: Vec<String> = tokens
        .iter()
        .map(|h| svc.redis.key("tok", h.hex()))
        .collect();
    keys.extend_from_slice(extra_keys);
    // The tombstones outlive any read that started before this write (it
    // ends by its deadline), so none can put the old value back.
    let ttl = svc.config.server.request_timeout.as_secs() + 2;
    if let Err(e) = svc.redis.tombstone(&keys, ttl) {
        log::error!(
            "rid={} {} cache entries not dropped from redis ({e:?}); they expire on their own",
            ctx.rid,
            keys.len()
        );
    }
    let channel = svc.redis.channel();
    for inv in what {
        if let Err(e) = svc.redis.publish(&channel, &inv.encode()) {
            log::error!("rid={} invalidation not published: {e:?}", ctx.rid);
        }
    }
}

/// Drops every cached token of the given sessions (already revoked in
/// PostgreSQL).
pub fn forget_sessions(ctx: &Ctx, session_ids: &[i64]) -> Result<(), AppError> {
    if session_ids.is_empty() {
        return Ok(());
    }
    let hashes = {
        let mut conn = ctx.pg()?;
        sessions::access_hashes_of_sessions(&mut conn.client, session_ids)?
    };
    let what: Vec<Invalidation> = session_ids
        .iter()
        .map(|s| Invalidation::Session(*s))
        .collect();
    forget(ctx, &hashes, &what, &[]);
    Ok(())
}

/// Drops every cached token and the cached User of a user whose roles,
/// state or password changed.
pub fn forget_user(ctx: &Ctx, user_id: i64) -> Result<(), AppError> {
    let hashes = {
        let mut conn = ctx.pg()?;
        sessions::access_hashes_of_user(&mut conn.client, user_id)?
    };
    forget(
        ctx,
        &hashes,
        &[Invalidation::User(user_id)],
        &[ctx.svc.redis.key("user", user_id)],
    );
    Ok(())
}

/// A freshly minted access + refresh pair, with what is stored of it.
pub struct Minted {
    pub access: String,
    pub refresh: String,
    pub access_hash: TokenHash,
    pub refresh_hash: TokenHash,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
}

impl Minted {
    pub fn new(ctx: &Ctx) -> Result<Minted, AppError> {
        let rng = |e: getrandom::Error| AppError::Internal(format!("OS random generator: {e}"));
        let access = Token::generate(TokenKind::Access).map_err(rng)?;
        let refresh = Token::generate(TokenKind::Refresh).map_err(rng)?;
        Ok(Minted {
            access_hash: access.hash(),
            refresh_hash: refresh.hash(),
            access: access.into_string(),
            refresh: refresh.into_string(),
            access_ttl: ctx.config().auth.access_ttl_s,
            refresh_ttl: ctx.config().auth.refresh_ttl_s,
        })
    }

    /// Lifetimes cut to `left_s`, what is left of the session's longest
    /// life (`[AUTH] SESSION_MAX_S`).
    pub fn capped(mut self, left_s: i64) -> Minted {
        self.access_ttl = self.access_ttl.min(left_s);
        self.refresh_ttl = self.refresh_ttl.min(left_s);
        self
    }

    pub fn pair(&self) -> Pair<'_> {
        let now = Utc::now();
        Pair {
            access: &self.access_hash,
            access_expires: now + ChronoDuration::seconds(self.access_ttl),
            refresh: &self.refresh_hash,
            refresh_expires: now + ChronoDuration::seconds(self.refresh_ttl),
        }
    }

    /// The answer of `auth.login` and `auth.refresh`.
    pub fn answer(self, user_id: i64, session_id: i64) -> serde_json::Value {
        serde_json::json!({
            "user_id": user_id,
            "session_id": session_id,
            "access_token": self.access,
            "refresh_token": self.refresh,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "refresh_expires_in": self.refresh_ttl,
        })
    }
}
