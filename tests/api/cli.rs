//! The operator commands, run as the real binary: `check-config`,
//! `migrate`, `create-admin`, and `--help` for each.

use serde_json::json;

use crate::helpers::*;

/// A prepared database and config, removed when dropped.
struct Scratch {
    name: String,
    config: String,
}

impl Scratch {
    fn new(opts: &Options) -> Scratch {
        let (name, config) = prepare(opts);
        Scratch {
            name,
            config: config.display().to_string(),
        }
    }

    fn run(&self, command: &[&str], stdin: &str) -> Run {
        let mut args = vec!["-c", self.config.as_str()];
        args.extend_from_slice(command);
        run_cli(&args, stdin)
    }

    /// The server on this database; its drop removes the database.
    fn serve(mut self) -> TestApp {
        let mut app = start(std::path::Path::new(&self.config), &[]);
        app.name = std::mem::take(&mut self.name);
        app.prefix = format!("{}:", app.name);
        app
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            remove_database(&self.name);
        }
    }
}

#[test]
fn every_command_has_help_and_a_bad_one_exits_2() {
    for args in [
        vec!["--help"],
        vec!["check-config", "--help"],
        vec!["migrate", "--help"],
        vec!["create-admin", "--help"],
        vec!["import-seed", "--help"],
    ] {
        let run = run_cli(&args, "");
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.contains("Usage: profiteer"),
            "{args:?}: {}",
            run.stdout
        );
    }
    let run = run_cli(&["--help"], "");
    for command in ["check-config", "migrate", "create-admin", "-H", "-P", "-c"] {
        assert!(run.stdout.contains(command), "{command} in {}", run.stdout);
    }
    assert_eq!(run_cli(&["no-such-command"], "").code, Some(2));
    assert_eq!(run_cli(&["create-admin"], "").code, Some(2));
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_masked() {
    let key_hash = "ab".repeat(32);
    let (mfa_key, mfa_previous) = ("1f".repeat(32), "2e".repeat(32));
    let opts = Options {
        ini: format!(
            "[PG]\nPG_URI = {}/x?password=querysecret\n[CLIENTS]\ngateway = {key_hash} auth.*\n\
             [AUTH]\nMFA_KEY = {mfa_key}\nMFA_KEY_PREVIOUS = {mfa_previous}\n",
            pg_base().replace("postgres@", "postgres:hunter2secret@")
        ),
        ..Default::default()
    };
    let scratch = Scratch::new(&opts);
    let run = scratch.run(&["-H", "0.0.0.0", "check-config"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let out = &run.stdout;
    for secret in [
        "hunter2secret",
        "querysecret",
        key_hash.as_str(),
        mfa_key.as_str(),
        mfa_previous.as_str(),
    ] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
        assert!(
            !run.stderr.contains(secret),
            "{secret} logged:\n{}",
            run.stderr
        );
    }
    for line in [
        "[SERVER]",
        "HOST = 0.0.0.0", // -H before the command applies, as it would to serve
        "BCRYPT_COST = 4",
        "ACCESS_TTL_S = 900",
        "postgres:***@",
        "password=***",
        "gateway = *** auth.*",
        "admin = *",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
}

/// Issue 28: a Mongo URI's `authMechanismProperties` and most of a Redis
/// password with an unencoded `/` were printed.
#[test]
fn check_config_masks_passwords_however_written_and_secret_query_parameters() {
    let opts = Options {
        redis_uri: Some("redis://:pass/wordsecret@127.0.0.1:6379/0".into()),
        mongo_uri: Some(
            "mongodb://u:p@127.0.0.1:27017/x?authMechanism=MONGODB-AWS\
             &authMechanismProperties=AWS_SESSION_TOKEN:sessionsecret"
                .into(),
        ),
        ..Default::default()
    };
    let scratch = Scratch::new(&opts);
    let run = scratch.run(&["check-config"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for secret in ["wordsecret", "sessionsecret", "AWS_SESSION_TOKEN"] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} printed:\n{}",
            run.stdout
        );
    }
    for line in [
        "REDIS_URI = redis://:***@127.0.0.1:6379/0",
        "authMechanismProperties=***",
    ] {
        assert!(
            run.stdout.contains(line),
            "{line:?} missing from:\n{}",
            run.stdout
        );
    }
}

#[test]
fn check_config_refuses_a_bad_config_with_exit_2_naming_the_key() {
    let opts = Options {
        ini: "[AUTH]\nBCRYPT_COST = 40\n".into(),
        ..Default::default()
    };
    let scratch = Scratch::new(&opts);
    let run = scratch.run(&["check-config"], "");
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    assert!(
        run.stderr.contains("[AUTH] BCRYPT_COST = 40"),
        "{}",
        run.stderr
    );
    assert_eq!(run_cli(&["check-config"], "").code, Some(2), "no -c");
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let scratch = Scratch::new(&Options::default());
    for _ in 0..2 {
        let run = scratch.run(&["migrate"], "");
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(
            run.stdout.starts_with("schema at version "),
            "{}",
            run.stdout
        );
    }
    let mut pg =
        postgres::Client::connect(&format!("{}/{}", pg_base(), scratch.name), postgres::NoTls)
            .unwrap();
    let tables: i64 = pg
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', 'schema_migrations')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 2);
}

#[test]
fn migrate_against_a_dead_postgres_fails_with_exit_1() {
    let opts = Options {
        ini: "[PG]\nPG_URI = postgres://postgres@127.0.0.1:1/x\nPG_POOL_TIMEOUT = 1\n".into(),
        ..Default::default()
    };
    let scratch = Scratch::new(&opts);
    let run = scratch.run(&["migrate"], "");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot connect to PostgreSQL"),
        "{}",
        run.stderr
    );
}

