//! `profiteer import-seed --from PG_URI` against a generated copy of the
//! Python service's schema (`user_00` … `user_99`, the source server's
//! time zone set to New York) with rows in every table, ids in the wrong
//! table (one a duplicate), NULL columns and a hash too costly to keep.

use postgres::{Client, NoTls};
use serde_json::json;

use crate::helpers::*;

/// A throwaway source database, removed when dropped.
struct Source {
    name: String,
}

impl Source {
    fn uri(&self) -> String {
        format!("{}/{}", pg_base(), self.name)
    }
    fn client(&self) -> Client {
        Client::connect(&self.uri(), NoTls).unwrap()
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        remove_database(&self.name);
    }
}

fn old_schema() -> Source {
    let (name, _) = prepare(&Options::default());
    let source = Source { name };
    let mut c = source.client();
    // The old server's local time: what its naive timestamps mean.
    c.batch_execute(&format!(
        "ALTER DATABASE {} SET timezone TO 'America/New_York'",
        source.name
    ))
    .unwrap();
    let mut c = source.client();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let mut sql = String::new();
    for n in 0..100 {
        sql.push_str(&format!(
            "CREATE TABLE user_{n:02} (id integer PRIMARY KEY, password varchar(256), \
             state smallint DEFAULT 0, create_time timestamp, update_time timestamp);\n"
        ));
        for id in [100 + n, 200 + n, 300 + n] {
            // Plaintext (as the old service stored what it was given) or a hash.
            let password = if id % 2 == 0 {
                "'123456'".to_string()
            } else {
                format!("'{hash}'")
            };
            sql.push_str(&format!(
                "INSERT INTO user_{n:02} VALUES ({id}, {password}, 0, \
                 '2021-06-01 12:00:00', '2021-06-02 12:00:00');\n"
            ));
        }
    }
    let costly = bcrypt::hash(PASSWORD, 7).unwrap();
    sql.push_str(&format!(
        "UPDATE user_05 SET password = 'pass105', create_time = '2020-01-02 03:04:05' WHERE id = 105;
         UPDATE user_13 SET password = NULL WHERE id = 313;
         UPDATE user_14 SET state = NULL WHERE id = 214;
         UPDATE user_15 SET state = 2 WHERE id = 215;
         UPDATE user_16 SET create_time = NULL, update_time = NULL WHERE id = 216;
         UPDATE user_17 SET password = '{costly}' WHERE id = 217;
         INSERT INTO user_07 (id, password) VALUES (105, 'elsewhere');
         INSERT INTO user_43 (id, password) VALUES (942, 'stray');
         INSERT INTO user_00 (id, password) VALUES (0, 'zero');"
    ));
    c.batch_execute(&sql).unwrap();
    source
}

#[test]
fn import_seed_copies_every_table_keeping_ids_states_and_times_and_resumes() {
    let source = old_schema();
    let (name, config) = prepare(&Options::default());
    let config = config.display().to_string();
    let import = || run_cli(&["-c", &config, "import-seed", "--from", &source.uri()], "");
    let run = import();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("import-seed: 299 imported, 0 already there, 4 refused"),
        "{}",
        run.stdout
    );
    for line in [
        "refused user_00 id 0: id is not a positive number",
        "refused user_07 id 105: in the wrong table: id 105 belongs in user_05 (user_05 holds it too: a duplicate)",
        "refused user_17 id 217: bcrypt hash of cost 7, above [AUTH] BCRYPT_COST + 2 = 6",
        "refused user_43 id 942: in the wrong table: id 942 belongs in user_42 (user_42 does not hold it)",
    ] {
        assert!(run.stdout.contains(line), "{line}\nnot in\n{}", run.stdout);
    }
    assert!(
        run.stderr.contains("rows/s") && run.stderr.contains("ETA"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("123456") && !run.stderr.contains("123456"));

    // Resumable: a row added meanwhile is copied, the rest skipped.
    source
        .client()
        .batch_execute("INSERT INTO user_01 (id, password) VALUES (401, '123456')")
        .unwrap();
    let again = import();
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again
            .stdout
            .starts_with("import-seed: 1 imported, 299 already there, 4 refused"),
        "{}",
        again.stdout
    );

    let mut app = start(std::path::Path::new(&config), &[]);
    app.name = name;
    app.prefix = format!("{}:", app.name);
    let user = app.ok("user.get", json!({"user_id": 105}));
    assert_eq!(user["username"], "user_105");
    assert_eq!(user["state"], "active");
    // 03:04:05 in New York in January is 08:04:05 UTC.
    assert_eq!(user["created_at"], "2020-01-02T08:04:05.000Z");
    app.ok(
        "auth.login",
        json!({"username": "user_105", "password": "pass105"}),
    );
    app.ok(
        "auth.login",
        json!({"username": "user_201", "password": PASSWORD}),
    );
    app.ok(
        "auth.login",
        json!({"username": "user_200", "password": "123456"}),
    );
    assert_eq!(
        app.ok("user.get", json!({"user_id": 214}))["state"],
        "active"
    );
    assert_eq!(
        app.ok("user.get", json!({"user_id": 215}))["state"],
        "disabled"
    );
    let summer = app.ok("user.get", json!({"user_id": 250}));
    assert_eq!(
        summer["created_at"], "2021-06-01T16:00:00.000Z",
        "EDT is UTC-4"
    );
    assert_eq!(summer["updated_at"], "2021-06-02T16:00:00.000Z");
    let undated = app.ok("user.get", json!({"user_id": 216}));
    assert!(
        undated["created_at"].as_str().unwrap() > "2025",
        "{undated}"
    );
    // A NULL password: an account without a usable password, keeping its
    // id, state and times; no password logs in, a reset gives it one.
    let unusable = app.ok("user.get", json!({"user_id": 313}));
    assert_eq!(unusable["username"], "user_313");
    assert_eq!(unusable["state"], "active");
    assert_eq!(unusable["email_verified"], false);
    assert_eq!(unusable["created_at"], "2021-06-01T16:00:00.000Z");
    for guess in ["!", "", "123456", PASSWORD] {
        app.err(
            "auth.login",
            json!({"username": "user_313", "password": guess}),
            -32011,
        );
    }
    let reset = app.ok(
        "auth.request_password_reset",
        json!({"username": "user_313"}),
    );
    app.ok(
        "auth.reset_password",
        json!({"reset_token": reset["reset_token"], "new_password": PASSWORD}),
    );
    app.ok(
        "auth.login",
        json!({"username": "user_313", "password": PASSWORD}),
    );
    for id in [0, 217, 942] {
        app.err("user.get", json!({"user_id": id}), -32013);
    }
    let stored: String = app
        .pg()
        .query_one("SELECT password_hash FROM users WHERE id = 201", &[])
        .unwrap()
        .get(0);
    assert!(bcrypt::verify(PASSWORD, &stored).unwrap());
    let plain: String = app
        .pg()
        .query_one("SELECT password_hash FROM users WHERE id = 200", &[])
        .unwrap()
        .get(0);
    assert!(plain.starts_with("$2b$04$"), "hashed at BCRYPT_COST");
    assert!(app.register("newcomer") > 401);
}
