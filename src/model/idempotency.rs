//! Retries recognised by the caller's `idempotency_key` (the contract's
//! "Methods"): the first successful answer is kept a day, with a hash of
//! the params, and answered again to a repeat with the same params; other
//! params under the same key are -32010 `idempotency_key`. A call that
//! creates an account keeps its answer in the account's own transaction
//! (`user::create`), so a crash never separates the two: a retry after it
//! gets the answer, or does the work.
//!
//! The params are compared by a SHA-256 of their canonical JSON without
//! `password` fields: no fast hash of a password is ever stored, and a
//! password is never compared to recognise a retry.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::limits::IDEMPOTENCY_KEY_MAX_CHARS;
use crate::error::AppError;
use crate::services::Ctx;
use crate::store::idempotency::{self as store, Kept, Scope};

/// A call's key, with what it is compared by.
pub struct Key {
    method: &'static str,
    key: String,
    params_hash: [u8; 32],
}

impl Key {
    /// The key of a call to `method` whose params are `params` (an object),
    /// `None` when it names none. Refused if empty or over 64 characters.
    pub fn of(
        method: &'static str,
        params: Option<&Map<String, Value>>,
    ) -> Result<Option<Key>, AppError> {
        let Some(map) = params else {
            return Ok(None);
        };
        let key = match map.get("idempotency_key") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(k)) => k,
            Some(_) => return Err(AppError::invalid("idempotency_key", "not_a_string")),
        };
        if key.is_empty() {
            return Err(AppError::invalid("idempotency_key", "empty"));
        }
        if key.chars().count() > IDEMPOTENCY_KEY_MAX_CHARS {
            return Err(AppError::invalid("idempotency_key", "too_long"));
        }
        let mut canonical = String::new();
        write_canonical(&mut canonical, &Value::Object(map.clone()), true);
        Ok(Some(Key {
            method,
            key: key.clone(),
            params_hash: Sha256::digest(canonical.as_bytes()).into(),
        }))
    }

    /// The key as stored, scoped to the calling client.
    pub fn scope<'a>(&'a self, ctx: &Ctx<'a>) -> Scope<'a> {
        Scope {
            client: ctx.client.unwrap_or(""),
            method: self.method,
            key: &self.key,
            params_hash: &self.params_hash,
        }
    }
}

/// The answer kept for `key`, if a call with it succeeded within a day;
/// -32010 `idempotency_key` if that call had other params. `None` without
/// a key.
pub fn recall(ctx: &Ctx, key: Option<&Key>) -> Result<Option<Value>, AppError> {
    let Some(key) = key else {
        return Ok(None);
    };
    let kept = {
        let mut conn = ctx.pg()?;
        store::recall(&mut conn.client, &key.scope(ctx))?
    };
    match kept {
        None => Ok(None),
        Some(Kept::OtherParams) => Err(AppError::Conflict("idempotency_key")),
        Some(Kept::Answer(text)) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| AppError::Internal(format!("a kept answer does not parse: {e}"))),
    }
}

/// Keeps `answer` for `key` in a transaction of its own: for work that is
/// not one transaction (`user.import`'s rows). A key kept meanwhile by
/// another call stays as it is.
pub fn remember(ctx: &Ctx, key: &Key, answer: &Value) -> Result<(), AppError> {
    let mut conn = ctx.pg()?;
    store::remember(&mut conn.client, &key.scope(ctx), &answer.to_string())?;
    Ok(())
}

/// JSON with object keys sorted, `password` fields and the top level's
/// `idempotency_key` left out.
fn write_canonical(out: &mut String, v: &Value, top: bool) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| *k != "password" && !(top && *k == "idempotency_key"))
                .collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(out, v, false);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item, false);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hash(params: Value) -> [u8; 32] {
        Key::of("auth.register", params.as_object())
            .unwrap()
            .unwrap()
            .params_hash
    }

    #[test]
    fn params_compare_whatever_their_key_order_and_without_passwords() {
        let a = hash(
            json!({"idempotency_key": "k", "username": "ann", "email": "a@x.io",
                            "password": "one secret"}),
        );
        let b = hash(
            json!({"email": "a@x.io", "password": "another one", "username": "ann",
                            "idempotency_key": "k"}),
        );
        assert_eq!(a, b);
        let c = hash(json!({"idempotency_key": "k", "username": "bob"}));
        assert_ne!(a, c);
        let rows = |pw: &str| {
            hash(json!({"idempotency_key": "k",
                        "users": [{"username": "ann", "password": pw}]}))
        };
        assert_eq!(rows("first pass"), rows("second pass"));
    }

    #[test]
    fn a_key_is_a_short_non_empty_string_or_absent() {
        let key = |v: Value| Key::of("auth.register", v.as_object());
        assert!(key(json!({"username": "a"})).unwrap().is_none());
        assert!(key(json!({"idempotency_key": null})).unwrap().is_none());
        for bad in [json!(""), json!(5), json!("x".repeat(65))] {
            let e = key(json!({ "idempotency_key": bad })).err().unwrap();
            assert_eq!(e.code(), -32602);
        }
        assert!(key(json!({"idempotency_key": "é".repeat(64)}))
            .unwrap()
            .is_some());
    }
}
