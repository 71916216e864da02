//! What a token stands for, answered from the fastest place that is
//! correct: this process's cache while its change feed is fresh, else
//! PostgreSQL (the source of truth). Revocations are writes like any other:
//! they end with `cache::commit`, which records what they changed.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration as ChronoDuration, Utc};

use crate::cache::{self, Change, TokenInfo};
use crate::domain::{Token, TokenHash, TokenKind, UserState};
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::model::coalesce::Found;
use crate::services::Ctx;
use crate::store::sessions::{self, Pair, SessionRow};

/// The active session behind an access token, or `None` for any token that
/// is unknown, expired, revoked, of another kind, or whose user is inactive.
pub fn introspect(ctx: &Ctx, token: &str) -> Result<Option<Arc<TokenInfo>>, AppError> {
    if Token::kind_of(token) != Some(TokenKind::Access) {
        return Ok(None);
    }
    let svc = ctx.svc;
    let hash = TokenHash::of(token);
    if let Some(info) = svc.model.caches.token(&hash.0, Utc::now().timestamp()) {
        return Ok(Some(info));
    }
    // Concurrent misses share one PostgreSQL query (see
    // `model::coalesce`): under load, one wake-up per call instead of a
    // round trip each.
    let mut found =
        svc.model
            .token_misses
            .get(vec![hash], ctx.call.deadline, &|hashes, deadline| {
                lookup(&ctx.until(deadline), hashes)
            })?;
    Ok(found.remove(&hash))
}

/// The active tokens among `hashes`, from PostgreSQL (one query), cached
/// here unless a change was applied meanwhile.
fn lookup(ctx: &Ctx, hashes: &[TokenHash]) -> Found<TokenHash, Arc<TokenInfo>> {
    let svc = ctx.svc;
    // Taken before the read: a change applied meanwhile forbids caching.
    let generation = svc.model.caches.generation();
    let now = Utc::now().timestamp();
    let sessions = ctx.read_found(
        |conn| sessions::by_access_tokens(conn, hashes),
        |found| found.len() == hashes.len(),
    )?;
    let mut found = HashMap::with_capacity(hashes.len());
    for (hash, s) in sessions {
        let exp = s.expires_at.timestamp();
        if s.revoked || exp <= now || UserState::parse(&s.state) != Some(UserState::Active) {
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
        svc.model
            .caches
            .insert_token_if(generation, hash.0, info.clone());
        found.insert(hash, info);
    }
    Ok(found)
}

/// Like [`introspect`], but a token that is not active is -32030.
pub fn require(ctx: &Ctx, token: &str) -> Result<Arc<TokenInfo>, AppError> {
    introspect(ctx, token)?.ok_or(AppError::Unauthorized)
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

/// `auth.logout`: revokes the session of an access or a refresh token.
/// `false` for an unknown or already revoked token: logging out is
/// idempotent.
pub fn logout(ctx: &Ctx, token: &str) -> Result<bool, AppError> {
    let refresh = match Token::kind_of(token) {
        Some(TokenKind::Access) => false,
        Some(TokenKind::Refresh) => true,
        _ => return Ok(false),
    };
    let hash = TokenHash::of(token);
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let mut revoked = None;
    if let Some((session_id, user_id)) = sessions::session_of(&mut tx, &hash, refresh)? {
        if sessions::revoke(&mut tx, session_id)? {
            revoked = Some(session_id);
            account_events::record(&mut tx, &Event::revoked(user_id, &[session_id], "logout"))?;
        }
    }
    let changes: Vec<Change> = revoked.into_iter().map(Change::Session).collect();
    cache::commit(&ctx.svc.model.caches, tx, &changes)?;
    Ok(revoked.is_some())
}

/// `auth.logout_all`: every session of the token's user ends (and any
/// login or challenge under way, see `sessions::end_all`); how many.
pub fn logout_all(ctx: &Ctx, info: &TokenInfo) -> Result<usize, AppError> {
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let revoked = sessions::end_all(&mut tx, info.user_id, None)?;
    account_events::record(
        &mut tx,
        &Event::revoked(info.user_id, &revoked, "logout_all"),
    )?;
    let changes: Vec<Change> = revoked.iter().copied().map(Change::Session).collect();
    cache::commit(&ctx.svc.model.caches, tx, &changes)?;
    Ok(revoked.len())
}

/// `auth.sessions`: the live sessions of the token's user, newest first.
pub fn live(ctx: &Ctx, info: &TokenInfo) -> Result<Vec<SessionRow>, AppError> {
    ctx.read(|conn| sessions::live(&mut conn.client, info.user_id))
}
