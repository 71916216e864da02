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
use crate::model::user::{self, rfc3339, Search};
use crate::rpc::{Output, Params};
use crate::services::Ctx;

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
    let user = user::find(ctx, &p.username_or_email()?)?;
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
        limit,
    };
    let (users, next) = user::search(ctx, &search)?;
    Ok(Output::Users {
        users,
        rest_key: "next_cursor",
        rest: json!(next.map(|id| id.to_string())),
    })
}

pub fn login_history(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let user_id = p.i64("user_id")?;
    let limit = p.limit("limit", PAGE_DEFAULT, PAGE_MAX)?;
    let events: Vec<Value> = user::login_history(ctx, user_id, limit)?
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
