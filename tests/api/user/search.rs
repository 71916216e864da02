//! `user.search`: prefix, state, role and creation-time filters, and keyset
//! pagination by id with an opaque cursor.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Value};

use super::*;

/// Five accounts with known emails, states, roles and creation times (set in
/// PostgreSQL before anything reads them, so no cache holds older values).
fn population(app: &TestApp) {
    let h = password_hash();
    import_all(
        app,
        vec![
            json!({"username": "alice", "email": "alice@example.com", "password_hash": h, "roles": ["editor"]}),
            json!({"username": "alina", "email": "lina@example.com", "password_hash": h, "state": "locked"}),
            json!({"username": "bob", "email": "al.bob@example.com", "password_hash": h, "roles": ["viewer"]}),
            json!({"username": "carl", "password_hash": h, "state": "disabled", "roles": ["editor"]}),
            json!({"username": "a_z", "password_hash": h}),
        ],
    );
    let mut pg = app.pg();
    for (name, year) in [
        ("alice", 2020),
        ("alina", 2021),
        ("bob", 2022),
        ("carl", 2023),
        ("a_z", 2024),
    ] {
        pg.execute(
            "UPDATE users SET created_at = make_timestamptz($2, 1, 1, 0, 0, 0, 'UTC') WHERE username = $1",
            &[&name, &year],
        )
        .unwrap();
    }
}

/// Usernames of one search, which must fit in one page.
fn found(app: &TestApp, params: Value) -> Vec<String> {
    let r = app.ok("user.search", params.clone());
    assert_eq!(
        r["next_cursor"],
        Value::Null,
        "{params}: more than one page"
    );
    usernames(&r["users"])
}

#[test]
fn search_filters_by_username_or_email_prefix_state_role_and_creation_time() {
    let app = spawn_app();
    population(&app);

    assert_eq!(
        found(&app, json!({})),
        ["alice", "alina", "bob", "carl", "a_z"]
    );
    // bob matches "al" by his email; the query is lower-cased.
    assert_eq!(
        found(&app, json!({"query": "al"})),
        ["alice", "alina", "bob"]
    );
    assert_eq!(
        found(&app, json!({"query": "  AL "})),
        ["alice", "alina", "bob"]
    );
    assert_eq!(found(&app, json!({"query": "lina@"})), ["alina"]);
    assert_eq!(
        found(&app, json!({"query": "alice@example.com"})),
        ["alice"]
    );
    // LIKE wildcards in the query are literal characters.
    assert_eq!(found(&app, json!({"query": "a_"})), ["a_z"]);
    assert_eq!(found(&app, json!({"query": "%"})), Vec::<String>::new());
    assert_eq!(found(&app, json!({"query": "zzz"})), Vec::<String>::new());
    // A prefix, not a substring.
    assert_eq!(found(&app, json!({"query": "lice"})), Vec::<String>::new());

    assert_eq!(found(&app, json!({"state": "locked"})), ["alina"]);
    assert_eq!(found(&app, json!({"state": "disabled"})), ["carl"]);
    assert_eq!(
        found(&app, json!({"state": "active"})),
        ["alice", "bob", "a_z"]
    );
    assert_eq!(found(&app, json!({"role": "editor"})), ["alice", "carl"]);
    assert_eq!(found(&app, json!({"role": "viewer"})), ["bob"]);
    assert_eq!(found(&app, json!({"role": "admin"})), Vec::<String>::new());

    let mid = "2021-06-01T00:00:00Z";
    assert_eq!(
        found(&app, json!({"created_after": mid})),
        ["bob", "carl", "a_z"]
    );
    assert_eq!(
        found(&app, json!({"created_before": mid})),
        ["alice", "alina"]
    );
    // Both bounds are exclusive.
    let alice_at = "2020-01-01T00:00:00Z";
    let alina_at = "2021-01-01T00:00:00Z";
    assert_eq!(
        found(
            &app,
            json!({"created_after": alice_at, "created_before": alina_at})
        ),
        Vec::<String>::new()
    );
    assert_eq!(found(&app, json!({"created_before": alina_at})), ["alice"]);
    assert_eq!(
        found(
            &app,
            json!({"created_after": mid, "created_before": "2023-06-01T02:00:00+02:00"})
        ),
        ["bob", "carl"]
    );
    assert_eq!(
        found(
            &app,
            json!({"query": "al", "state": "active", "role": "editor"})
        ),
        ["alice"]
    );

    // Results are whole Users, as user.get answers them.
    let r = app.ok("user.search", json!({"query": "carl"}));
    let carl = &r["users"][0];
    assert_eq!(carl, &get(&app, id_of(carl)));
    assert_eq!(carl["roles"], json!(["editor"]));
    assert_eq!(carl["created_at"], "2023-01-01T00:00:00.000Z");
}

