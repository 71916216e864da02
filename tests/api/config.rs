//! Start-up: configuration errors stop the process with a message naming
//! section and key; overrides from the environment; schema versions;
//! `/readyz` naming the dependency that is down.

use serde_json::json;

use crate::helpers::*;

fn valid_ini(extra: &str) -> String {
    format!(
        "[PG]\nPG_URI = {}/postgres\n[MONGO]\nMONGO_MAIN_URI = {}\n[REDIS]\nREDIS_URI = {}/0\n{extra}",
        pg_base(),
        mongo_uri("x"),
        redis_base()
    )
}

#[test]
fn configuration_errors_stop_start_up_naming_section_and_key() {
    let cases = [
        (
            valid_ini("[AUTH]\nBCRYPT_COSTS = 4\n"),
            "[AUTH] BCRYPT_COSTS is not a known key",
        ),
        (
            valid_ini("[SERVER]\nMAX_BATCH = lots\n"),
            "[SERVER] MAX_BATCH = \"lots\"",
        ),
        (
            valid_ini("[AUTH]\nBCRYPT_COST = 3\n"),
            "[AUTH] BCRYPT_COST = 3",
        ),
        (valid_ini("[NOPE]\nX = 1\n"), "unknown section [NOPE]"),
        (
            "[PG]\nPG_URI = postgres://x/y\n".to_string(),
            "[MONGO] MONGO_MAIN_URI is missing",
        ),
        (
            valid_ini("").replace("postgres://", "mysql://"),
            "[PG] PG_URI",
        ),
    ];
    for (text, expected) in cases {
        let (code, stderr) = run_to_exit(&text);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn an_unreachable_postgres_stops_start_up_with_a_clear_message() {
    let text = valid_ini("[PG]\nPG_POOL_TIMEOUT = 1\n")
        .replace(&pg_base(), "postgres://postgres@127.0.0.1:1");
    let (code, stderr) = run_to_exit(&text);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn environment_overrides_win_over_the_file() {
    let app = spawn_with(Options {
        env: vec![("PROFITEER_SERVER__MAX_BATCH".into(), "1".into())],
        ..Default::default()
    });
    let two =
        json!([{"jsonrpc":"2.0","method":"ping","id":1},{"jsonrpc":"2.0","method":"ping","id":2}]);
    assert_eq!(app.post(&two.to_string()).json()["error"]["code"], -32600);
}

#[test]
fn the_seed_keys_still_work_and_pg_max_over_only_warns() {
    let app = spawn_with(Options {
        ini: "[GEVENT]\nGEVENT_POOL_SIZE = 3\n[PG]\nPG_MAX_OVER = 10\n".into(),
        ..Default::default()
    });
    assert_eq!(app.ok("ping", json!({})), "pong");
    assert!(app.logs().contains("PG_MAX_OVER is ignored"));
}

#[test]
fn a_database_with_a_newer_schema_is_refused() {
    let app = spawn_app(); // migrates its database
    app.pg()
        .execute("INSERT INTO schema_migrations (version) VALUES (999)", &[])
        .unwrap();
    let text = valid_ini("").replace(
        &format!("{}/postgres", pg_base()),
        &format!("{}/{}", pg_base(), app.name),
    );
    let (code, stderr) = run_to_exit(&text);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("newer than this build knows"), "{stderr}");
}

#[test]
fn migrations_create_the_schema_once_and_record_its_version() {
    let app = spawn_app();
    let versions: Vec<i32> = app
        .pg()
        .query("SELECT version FROM schema_migrations", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // a second instance on the same database starts and applies nothing
    let again = valid_ini("").replace(
        &format!("{}/postgres", pg_base()),
        &format!("{}/{}", pg_base(), app.name),
    );
    let path = std::env::temp_dir().join(format!("{}-again.ini", app.name));
    std::fs::write(&path, again).unwrap();
    let second = start(&path, &[]);
    assert_eq!(
        http(
            second.addr,
            "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
            b""
        )
        .status,
        200
    );
    assert!(!second.logs().contains("schema migrated"));
}

#[test]
fn readyz_names_each_dependency_and_is_503_only_for_postgres() {
    let app = spawn_with(Options {
        redis_uri: Some("redis://127.0.0.1:1/0".into()),
        ..Default::default()
    });
    // Redis or MongoDB down is degraded, not unready: a balancer must not
    // pull every instance at once.
    let r = app.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"status": "degraded", "postgres": "up", "redis": "down", "mongo": "up"})
    );
    // the service itself goes on without Redis
    assert_eq!(app.ok("ping", json!({})), "pong");

    let app = spawn_with(Options {
        mongo_uri: Some("mongodb://127.0.0.1:1/x".into()),
        ..Default::default()
    });
    let r = app.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["mongo"], "down");
    assert_eq!(r.json()["status"], "degraded");
    let e = app.err(
        "auth.register",
        json!({"username": "carol", "password": PASSWORD, "profile": {"nickname": "C"}}),
        -32000,
    );
    assert_eq!(e["data"]["dependency"], "mongo");
    assert!(
        !e.to_string().to_lowercase().contains("connection refused"),
        "{e}"
    );
}

#[test]
fn product_without_clients_refuses_to_start_naming_clients() {
    let (code, stderr) = run_to_exit(&valid_ini("[ENV]\nCURRENT_ENV = Product\n"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("[CLIENTS]"), "{stderr}");
}

#[test]
fn test_and_local_without_clients_start_with_a_warning() {
    // spawn_app runs with CURRENT_ENV = Test and no [CLIENTS].
    let app = spawn_app();
    assert!(
        app.logs().contains("[CLIENTS] is empty"),
        "no warning in:\n{}",
        app.logs()
    );
}
