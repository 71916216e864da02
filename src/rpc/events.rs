//! `events.read`: the account event log, paged by cursor (admin). The log
//! and its order are `model::account_events`'.

use serde_json::{json, Value};

use super::{Method, Output, Param, Params};
use crate::error::AppError;
use crate::model::account_events::{self, cursor_text, event_json, parse_cursor, KINDS};
use crate::services::Ctx;

const LIMIT_DEFAULT: i64 = 100;
const LIMIT_MAX: i64 = 1000;

pub const METHODS: &[Method] = &[Method {
    name: "events.read",
    summary: "Account events in one total order after a cursor; reading on from each `next` never misses or repeats one.",
    params: &[
        Param {
            name: "after",
            required: false,
            schema: r#"{"type":"string","pattern":"^[0-9]{1,18}\\.[0-9]{1,18}$","description":"`next` of the previous page; absent: from the oldest event kept. Each part fits a signed 64-bit integer (18 digits: a transaction id and an event id that will not reach 10^18)."}"#,
        },
        Param {
            name: "limit",
            required: false,
            schema: r#"{"type":"integer","minimum":1,"maximum":1000,"default":100}"#,
        },
        Param {
            name: "types",
            required: false,
            schema: component!("EventTypes"),
        },
    ],
    result: r##"{"type":"object","properties":{"events":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"type":{"$ref":"#/components/schemas/EventType"},"at":{"$ref":"#/components/schemas/DateTime"},"user_id":{"oneOf":[{"$ref":"#/components/schemas/UserId"},{"type":"null"}]},"data":{"type":"object"}},"required":["id","type","at","user_id","data"],"additionalProperties":false}},"next":{"type":"string"}},"required":["events","next"],"additionalProperties":false}"##,
    handler: |c, p| read(c, p).map(Output::from),
    hashes_passwords: false,
}];

fn read(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let after = p
        .opt_str("after")?
        .map(|raw| parse_cursor(raw).ok_or_else(|| AppError::invalid("after", "invalid")))
        .transpose()?;
    let limit = p.limit("limit", LIMIT_DEFAULT, LIMIT_MAX)?;
    let types: Option<Vec<String>> = match p.get("types") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|t| match t.as_str() {
                    Some(t) if KINDS.contains(&t) => Ok(t.to_string()),
                    _ => Err(AppError::invalid("types", "unknown_type")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(AppError::invalid("types", "not_an_array")),
    };
    let (events, next) = account_events::read(ctx, after, types.as_deref(), limit)?;
    let events: Vec<Value> = events.iter().map(event_json).collect();
    Ok(json!({"events": events, "next": cursor_text(next)}))
}
