//! `user.import` rows are all-or-nothing in both stores: a refused row
//! leaves no profile, and a new account never inherits a document it did
//! not write. (Issue 28: a row for id 500 refused on its username left
//! document 500, and the next row importing id 500 without a profile
//! answered the planted bio and avatar.)

use mongodb::bson::doc;
use serde_json::json;

use super::*;

fn planted() -> Value {
    json!({"bio": "planted", "avatar": "https://attacker.example/a.png"})
}

#[test]
fn a_row_refused_on_its_username_leaves_no_profile_for_the_next_account_with_its_id() {
    let app = spawn_app();
    app.register("taken");
    let mut refused = row("taken");
    refused["user_id"] = json!(500);
    refused["profile"] = planted();
    let r = app.ok("user.import", json!({"users": [refused]}));
    assert_eq!(
        r,
        json!({"imported": 0, "errors": [{"index": 0, "code": -32010, "field": "username"}]})
    );
    assert_eq!(profile_doc(&app, 500), None);
    let mut later = row("later");
    later["user_id"] = json!(500);
    import_all(&app, vec![later]);
    assert_eq!(get(&app, 500)["profile"], json!({}));
}

#[test]
fn a_new_account_never_inherits_a_document_left_under_its_id() {
    let app = spawn_app();
    // However it came to be there (a cleanup MongoDB did not answer, an
    // erasure not finished yet): two documents under ids no account has.
    let profiles = app.mongo().collection::<Document>("profiles");
    for id in [600i64, 601] {
        profiles
            .insert_one(doc! {"_id": id, "bio": "planted", "nickname": "old"})
            .run()
            .unwrap();
    }
    let mut bare = row("bare");
    bare["user_id"] = json!(600);
    let mut own = row("own");
    own["user_id"] = json!(601);
    own["profile"] = json!({"nickname": "mine"});
    import_all(&app, vec![bare, own]);
    assert_eq!(get(&app, 600)["profile"], json!({}));
    assert_eq!(get(&app, 601)["profile"], json!({"nickname": "mine"}));
    assert_eq!(profile_doc(&app, 600), None);
}
