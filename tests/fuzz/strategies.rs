//! Fuzz inputs for the JSON-RPC path: raw bytes, mangled JSON, and
//! well-formed calls of every method with params that are sometimes
//! plausible, sometimes hostile. Shared by the in-process fuzz test
//! (`src/rpc/fuzz.rs`) and the one over HTTP against the real binary
//! (`tests/api/fuzz.rs`); each passes in the method table it knows.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// A method and the names of its params.
pub type MethodParams = (String, Vec<String>);

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[a-z0-9_.@-]{0,40}",
        "(pat_|prt_|prs_|pmf_)[A-Za-z0-9_-]{0,48}",
        "[0-9]{1,8}",
        "\\$2[aby]\\$[0-9]{2}\\$[./A-Za-z0-9]{53}",
        "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}",
        "[0-9T:.Z+-]{0,30}",
        Just("\u{0}".to_string()),
        Just("x\u{0}y".to_string()),
        Just("é".repeat(40)),
        Just("a".repeat(5000)),
        Just(String::new()),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..60).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
}

pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                "(nickname|avatar|bio|extra|username|password|password_hash|state|roles|profile|user_id|[a-z_]{1,10})",
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value that might pass the param's own checks, so handlers get past
/// their first line as well as being refused on it.
fn plausible(name: &str) -> BoxedStrategy<Value> {
    let v = match name {
        "username" => "[a-z][a-z0-9_.-]{2,10}".prop_map(Value::from).boxed(),
        "email" => "[a-z]{1,8}@example\\.(com|org)"
            .prop_map(Value::from)
            .boxed(),
        "password" | "new_password" | "old_password" => prop_oneof![
            Just(json!("correct horse battery staple")),
            Just(json!("violet glacier mango lantern 42")),
            "[ -~]{0,80}".prop_map(Value::from),
        ]
        .boxed(),
        "user_id" => (-2i64..40).prop_map(Value::from).boxed(),
        "user_ids" => prop::collection::vec(-2i64..40, 0..8)
            .prop_map(|v| json!(v))
            .boxed(),
        "state" => prop::sample::select(vec!["active", "disabled", "locked", "gone"])
            .prop_map(Value::from)
            .boxed(),
        "role" | "permission" => {
            prop::sample::select(vec!["admin", "editor", "viewer", "post:read", "*"])
                .prop_map(Value::from)
                .boxed()
        }
        "limit" => (-2i64..120).prop_map(Value::from).boxed(),
        "code" => "[0-9]{6}".prop_map(Value::from).boxed(),
        "ip" => "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"
            .prop_map(Value::from)
            .boxed(),
        "profile" => prop::collection::btree_map(
            prop::sample::select(vec!["nickname", "avatar", "bio", "extra"]),
            json_value(),
            0..4,
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        .boxed(),
        "users" => prop::collection::vec(
            (
                "[a-z][a-z0-9]{2,8}",
                prop_oneof![
                    Just(json!({"password": "correct horse battery staple"})),
                    "\\$2b\\$0[4-7]\\$[./A-Za-z0-9]{53}".prop_map(|h| json!({"password_hash": h})),
                    json_value().prop_map(|v| json!({"profile": v})),
                ],
            )
                .prop_map(|(name, extra)| {
                    let mut row = json!({"username": name});
                    if let (Some(row), Some(extra)) = (row.as_object_mut(), extra.as_object()) {
                        row.extend(extra.clone());
                    }
                    row
                }),
            0..4,
        )
        .prop_map(Value::Array)
        .boxed(),
        _ => text().prop_map(Value::from).boxed(),
    };
    prop_oneof![3 => v, 1 => json_value()].boxed()
}

fn params(names: Vec<String>) -> BoxedStrategy<Value> {
    let each: Vec<BoxedStrategy<Option<(String, Value)>>> = names
        .into_iter()
        .map(|n| {
            let name = n.clone();
            prop::option::weighted(0.8, plausible(&n).prop_map(move |v| (name.clone(), v))).boxed()
        })
        .collect();
    (
        each,
        prop::option::weighted(0.1, ("[a-z_]{1,10}", json_value())),
    )
        .prop_map(|(given, extra)| {
            let mut map: Map<String, Value> = given.into_iter().flatten().collect();
            map.extend(extra);
            Value::Object(map)
        })
        .boxed()
}

/// One call of a known method, its envelope sometimes bent.
fn call(methods: Vec<MethodParams>) -> BoxedStrategy<Value> {
    prop::sample::select(methods)
        .prop_flat_map(|(method, names)| {
            let params = prop_oneof![
                8 => params(names),
                1 => json_value(),
                1 => Just(Value::Array(vec![])),
            ];
            let id = prop_oneof![
                Just(json!(1)),
                Just(Value::Null),
                number(),
                text().prop_map(Value::from),
                Just(json!({"id": 1})),
            ];
            let version = prop_oneof![9 => Just(json!("2.0")), 1 => json_value()];
            (
                Just(method),
                params,
                id,
                version,
                any::<bool>(),
                any::<u8>(),
            )
        })
        .prop_map(|(method, params, id, version, with_id, junk)| {
            let mut call = json!({"jsonrpc": version, "method": method, "params": params});
            if with_id || junk % 4 != 0 {
                call["id"] = id;
            }
            if junk == 255 {
                call["method"] = json!(junk);
            }
            call
        })
        .boxed()
}

/// A whole request body.
pub fn body(methods: Vec<MethodParams>) -> BoxedStrategy<Vec<u8>> {
    let one = call(methods.clone());
    let batch = prop::collection::vec(call(methods.clone()), 0..5).prop_map(Value::Array);
    let well_formed = prop_oneof![4 => one, 1 => batch].prop_map(|v| v.to_string().into_bytes());
    let mangled = (
        call(methods),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0usize..3,
    )
        .prop_map(|(v, at, byte, how)| {
            let mut bytes = v.to_string().into_bytes();
            let i = at.index(bytes.len().max(1)).min(bytes.len());
            match how {
                0 => bytes.truncate(i),
                1 => bytes.insert(i, byte),
                _ => {
                    if let Some(b) = bytes.get_mut(i) {
                        *b = byte;
                    }
                }
            }
            bytes
        });
    prop_oneof![
        6 => well_formed,
        2 => mangled,
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
    .boxed()
}
