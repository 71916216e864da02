//! MongoDB through the `mongodb` crate's sync API: profile documents
//! (`_id` = user id) and login events.

use std::collections::HashMap;
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::sync::{Client, Collection, Database};
use mongodb::IndexModel;
use serde_json::Value;

use super::bson_json::profile_json;
use crate::config::MongoConfig;

pub type Result<T> = std::result::Result<T, mongodb::error::Error>;

pub struct Mongo {
    db: Database,
    profiles: Collection<Document>,
    /// The same collection, read as the bytes sent (see `bson_json`).
    profiles_raw: Collection<RawDocumentBuf>,
    events: Collection<Document>,
}

/// A login attempt as stored.
#[derive(Debug, Clone)]
pub struct LoginEvent {
    pub user_id: Option<i64>,
    pub username: String,
    pub at_ms: i64,
    pub ok: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub reason: Option<&'static str>,
}

/// A profile field as stored: `extra` as its JSON text (see `bson_json`:
/// its `$` keys are data, never Extended JSON), the others as BSON.
fn profile_value(key: &str, value: &Value) -> Result<Bson> {
    if key == super::bson_json::EXTRA {
        return Ok(Bson::String(value.to_string()));
    }
    Ok(mongodb::bson::to_bson(value)?)
}

/// A profile's fields as a change gives them (`None`: absent).
pub type ProfileFields = Vec<(String, Option<Value>)>;

impl Mongo {
    pub fn connect(cfg: &MongoConfig) -> std::result::Result<Mongo, String> {
        let mut options = ClientOptions::parse(&cfg.uri)
            .run()
            .map_err(|_| "[MONGO] MONGO_MAIN_URI is not a valid MongoDB URI".to_string())?;
        let db_name = options.default_database.clone().ok_or_else(|| {
            "[MONGO] MONGO_MAIN_URI names no database: expected mongodb://host:port/<database>"
                .to_string()
        })?;
        options.max_pool_size = Some(cfg.pool_size);
        options.server_selection_timeout = Some(cfg.timeout);
        options.connect_timeout = Some(cfg.connect_timeout);
        options.app_name = Some("profiteer".into());
        let client = Client::with_options(options)
            .map_err(|e| format!("[MONGO] MONGO_MAIN_URI: cannot create a client: {e}"))?;
        let db = client.database(&db_name);
        Ok(Mongo {
            profiles: db.collection("profiles"),
            profiles_raw: db.collection("profiles"),
            events: db.collection("login_events"),
            db,
        })
    }

    /// Creates the indexes login history needs; safe to repeat.
    pub fn ensure_indexes(&self) -> Result<()> {
        let model = IndexModel::builder()
            .keys(doc! {"user_id": 1, "at": -1})
            .options(IndexOptions::builder().name("user_at".to_string()).build())
            .build();
        self.events.create_index(model).run().map(|_| ())
    }

    /// Login events expire `keep` after their `at` (a TTL index). An index
    /// made with another lifetime is replaced.
    pub fn ensure_events_ttl(&self, keep: Duration) -> Result<()> {
        let model = || {
            IndexModel::builder()
                .keys(doc! {"at": 1})
                .options(
                    IndexOptions::builder()
                        .name("at_ttl".to_string())
                        .expire_after(Duration::from_secs(keep.as_secs().max(1)))
                        .build(),
                )
                .build()
        };
        if self.events.create_index(model()).run().is_ok() {
            return Ok(());
        }
        // Another lifetime (a changed LOGIN_EVENTS_DAYS): replace it.
        let _ = self.events.drop_index("at_ttl").run();
        self.events.create_index(model()).run().map(|_| ())
    }

    pub fn ping(&self) -> Result<()> {
        self.db.run_command(doc! {"ping": 1}).run().map(|_| ())
    }