#[test]
fn create_admin_creates_an_account_that_logs_in_with_the_admin_role() {
    let scratch = Scratch::new(&Options::default());
    let run = scratch.run(
        &["create-admin", "--username", "Root"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("created the account root"),
        "{}",
        run.stdout
    );
    assert!(!run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD));
    let app = scratch.serve();
    let tokens = app.ok(
        "auth.login",
        json!({"username": "root", "password": PASSWORD}),
    );
    let me = app.ok("auth.introspect", json!({"token": tokens["access_token"]}));
    assert_eq!(me["roles"], json!(["admin"]));
}

#[test]
fn create_admin_grants_the_role_to_an_existing_account_only_with_existing_and_keeps_its_password() {
    let scratch = Scratch::new(&Options::default());
    let config = scratch.config.clone();
    let app = scratch.serve();
    let (id, tokens) = app.register_and_login("alice");
    // Cached before the grant: the grant must reach the running server.
    let before = app.ok("auth.introspect", json!({"token": tokens["access_token"]}));
    assert_eq!(before["roles"], json!([]));
    assert_eq!(
        app.ok("user.get", json!({"user_id": id}))["roles"],
        json!([])
    );

    // The attacker's review: whoever registered the name first became admin
    // with their own password. Without --existing it is refused, unchanged.
    let run = run_cli(
        &["-c", &config, "create-admin", "--username", "alice"],
        "another strong password\n",
    );
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    assert!(run.stderr.contains("--existing"), "{}", run.stderr);
    let roles: Vec<String> = app
        .pg()
        .query_one(
            "SELECT ARRAY(SELECT role FROM user_roles WHERE user_id = $1)",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert!(roles.is_empty(), "{roles:?}");

    let run = run_cli(
        &[
            "-c",
            &config,
            "create-admin",
            "--username",
            "alice",
            "--existing",
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("password is unchanged"),
        "{}",
        run.stdout
    );

    let seen = app.eventually(std::time::Duration::from_secs(5), || {
        app.ok("auth.introspect", json!({"token": tokens["access_token"]}))["roles"]
            == json!(["admin"])
    });
    assert!(seen, "the running server never saw the grant");
    assert_eq!(
        app.ok("user.get", json!({"user_id": id}))["roles"],
        json!(["admin"])
    );
    app.ok(
        "auth.login",
        json!({"username": "alice", "password": PASSWORD}),
    );
}

#[test]
fn create_admin_refuses_a_weak_password_and_a_role_missing_from_the_config() {
    let scratch = Scratch::new(&Options::default());
    let run = scratch.run(&["create-admin", "--username", "bob"], "password\n");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("too_weak"), "{}", run.stderr);
    let run = scratch.run(&["create-admin", "--username", "bob"], "");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("no password on stdin"),
        "{}",
        run.stderr
    );
    let run = scratch.run(
        &["create-admin", "--username", "bob", "--role", "owner"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("[ROLES] has no role owner"),
        "{}",
        run.stderr
    );
    let app = scratch.serve();
    app.err("user.find", json!({"username": "bob"}), -32013);
}
