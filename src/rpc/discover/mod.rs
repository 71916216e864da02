//! `rpc.discover`: an OpenRPC 1.3 document of every dispatched method,
//! assembled from the method tables (names, params, result schemas), the
//! component schemas built from the parsers' own constants (`schemas.rs`),
//! the error objects `AppError` sends, and one example per method
//! (`examples.rs`). Each method also carries `x-params-schema`: the whole
//! params object as one JSON Schema, stating what a params list cannot
//! (unknown params are refused; `username` and `email` exactly one of).

mod examples;
mod export;
mod schemas;

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::{methods, Method};
use crate::config::Config;
use crate::domain::Invalid;
use crate::error::{AppError, Dependency};

/// Parses schema text from the method tables (checked by a unit test).
fn schema(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

/// One instance of every error a method can answer, as sent.
fn error_samples() -> Vec<AppError> {
    vec![
        AppError::InvalidParams(Invalid::new("username", "too_short")),
        AppError::Internal(String::new()),
        AppError::Unavailable(Dependency::Postgres, String::new()),
        AppError::Timeout,
        AppError::Overloaded,
        AppError::AnswerTooLarge { limit: 16 << 20 },
        AppError::Conflict("username"),
        AppError::InvalidCredentials,
        AppError::AccountInactive("disabled".into()),
        AppError::NotFound,
        AppError::EmailUnverified,
        AppError::RateLimited { retry_after: 60 },
        AppError::Unauthorized,
        AppError::Forbidden,
    ]
}

/// What any call can answer: bad params, a bug, the deadline, shedding, an
/// answer past `MAX_ANSWER_BYTES` (in a batch, even a short one may not fit),
/// and (with `[CLIENTS]`) a missing caller key or a method not allowed.
const EVERY_METHOD: &[i64] = &[-32602, -32603, -32001, -32002, -32003, -32030, -32031];

fn error_name(e: &AppError) -> String {
    // outcome() is snake_case; component names read better in CamelCase.
    e.outcome()
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn errors_component() -> Value {
    let mut map = Map::new();
    for e in error_samples() {
        map.insert(error_name(&e), e.public_json());
    }
    Value::Object(map)
}

fn error_refs(specific: &[i64]) -> Vec<Value> {
    let samples = error_samples();
    let mut codes: Vec<i64> = EVERY_METHOD.iter().chain(specific).copied().collect();
    codes.sort_unstable_by(|a, b| b.cmp(a));
    codes.dedup();
    codes
        .iter()
        .filter_map(|code| samples.iter().find(|e| e.code() == *code))
        .map(|e| json!({"$ref": format!("#/components/errors/{}", error_name(e))}))
        .collect()
}

/// The params object as one schema. `username` and `email` both optional
/// is `Params::username_or_email`: exactly one of them; so are `code` and
/// `recovery_code` (`model::mfa::Proof::parse`), and `token` and `user_id`.
fn params_schema(m: &Method) -> Value {
    let mut props = Map::new();
    for p in m.params {
        props.insert(p.name.to_string(), schema(p.schema));
    }
    let required: Vec<&str> = m
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    let mut obj = json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    });
    let optional = |name: &str| m.params.iter().any(|p| p.name == name && !p.required);
    if optional("email_verified") {
        // user.update_account: at least one thing to change.
        obj["anyOf"] = json!([{"required": ["username"]}, {"required": ["email"]}, {"required": ["email_verified"]}]);
    } else if optional("username") && optional("email") {
        obj["oneOf"] = json!([{"required": ["username"]}, {"required": ["email"]}]);
    }
    // auth.mfa.verify: exactly one of a TOTP code and a recovery code.
    if optional("code") && optional("recovery_code") {
        obj["oneOf"] = json!([{"required": ["code"]}, {"required": ["recovery_code"]}]);
    }
    // auth.request_email_verification: the user's token, or (back office)
    // the account's id.
    if optional("token") && optional("user_id") {
        obj["oneOf"] = json!([{"required": ["token"]}, {"required": ["user_id"]}]);
    }
    obj
}

fn example_pairing(m: &Method, params: &str, result: &str) -> Value {
    let params = schema(params);
    // In the order the method lists its params, as by-position readers expect.
    let listed: Vec<Value> = m
        .params
        .iter()
        .filter_map(|p| {
            params
                .get(p.name)
                .map(|v| json!({"name": p.name, "value": v}))
        })
        .collect();
    json!({
        "name": format!("{} example", m.name),
        "params": listed,
        "result": {"name": "result", "value": schema(result)},
    })
}

fn method_object(m: &Method) -> Value {
    let example = examples::EXAMPLES.iter().find(|e| e.0 == m.name);
    let mut obj = json!({
        "name": m.name,
        "summary": m.summary,
        "paramStructure": "by-name",
        "params": m.params.iter().map(|p| json!({
            "name": p.name,
            "required": p.required,
            "schema": schema(p.schema),
        })).collect::<Vec<_>>(),
        "result": {"name": "result", "schema": schema(m.result)},
        "errors": error_refs(example.map_or(&[][..], |e| e.3)),
        "x-params-schema": params_schema(m),
    });
    if let Some((_, params, result, _)) = example {
        obj["examples"] = json!([example_pairing(m, params, result)]);
    }
    obj
}

/// Builds the document for this config (the roles it lists, the password
/// policy it sets).
pub fn build(config: &Config) -> Value {
    json!({
        "openrpc": "1.3.2",
        "info": {
            "title": "profiteer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Accounts, logins, tokens, permissions and user information over JSON-RPC 2.0 (POST /rpc). Params are by name; a param a method does not take is refused (-32602, reason unknown_param).",
        },
        "methods": methods().map(method_object).collect::<Vec<_>>(),
        "components": {
            "schemas": schemas::schemas(config),
            "errors": errors_component(),
        },
    })
}

/// The document, built once per process (the config does not change).
pub fn document(config: &Config) -> Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| build(config)).clone()
}

#[cfg(test)]
mod tests;
