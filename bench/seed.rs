//! Seeds a migrated profiteer database for the benchmark: N accounts (all
//! with one bcrypt hash of a known password, every one an `editor`), a
//! profile each in MongoDB, and access tokens for the first accounts
//! (written to a file, one per line, stored as SHA-256 like the service's).
//! Prints the first and last id, one bcrypt verification's time in ms and
//! the accounts' bcrypt hash (for `bench/lua/import_hashes.lua`'s rows).
//!
//! `cargo run --release --example seed -- PG_URI MONGO_URI USERS TOKENS COST PASSWORD OUT_TOKENS`

use std::io::Write;

use mongodb::bson::doc;
use profiteer::domain::{Token, TokenKind};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("seed: {what}: {e}");
    std::process::exit(1)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 8 {
        fail(
            "usage",
            "seed PG_URI MONGO_URI USERS TOKENS COST PASSWORD OUT_TOKENS",
        );
    }
    let (pg_uri, mongo_uri) = (&a[1], &a[2]);
    let users: i64 = a[3].parse().unwrap_or_else(|e| fail("USERS", e));
    let tokens: i64 = a[4].parse().unwrap_or_else(|e| fail("TOKENS", e));
    let cost: u32 = a[5].parse().unwrap_or_else(|e| fail("COST", e));
    let hash = bcrypt::hash(&a[6], cost).unwrap_or_else(|e| fail("bcrypt", e));

    let mut pg =
        postgres::Client::connect(pg_uri, postgres::NoTls).unwrap_or_else(|e| fail("postgres", e));
    let mut writer = pg
        .copy_in("COPY users (username, email, password_hash) FROM STDIN")
        .unwrap_or_else(|e| fail("copy", e));
    for i in 0..users {
        writeln!(writer, "bench_{i}\tbench_{i}@example.com\t{hash}")
            .unwrap_or_else(|e| fail("copy row", e));
    }
    writer.finish().unwrap_or_else(|e| fail("copy finish", e));
    pg.batch_execute(
        "INSERT INTO user_roles (user_id, role) SELECT id, 'editor' FROM users WHERE username LIKE 'bench\\_%'",
    )
    .unwrap_or_else(|e| fail("roles", e));
    // As autovacuum leaves a live database: statistics, and the visibility
    // map that lets the roles subquery read its index alone (without it,
    // every user.get also visits the roles table's heap). Each on its own:
    // VACUUM cannot run in the implicit transaction of a multi-statement call.
    for table in ["users", "user_roles"] {
        pg.batch_execute(&format!("VACUUM (ANALYZE) {table}"))
            .unwrap_or_else(|e| fail("vacuum", e));
    }
    let ids: Vec<i64> = pg
        .query(
            "SELECT id FROM users WHERE username LIKE 'bench\\_%' ORDER BY id",
            &[],
        )
        .unwrap_or_else(|e| fail("ids", e))
        .iter()
        .map(|r| r.try_get(0).unwrap_or_else(|e| fail("ids", e)))
        .collect();

    let client =
        mongodb::sync::Client::with_uri_str(mongo_uri).unwrap_or_else(|e| fail("mongo", e));
    let db = client
        .default_database()
        .unwrap_or_else(|| fail("mongo", "no database in URI"));
    db.drop().run().unwrap_or_else(|e| fail("mongo drop", e));
    let profiles = db.collection::<mongodb::bson::Document>("profiles");
    for chunk in ids.chunks(5000) {
        let docs = chunk.iter().map(|id| {
            doc! {"_id": *id, "nickname": format!("Bench {id}"), "bio": "seeded for the benchmark", "extra": r#"{"team":"load"}"#}
        });
        profiles
            .insert_many(docs)
            .ordered(false)
            .run()
            .unwrap_or_else(|e| fail("profiles", e));
    }

    let mut out = std::fs::File::create(&a[7]).unwrap_or_else(|e| fail("token file", e));
    for id in ids.iter().take(tokens as usize) {
        let token = Token::generate(TokenKind::Access).unwrap_or_else(|e| fail("random", e));
        let session: i64 = pg
            .query_one(
                "INSERT INTO sessions (user_id, expires_at) VALUES ($1, now() + interval '1 day') RETURNING id",
                &[id],
            )
            .unwrap_or_else(|e| fail("session", e))
            .try_get(0)
            .unwrap_or_else(|e| fail("session", e));
        pg.execute(
            "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, now() + interval '1 day')",
            &[&token.hash().0.as_slice(), &session],
        )
        .unwrap_or_else(|e| fail("token", e));
        writeln!(out, "{}", token.into_string()).unwrap_or_else(|e| fail("token file", e));
    }
    // One verification's time at this cost, on this machine, now: the
    // bcrypt bound of the report is HASH_WORKERS / this.
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            let _ = bcrypt::verify(&a[6], &hash);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{} {} {:.1} {hash}",
        ids.first().copied().unwrap_or(0),
        ids.last().copied().unwrap_or(0),
        times[2]
    );
}
