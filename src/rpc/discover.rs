//! `rpc.discover`: an OpenRPC 1.x document generated from the same method
//! table the dispatcher uses, so it cannot drift from what is served.

use std::sync::OnceLock;

use serde_json::{json, Value};

use super::methods;

fn schema(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

pub fn document() -> Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let methods: Vec<Value> = methods()
            .map(|m| {
                json!({
                    "name": m.name,
                    "summary": m.summary,
                    "paramStructure": "by-name",
                    "params": m.params.iter().map(|p| json!({
                        "name": p.name,
                        "required": p.required,
                        "schema": schema(p.schema),
                    })).collect::<Vec<_>>(),
                    "result": {"name": "result", "schema": schema(m.result)},
                })
            })
            .collect();
        json!({
            "openrpc": "1.3.2",
            "info": {
                "title": "profiteer",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Accounts, logins, tokens, permissions and user information over JSON-RPC 2.0.",
            },
            "methods": methods,
        })
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_in_the_table_is_valid_json() {
        for m in methods() {
            assert!(
                serde_json::from_str::<Value>(m.result).is_ok(),
                "{} result",
                m.name
            );
            for p in m.params {
                assert!(
                    serde_json::from_str::<Value>(p.schema).is_ok(),
                    "{}.{}",
                    m.name,
                    p.name
                );
            }
        }
    }

    #[test]
    fn the_document_lists_every_dispatched_method_once() {
        let doc = document();
        let names: Vec<&str> = doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        assert!(names.contains(&"auth.login") && names.contains(&"user.gets"));
    }
}