    /// `max_time`: the server gives up after this (callers also stop
    /// waiting then: see `Ctx::mongo`).
    pub fn profiles(&self, ids: &[i64], max_time: Duration) -> Result<HashMap<i64, String>> {
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        // At most one document per id: with the limit and the batch size at
        // that count, every document comes in the first reply and the server
        // closes the cursor (no getMore; the default first batch is 101).
        // In `_id` order, the server walks the index once: on the
        // MongoDB-compatible server a `user.gets` of 100 went from 982-1029
        // to 1129-1186 calls/s (`bench/ab`, see `wiki/performance.md`).
        let n = ids.len().min(i32::MAX as usize);
        let cursor = self
            .profiles_raw
            .find(doc! {"_id": {"$in": ids}})
            .sort(doc! {"_id": 1})
            .limit(n as i64)
            .batch_size(n as u32)
            .max_time(max_time)
            .run()?;
        for document in cursor {
            let document = document?;
            if let Ok(id) = document.get_i64("_id") {
                out.insert(id, profile_json(&document)?);
            }
        }
        Ok(out)
    }

    /// Sets (`Some`) and removes (`None`) profile fields; creates the document
    /// if there was none. A value BSON cannot hold is an error, never stored
    /// as null (callers validate first: see `domain::profile`).
    pub fn update_profile(&self, id: i64, changes: &[(String, Option<Value>)]) -> Result<()> {
        let mut set = Document::new();
        let mut unset = Document::new();
        for (key, value) in changes {
            match value {
                Some(v) => set.insert(key.clone(), profile_value(key, v)?),
                None => unset.insert(key.clone(), ""),
            };
        }
        let mut update = Document::new();
        if !set.is_empty() {
            update.insert("$set", set);
        }
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        if update.is_empty() {
            return Ok(());
        }
        self.profiles
            .update_one(doc! {"_id": id}, update)
            .upsert(true)
            .run()
            .map(|_| ())
    }

    /// A new account's whole profile: replaces whatever is stored under its
    /// id (a document a refused row left must not be merged in). Answers the
    /// document written, for [`Mongo::remove_profile_if`].
    pub fn replace_profile(&self, id: i64, fields: &[(String, Option<Value>)]) -> Result<Document> {
        let mut document = Document::new();
        for (key, value) in fields {
            if let Some(v) = value {
                document.insert(key.clone(), profile_value(key, v)?);
            }
        }
        self.profiles
            .replace_one(doc! {"_id": id}, document.clone())
            .upsert(true)
            .run()?;
        Ok(document)
    }

    /// The profiles of a batch of new accounts, in two round trips whatever
    /// their number: whatever is stored under their ids goes, then each
    /// gets exactly its fields. What was written, for
    /// [`Mongo::remove_profile_if`].
    pub fn replace_profiles(
        &self,
        profiles: &[(i64, ProfileFields)],
    ) -> Result<Vec<(i64, Document)>> {
        let mut written = Vec::with_capacity(profiles.len());
        let mut documents = Vec::with_capacity(profiles.len());
        for (id, fields) in profiles {
            let mut document = Document::new();
            for (key, value) in fields {
                if let Some(v) = value {
                    document.insert(key.clone(), profile_value(key, v)?);
                }
            }
            let mut stored = doc! {"_id": *id};
            stored.extend(document.clone());
            documents.push(stored);
            written.push((*id, document));
        }
        let ids: Vec<i64> = profiles.iter().map(|p| p.0).collect();
        self.remove_profiles(&ids)?;
        if !documents.is_empty() {
            self.profiles.insert_many(documents).ordered(false).run()?;
        }
        Ok(written)
    }

    /// Removes any profile stored under `ids` (see [`Mongo::remove_profile`]).
    pub fn remove_profiles(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.profiles
            .delete_many(doc! {"_id": {"$in": ids}})
            .run()
            .map(|_| ())
    }

