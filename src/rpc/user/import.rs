//! `user.import`: up to 1000 accounts in one call, from plain passwords or
//! existing bcrypt hashes, keeping the ids they had elsewhere when given
//! (`user_id`; later ids are allocated above them). Each row is
//! all-or-nothing (see `model::imported`); the batch is not: a bad row is
//! reported by its index and the others go on. Rows not reached before the
//! deadline are reported with -32001, rows refused by a full hashing lane
//! with -32002 (the whole call, when none could be done): both can be sent
//! again.

use serde_json::{json, Map, Value};

use crate::domain::{Email, ProfilePatch, Role, UserState, Username};
use crate::error::AppError;
use crate::model::idempotency;
use crate::model::imported::{self, Row, Secret};
use crate::model::password as pw;
use crate::rpc::Params;
use crate::services::Ctx;

use crate::domain::limits::{IMPORT_MAX_ROWS as MAX_ROWS, MAX_USER_ID};
const FIELDS: &[&str] = &[
    "user_id",
    "username",
    "email",
    "email_verified",
    "password",
    "password_hash",
    "state",
    "roles",
    "profile",
];

fn text<'a>(row: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, AppError> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AppError::invalid(key, "not_a_string")),
    }
}

fn parse_row(ctx: &Ctx, raw: &Value) -> Result<Row, AppError> {
    let Value::Object(row) = raw else {
        return Err(AppError::invalid("row", "not_an_object"));
    };
    if let Some(unknown) = row.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(AppError::invalid(unknown.clone(), "unknown_field"));
    }
    let id = match row.get("user_id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(id) if (1..=MAX_USER_ID).contains(&id) => Some(id),
            Some(_) => return Err(AppError::invalid("user_id", "out_of_range")),
            None => return Err(AppError::invalid("user_id", "not_an_integer")),
        },
    };
    let username = Username::parse(
        text(row, "username")?.ok_or_else(|| AppError::invalid("username", "missing"))?,
    )?;
    let email = text(row, "email")?.map(Email::parse).transpose()?;
    let email_verified = match row.get("email_verified") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AppError::invalid("email_verified", "not_a_boolean")),
    };
    let state = match text(row, "state")? {
        None => UserState::Active,
        Some(s) => UserState::parse(s).ok_or_else(|| AppError::invalid("state", "invalid"))?,
    };
    let roles = match row.get("roles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| {
                // Named after the row's field (`roles`), not `role`.
                let r = Role::parse(r.as_str().unwrap_or(""))
                    .map_err(|_| AppError::invalid("roles", "invalid"))?;
                if ctx.config().roles.contains_key(r.as_str()) {
                    Ok(r.as_str().to_string())
                } else {
                    Err(AppError::invalid("roles", "unknown_role"))
                }
            })
            .collect::<Result<_, AppError>>()?,
        Some(_) => return Err(AppError::invalid("roles", "not_an_array")),
    };
    let profile = match row.get("profile") {
        None | Some(Value::Null) => None,
        Some(v) => Some(ProfilePatch::parse(v, "profile")?),
    };
    let secret = match (text(row, "password")?, text(row, "password_hash")?) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid("password_hash", "give_password_or_hash"))
        }
        (None, None) => return Err(AppError::invalid("password", "missing")),
        (None, Some(h)) => {
            Secret::Hash(pw::acceptable_hash(h, ctx.config().auth.bcrypt_cost)?.to_string())
        }
        // Checked against the policy on the hashing lane (model::imported).
        (Some(plain), None) => Secret::Plain(plain.to_string()),
    };
    Ok(Row {
        id,
        username,
        email,
        email_verified,
        secret,
        state,
        roles,
        profile,
    })
}

pub fn import(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let rows = p.array("users")?;
    if rows.len() > MAX_ROWS {
        return Err(AppError::invalid("users", "too_many"));
    }
    // The rows commit together, and the answer is kept after them: a
    // repeat after a crash in between does the rows again (those done
    // already are reported as conflicts).
    let key = idempotency::Key::of("user.import", p.all())?;
    if let Some(answer) = idempotency::recall(ctx, key.as_ref())? {
        return Ok(answer);
    }
    let answer = import_rows(ctx, rows)?;
    if let Some(key) = &key {
        idempotency::remember(ctx, key, &answer)?;
    }
    Ok(answer)
}

fn import_rows(ctx: &Ctx, rows: &[Value]) -> Result<Value, AppError> {
    let mut valid = Vec::with_capacity(rows.len());
    let parsed: Vec<Result<(), AppError>> = rows
        .iter()
        .map(|raw| parse_row(ctx, raw).map(|row| valid.push(row)))
        .collect();
    let mut stored = imported::import(ctx, &valid)?.into_iter();
    let mut imported = 0;
    let mut errors = Vec::new();
    for (index, row) in parsed.into_iter().enumerate() {
        let result = row.and_then(|()| {
            stored
                .next()
                .unwrap_or(Err(AppError::Internal("a row without an outcome".into())))
        });
        match result {
            Ok(_) => imported += 1,
            Err(e) => {
                let mut entry = json!({"index": index, "code": e.code()});
                match &e {
                    AppError::InvalidParams(i) => {
                        entry["field"] = json!(i.field);
                        entry["reason"] = json!(i.reason);
                    }
                    AppError::Conflict(field) => entry["field"] = json!(field),
                    _ => {
                        e.to_json(ctx.rid()); // logs a hidden cause
                    }
                }
                errors.push(entry);
            }
        }
    }
    Ok(json!({"imported": imported, "errors": errors}))
}
