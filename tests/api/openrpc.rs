//! `rpc.discover` read by the OpenRPC project's own tools: the document
//! parsed and dereferenced by `@open-rpc/schema-utils-js`, every example
//! valid against its method's schemas, calls generated from the schemas by
//! `json-schema-faker` never answered -32602, and results matching their
//! schemas (tests/openrpc/check.js; the npm packages are installed once per
//! machine by scripts/openrpc-tools.sh, outside the repository).

use std::process::Command;

use crate::helpers::*;

fn node_path() -> String {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/openrpc-tools.sh"
    ))
    .output()
    .expect("scripts/openrpc-tools.sh runs");
    assert!(
        out.status.success(),
        "installing the OpenRPC tools failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_openrpc_tools_accept_the_document_and_generated_calls_are_never_invalid_params() {
    let modules = node_path();
    let app = spawn_app();
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/openrpc/check.js"
        ))
        .arg(app.addr.to_string())
        .arg("12")
        .env("NODE_PATH", &modules)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("openrpc: all checks passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("parseOpenRPCDocument: ok"), "{stdout}");
}

/// `rpc.discover`'s examples are facts too: sent as they are to a fresh
/// server, every example's params are accepted (whatever the call then
/// answers for lack of the example's data: an unknown token, a user that
/// does not exist). Their results are checked against the result schemas
/// by check.js above.
#[test]
fn every_examples_params_are_accepted_by_the_server() {
    let app = spawn_app();
    let document = app.ok("rpc.discover", serde_json::json!({}));
    let methods = document["methods"].as_array().unwrap();
    assert!(methods.len() > 20);
    for method in methods {
        let name = method["name"].as_str().unwrap();
        for example in method["examples"].as_array().unwrap() {
            let params: serde_json::Map<String, serde_json::Value> = example["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["name"].as_str().unwrap().to_string(), p["value"].clone()))
                .collect();
            let answer = app.rpc(name, serde_json::Value::Object(params.clone()));
            let code = answer["error"]["code"].as_i64().unwrap_or(0);
            assert!(
                ![-32600, -32601, -32602].contains(&code),
                "{name} {params:?}: {answer}"
            );
        }
    }
}
