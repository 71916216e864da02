//! What one request may cost: an answer never passes `[SERVER]
//! MAX_ANSWER_BYTES`, whatever its params. A call whose answer would pass it
//! answers -32003 and the other calls of its batch still answer.
//! (Issue 28: 100 `user.gets` of profiles full of characters JSON escapes
//! made a 1.39 GB answer and 5.4 GB of server memory.)

use serde_json::{json, Value};

use super::*;

const LIMIT: usize = 64 * 1024;

/// A profile at the limits, in a character JSON writes as `\u0001` (six
/// bytes each): about 13 KB of User.
fn escaped_profile() -> Value {
    let c = |n: usize| "\u{1}".repeat(n);
    json!({"nickname": c(64), "avatar": c(512), "bio": c(1024), "extra": {"k": c(600)}})
}

/// An app with a 64 KiB answer limit and `n` users with such profiles;
/// their ids.
fn app_with_large_users(n: usize) -> (TestApp, Vec<i64>) {
    let app = spawn_with(Options {
        ini: format!("[SERVER]\nMAX_ANSWER_BYTES = {LIMIT}\n"),
        ..Options::default()
    });
    let rows = (0..n)
        .map(|i| {
            let mut r = row(&format!("large{i}"));
            r["profile"] = escaped_profile();
            r
        })
        .collect();
    import_all(&app, rows);
    let ids = (0..n)
        .map(|i| {
            app.ok("user.find", json!({"username": format!("large{i}")}))["user_id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    (app, ids)
}

fn call(method: &str, params: Value, id: i64) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
}

fn assert_too_large(answer: &Value, id: i64) {
    assert_eq!(answer["id"], id, "{answer}");
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert_eq!(answer["error"]["data"]["limit"], LIMIT, "{answer}");
}

#[test]
fn calls_whose_answers_would_pass_max_answer_bytes_answer_32003_and_the_rest_of_the_batch_answers()
{
    let (app, ids) = app_with_large_users(10);
    let batch = json!([
        call("user.gets", json!({"user_ids": ids}), 1),
        call("ping", json!({}), 2),
        call("user.get", json!({"user_id": ids[0]}), 3),
        call("user.search", json!({"limit": 100}), 4),
        call("user.gets", json!({"user_ids": &ids[..2]}), 5),
        call("ping", json!({}), 6),
    ]);
    let answer = app.post(&batch.to_string());
    assert_eq!(answer.status, 200);
    assert!(answer.body.len() <= LIMIT, "{} bytes", answer.body.len());
    let answers = answer.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 6);
    assert_too_large(&answers[0], 1);
    assert_eq!(answers[1]["result"], "pong");
    assert_eq!(answers[2]["result"]["user_id"], ids[0]);
    assert_eq!(answers[2]["result"]["profile"], escaped_profile());
    assert_too_large(&answers[3], 4);
    assert_eq!(answers[4]["result"]["users"].as_array().unwrap().len(), 2);
    assert_eq!(answers[5]["result"], "pong");
    let metrics = app.get("/metrics").text();
    assert!(
        metrics.contains(r#"method="user.gets",outcome="answer_too_large"} 1"#),
        "{metrics}"
    );
}

#[test]
fn a_single_call_whose_answer_would_pass_max_answer_bytes_answers_32003() {
    let (app, ids) = app_with_large_users(6);
    let r = app.rpc("user.gets", json!({"user_ids": ids}));
    assert_too_large(&r, 1);
    let r = app.rpc("user.search", json!({"limit": 100}));
    assert_too_large(&r, 1);
    // Under the limit, the same call answers in full.
    let users = app.ok("user.gets", json!({"user_ids": &ids[..4]}));
    assert_eq!(users["users"].as_array().unwrap().len(), 4);
}

#[test]
fn a_batch_of_a_hundred_large_user_gets_answers_within_max_answer_bytes() {
    let (app, ids) = app_with_large_users(3);
    let batch: Vec<Value> = (0..100)
        .map(|i| call("user.gets", json!({"user_ids": ids}), i))
        .collect();
    let answer = app.post(&json!(batch).to_string());
    assert!(answer.body.len() <= LIMIT, "{} bytes", answer.body.len());
    let answers = answer.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 100);
    // Each is about 40 KB: the first fits, then none does.
    assert_eq!(answers[0]["result"]["users"].as_array().unwrap().len(), 3);
    for (i, a) in answers.iter().enumerate().skip(1) {
        assert_too_large(a, i as i64);
    }
}