    /// Removes the profile of `id` if it is still `written` (what a refused
    /// row stored): one written since by another call is left alone.
    pub fn remove_profile_if(&self, id: i64, written: &Document) -> Result<()> {
        let mut filter = doc! {"_id": id};
        for (key, value) in written {
            // `$eq`: a value is data, even one with `$` keys.
            filter.insert(key.clone(), doc! {"$eq": value.clone()});
        }
        self.profiles.delete_one(filter).run().map(|_| ())
    }

    /// Removes any profile stored under `id`: a new account without a
    /// profile must not inherit one.
    pub fn remove_profile(&self, id: i64) -> Result<()> {
        self.profiles.delete_one(doc! {"_id": id}).run().map(|_| ())
    }

    /// Erases what MongoDB holds of a deleted account: its login events up
    /// to `before_ms` and, unless an account has its id again, its profile.
    /// Idempotent: doing it twice is harmless.
    pub fn erase_user(&self, id: i64, before_ms: i64, profile_too: bool) -> Result<()> {
        self.events
            .delete_many(doc! {
                "user_id": id,
                "at": {"$lte": mongodb::bson::DateTime::from_millis(before_ms)},
            })
            .run()?;
        if profile_too {
            self.remove_profile(id)?;
        }
        Ok(())
    }

    /// Inserts events, each under the `_id` it was given when first queued,
    /// so a retry after a lost reply stores nothing twice: an id already
    /// stored counts as written.
    pub fn insert_events(&self, events: &[(ObjectId, LoginEvent)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let docs = events.iter().map(|(id, e)| {
            doc! {
                "_id": id,
                "user_id": e.user_id.map_or(Bson::Null, Bson::Int64),
                "username": &e.username,
                "at": mongodb::bson::DateTime::from_millis(e.at_ms),
                "ok": e.ok,
                "ip": e.ip.clone().map_or(Bson::Null, Bson::String),
                "user_agent": e.user_agent.clone().map_or(Bson::Null, Bson::String),
                "reason": e.reason.map_or(Bson::Null, |r| Bson::String(r.into())),
            }
        });
        match self.events.insert_many(docs).ordered(false).run() {
            Ok(_) => Ok(()),
            Err(e) if only_duplicates(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The newest `limit` events of a user, newest first.
    pub fn recent_events(
        &self,
        user_id: i64,
        limit: i64,
        max_time: Duration,
    ) -> Result<Vec<LoginEvent>> {
        let cursor = self
            .events
            .find(doc! {"user_id": user_id})
            .sort(doc! {"at": -1, "_id": -1})
            .limit(limit)
            .max_time(max_time)
            .run()?;
        let mut out = Vec::new();
        for document in cursor {
            let d = document?;
            let text = |k: &str| d.get_str(k).ok().map(str::to_string);
            out.push(LoginEvent {
                user_id: Some(user_id),
                username: text("username").unwrap_or_default(),
                at_ms: d.get_datetime("at").map_or(0, |t| t.timestamp_millis()),
                ok: d.get_bool("ok").unwrap_or(false),
                ip: text("ip"),
                user_agent: text("user_agent"),
                reason: d.get_str("reason").ok().map(reason_label),
            });
        }
        Ok(out)
    }
}

/// Stored reasons come back as the same static labels we write.
fn reason_label(stored: &str) -> &'static str {
    match stored {
        "invalid_credentials" => "invalid_credentials",
        "account_inactive" => "account_inactive",
        "rate_limited" => "rate_limited",
        "mfa_required" => "mfa_required",
        "invalid_mfa_code" => "invalid_mfa_code",
        "mfa_disabled" => "mfa_disabled",
        "mfa_reset" => "mfa_reset",
        "email_unverified" => "email_unverified",
        _ => "other",
    }
}

/// Whether every write error of an insert is a duplicate `_id` (code 11000).
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| !w.is_empty() && w.iter().all(|w| w.code == 11000))
        }
        _ => false,
    }
}
