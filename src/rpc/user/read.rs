//! Reads: `user.get`, `user.gets`, `user.find`, `user.search`,
//! `user.login_history`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::domain::limits::{
    GETS_MAX_IDS as MAX_GETS, PAGE_DEFAULT, PAGE_MAX, SEARCH_QUERY_MAX_CHARS,
};
use crate::domain::{Role, UserState};
use crate::error::AppError;
use crate::model::user::{self, rfc3339};
use crate::rpc::{Output, Params};
use crate::services::Ctx;
use crate::store::accounts::{self, Search};

pub fn get(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let user = user::get(ctx, p.i64("user_id")?)?.ok_or(AppError::NotFound)?;
    Ok(Output::User(user))
}

/// Users in the order first requested, each once; unknown ids in `missing`,
/// each once, in request order.
pub fn gets(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let raw = p.array("user_ids")?;
    if raw.len() > MAX_GETS {
        return Err(AppError::invalid("user_ids", "too_many"));
    }
    let mut ids = Vec::with_capacity(raw.len());
    let mut seen = HashSet::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let id = v
            .as_i64()
            .ok_or_else(|| AppError::invalid(format!("user_ids[{i}]"), "not_an_integer"))?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    let mut found = user::get_many(ctx, &ids)?;
    let mut users = Vec::with_capacity(found.len());
    let mut missing = Vec::new();
    for id in ids {
        match found.remove(&id) {
            Some(u) => users.push(u),
            None => missing.push(id),
        }
    }
    Ok(Output::Users {
        users,
        rest_key: "missing",
        rest: json!(missing),
    })
}

pub fn find(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let login = p.username_or_email()?;
    let id = {
        let mut conn = ctx.pg()?;
        accounts::id_by_login(&mut conn.client, &login)?
    };
    let user = match id {
        Some(id) => user::get(ctx, id)?,
        None => None,
    };
    Ok(Output::User(user.ok_or(AppError::NotFound)?))
}

fn time(p: &Params, key: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    p.opt_str(key)?
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| AppError::invalid(key, "not_rfc3339"))
        })
        .transpose()
}

/// The cursor is the last id of the previous page, as an opaque string.
pub fn search(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let limit = p.limit("limit", PAGE_DEFAULT, PAGE_MAX)?;
    let state = p
        .opt_str("state")?
        .map(|s| UserState::parse(s).ok_or_else(|| AppError::invalid("state", "invalid")))
        .transpose()?;
    let role = p.opt_str("role")?.map(Role::parse).transpose()?;
    let query = match p.opt_str("query")? {
        Some(q) if q.chars().count() > SEARCH_QUERY_MAX_CHARS => {
            return Err(AppError::invalid("query", "too_long"))
        }
        Some(q) => Some(q.trim().to_lowercase()).filter(|q| !q.is_empty()),
        None => None,
    };
    let after_id = match p.opt_str("cursor")? {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| AppError::invalid("cursor", "invalid"))?,
    };
    let search = Search {
        prefix: query,
        state: state.map(|s| s.as_str().to_string()),
        role: role.map(|r| r.as_str().to_string()),
        created_after: time(p, "created_after")?,
        created_before: time(p, "created_before")?,
        after_id,
        limit: limit + 1,
    };
    // Before the rows are read: see `user::from_accounts`.
    let generation = ctx.svc.caches.generation();
    let mut accounts = {
        let mut conn = ctx.pg()?;
        accounts::search(&mut conn.client, &search)?
    };
    let more = accounts.len() as i64 > limit;
    accounts.truncate(limit as usize);
    let next_cursor = more
        .then(|| accounts.last().map(|a| a.id.to_string()))
        .flatten();
    let users = user::from_accounts(ctx, generation, accounts)?;
    Ok(Output::Users {
        users,
        rest_key: "next_cursor",
        rest: json!(next_cursor),
    })
}

pub fn login_history(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let user_id = p.i64("user_id")?;
    let limit = p.limit("limit", PAGE_DEFAULT, PAGE_MAX)?;
    {
        let mut conn = ctx.pg()?;
        if !accounts::exists(&mut conn.client, user_id)? {
            return Err(AppError::NotFound);
        }
    }
    let events: Vec<Value> = ctx
        .mongo(move |m, max_time| m.recent_events(user_id, limit, max_time))?
        .into_iter()
        .map(|e| {
            json!({
                "at": DateTime::<Utc>::from_timestamp_millis(e.at_ms).map(rfc3339),
                "ok": e.ok,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "reason": e.reason,
            })
        })
        .collect();
    Ok(json!({"events": events}))
}
