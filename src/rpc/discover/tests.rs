use serde_json::Value;

use super::*;

fn config() -> Config {
    let ini = "[PG]\nPG_URI = postgres://x@127.0.0.1/x\n\
        [MONGO]\nMONGO_MAIN_URI = mongodb://127.0.0.1:1/x\n\
        [REDIS]\nREDIS_URI = redis://127.0.0.1:1/0\n\
        [ROLES]\nadmin = *\neditor = post:*\nviewer = user:read\n";
    Config::from_sources(ini, Vec::new()).unwrap()
}

#[test]
fn every_schema_in_the_tables_is_valid_json() {
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
    let doc = build(&config());
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
    assert_eq!(names, methods().map(|m| m.name).collect::<Vec<_>>());
}

#[test]
fn every_method_has_an_example_and_its_errors() {
    for m in methods() {
        let Some((_, params, result, _)) = examples::EXAMPLES.iter().find(|e| e.0 == m.name) else {
            panic!("{}: no example in rpc/discover/examples.rs", m.name);
        };
        let params: Value = serde_json::from_str(params).unwrap();
        serde_json::from_str::<Value>(result).expect(m.name);
        for name in params.as_object().unwrap().keys() {
            assert!(
                m.params.iter().any(|p| p.name == name),
                "{}: the example passes {name}, which the method does not take",
                m.name
            );
        }
        for p in m.params.iter().filter(|p| p.required) {
            assert!(
                params.get(p.name).is_some(),
                "{}: example lacks {}",
                m.name,
                p.name
            );
        }
    }
    for (name, ..) in examples::EXAMPLES {
        assert!(
            methods().any(|m| m.name == *name),
            "example of unknown method {name}"
        );
    }
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves_inside_the_document() {
    let doc = build(&config());
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50, "{}", found.len());
    for r in found {
        let pointer = r.strip_prefix('#').expect("only local refs");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[test]
fn configured_roles_and_the_password_policy_are_stated() {
    let doc = build(&config());
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ConfiguredRole"]["enum"],
        serde_json::json!(["admin", "editor", "viewer"])
    );
    assert!(schemas["NewPassword"]["description"]
        .as_str()
        .unwrap()
        .contains("at least 2"));
    assert_eq!(schemas["Username"]["pattern"], r"^[A-Za-z0-9_.\-]{3,32}$");
}

#[test]
fn username_or_email_code_or_recovery_code_and_token_or_user_id_are_exactly_one_of() {
    let doc = build(&config());
    for m in doc["methods"].as_array().unwrap() {
        let one_of = m["x-params-schema"].get("oneOf").is_some();
        let expected = [
            "user.find",
            "auth.request_password_reset",
            "auth.mfa.verify",
            "auth.request_email_verification",
        ]
        .contains(&m["name"].as_str().unwrap());
        assert_eq!(one_of, expected, "{}", m["name"]);
        let any_of = m["x-params-schema"].get("anyOf").is_some();
        assert_eq!(any_of, m["name"] == "user.update_account", "{}", m["name"]);
    }
}