#[test]
fn search_refuses_bad_filters_naming_the_field_and_reason() {
    let app = spawn_app();
    let bad = [
        (json!({"state": "gone"}), "state", "invalid"),
        (json!({"role": "Bad Role"}), "role", "invalid"),
        (
            json!({"created_after": "yesterday"}),
            "created_after",
            "not_rfc3339",
        ),
        (
            json!({"created_before": 5}),
            "created_before",
            "not_a_string",
        ),
        (json!({"cursor": "abc"}), "cursor", "invalid"),
        (json!({"cursor": 5}), "cursor", "not_a_string"),
        (json!({"limit": 0}), "limit", "out_of_range"),
        (json!({"limit": 101}), "limit", "out_of_range"),
        (json!({"limit": "5"}), "limit", "not_an_integer"),
        (json!({"query": "q".repeat(255)}), "query", "too_long"),
        (json!({"qurey": "a"}), "qurey", "unknown_param"),
    ];
    for (params, field, reason) in bad {
        assert_invalid(&app, "user.search", params, field, reason);
    }
}

/// Every page of a search, following `next_cursor` until it is null.
fn all_pages(app: &TestApp, params: Value, mut between: impl FnMut()) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..200 {
        let mut p = params.clone();
        p["cursor"] = cursor;
        let r = app.ok("user.search", p);
        pages.push(r["users"].as_array().unwrap().iter().map(id_of).collect());
        cursor = r["next_cursor"].clone();
        if cursor.is_null() {
            return pages;
        }
        assert!(cursor.is_string(), "cursor {cursor}");
        between();
    }
    panic!("no last page after 200 pages");
}

#[test]
fn search_pages_twenty_by_default_and_the_last_page_has_a_null_cursor() {
    let app = spawn_app();
    import_all(&app, (0..45).map(|i| row(&format!("user{i:03}"))).collect());
    let mut all: Vec<i64> = app
        .pg()
        .query("SELECT id FROM users", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    all.sort_unstable();

    let pages = all_pages(&app, json!({}), || {});
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [20, 20, 5]);
    assert_eq!(pages.concat(), all);

    // A last page that is exactly full still ends with a null cursor.
    let pages = all_pages(&app, json!({"limit": 15}), || {});
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [15, 15, 15]);
    assert_eq!(pages.concat(), all);

    // Filters and the cursor work together.
    let pages = all_pages(&app, json!({"query": "user01", "limit": 4}), || {});
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(pages.concat(), all[10..20]);

    // A cursor past the end is an empty last page.
    let last = all[44].to_string();
    let r = app.ok("user.search", json!({ "cursor": last }));
    assert_eq!(r, json!({"users": [], "next_cursor": null}));
}

#[test]
fn search_pages_have_no_duplicates_or_gaps_while_accounts_are_inserted() {
    let app = spawn_app();
    import_all(
        &app,
        (0..40).map(|i| row(&format!("first{i:03}"))).collect(),
    );
    let originals: HashSet<i64> = app
        .pg()
        .query("SELECT id FROM users", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    let stop = AtomicBool::new(false);
    let (pages, between) = std::thread::scope(|s| {
        // Inserts racing with the pages (their commits may land in any order,
        // so only the rows committed before a page was read are promised).
        let racer = s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) && i < 30 {
                import_all(&app, vec![row(&format!("racer{i:03}"))]);
                i += 1;
            }
        });
        // And one insert committed between each two pages.
        let mut between = Vec::new();
        let pages = all_pages(&app, json!({"limit": 7}), || {
            between.push(app.register(&format!("between{:03}", between.len())));
        });
        stop.store(true, Ordering::Release);
        racer.join().unwrap();
        (pages, between)
    });

    let listed = pages.concat();
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "ids not strictly increasing (a duplicate or a reorder): {listed:?}"
    );
    let listed: HashSet<i64> = listed.into_iter().collect();
    let lost: Vec<&i64> = originals.iter().filter(|id| !listed.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "rows present from the start were skipped: {lost:?}"
    );
    assert!(!between.is_empty());
    let lost: Vec<&i64> = between.iter().filter(|id| !listed.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "rows committed between pages were skipped: {lost:?}"
    );
    let in_db: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM users", &[])
        .unwrap()
        .get(0);
    assert!(listed.len() as i64 <= in_db);
}

/// A common prefix (4,000+ matches, usernames and emails counted apart) is searched by walking ids in order, a
/// rare one through the prefix indexes (`store::accounts::SEARCH_SPARSE`):
/// both give the same pages, in id order, without gaps or repeats.
#[test]
fn common_and_rare_prefixes_page_through_in_id_order() {
    let app = spawn_app();
    let mut pg = app.pg();
    pg.batch_execute(
        "INSERT INTO users (username, email, password_hash) \
         SELECT 'many' || i, 'many' || i || '@example.com', 'x' FROM generate_series(1, 2200) i; \
         ANALYZE users;",
    )
    .unwrap();
    for (query, expected) in [("many", 2200usize), ("many119", 11)] {
        let (mut seen, mut cursor, mut last) = (Vec::new(), Value::Null, 0);
        loop {
            let mut params = json!({"query": query, "limit": 100});
            if !cursor.is_null() {
                params["cursor"] = cursor.clone();
            }
            let page = app.ok("user.search", params);
            for u in page["users"].as_array().unwrap() {
                let id = id_of(u);
                assert!(id > last, "{query}: id {id} after {last}");
                assert!(u["username"].as_str().unwrap().starts_with(query));
                last = id;
                seen.push(id);
            }
            cursor = page["next_cursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        assert_eq!(seen.len(), expected, "{query}");
    }
}
