//! The User view: account and roles from PostgreSQL, profile from MongoDB,
//! fetched in parallel and cached in this process. Every write that changes
//! a User ends with `cache::commit(.., Change::User(id))`. While MongoDB
//! cannot be read, Users are answered from PostgreSQL alone, marked
//! `profile_unavailable`, and not cached.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cache::{self, Change};
use crate::domain::ProfilePatch;
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::model::idempotency;
use crate::services::{Ctx, MongoCall};
pub use crate::store::accounts::Search;
use crate::store::accounts::{self, Account, InsertError, Kept, NewAccount};
use crate::store::idempotency as store_keys;
pub use crate::store::mongo::LoginEvent;

/// A User as assembled; sent as `UserJson`.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub state: String,
    pub roles: Vec<String>,
    /// A JSON object, as MongoDB's document was written out
    /// (`store::bson_json`); `{}` without one.
    pub profile: String,
    pub mfa: Mfa,
    /// Only when MongoDB could not be read (then `profile` is `{}`).
    pub profile_unavailable: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// The second factors a user has: `{totp: bool, passkeys: n}`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Mfa {
    pub totp: bool,
    pub passkeys: i64,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub use crate::cache::UserJson;

impl UserJson {
    /// The fields in the order the contract shows them; the profile goes in
    /// as the text it already is.
    fn of(user: &User) -> Result<UserJson, AppError> {
        let mut out = Vec::with_capacity(224 + user.profile.len());
        out.extend_from_slice(b"{\"user_id\":");
        json(&mut out, &user.user_id)?;
        out.extend_from_slice(b",\"username\":");
        json(&mut out, &user.username)?;
        out.extend_from_slice(b",\"email\":");
        json(&mut out, &user.email)?;
        out.extend_from_slice(b",\"email_verified\":");
        json(&mut out, &user.email_verified)?;
        out.extend_from_slice(b",\"state\":");
        json(&mut out, &user.state)?;
        out.extend_from_slice(b",\"roles\":");
        json(&mut out, &user.roles)?;
        out.extend_from_slice(b",\"profile\":");
        out.extend_from_slice(user.profile.as_bytes());
        out.extend_from_slice(b",\"mfa\":");
        json(&mut out, &user.mfa)?;
        if user.profile_unavailable {
            out.extend_from_slice(b",\"profile_unavailable\":true");
        }
        out.extend_from_slice(b",\"created_at\":");
        json(&mut out, &user.created_at)?;
        out.extend_from_slice(b",\"updated_at\":");
        json(&mut out, &user.updated_at)?;
        out.push(b'}');
        let json = String::from_utf8(out)
            .map_err(|e| AppError::Internal(format!("serializing a user: {e}")))?;
        Ok(UserJson {
            user_id: user.user_id,
            json: json.into_boxed_str(),
        })
    }
}

fn json(out: &mut Vec<u8>, value: &impl Serialize) -> Result<(), AppError> {
    serde_json::to_writer(out, value)
        .map_err(|e| AppError::Internal(format!("serializing a user: {e}")))
}

/// `profiles` is `None` when MongoDB could not be read.
fn assemble(account: Account, profiles: Option<&mut HashMap<i64, String>>) -> User {
    let profile_unavailable = profiles.is_none();
    let profile = profiles.and_then(|p| p.remove(&account.id));
    User {
        user_id: account.id,
        username: account.username,
        email: account.email,
        email_verified: account.email_verified,
        state: account.state,
        roles: account.roles,
        profile: profile.unwrap_or_else(|| "{}".to_string()),
        mfa: Mfa {
            totp: account.totp,
            passkeys: account.passkeys,
        },
        profile_unavailable,
        created_at: rfc3339(account.created_at),
        updated_at: rfc3339(account.updated_at),
    }
}

/// One user, or `None` if there is no such account.
pub fn get(ctx: &Ctx, id: i64) -> Result<Option<Arc<UserJson>>, AppError> {
    Ok(get_many(ctx, &[id])?.remove(&id))
}

/// The users among `ids` that exist, keyed by id. Costs a constant number of
/// round trips whatever the count: local cache, then one PostgreSQL query
/// and one MongoDB query in parallel for the rest.
pub fn get_many(ctx: &Ctx, ids: &[i64]) -> Result<HashMap<i64, Arc<UserJson>>, AppError> {
    let svc = ctx.svc;
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing: Vec<i64> = Vec::new();
    for (&id, cached) in ids.iter().zip(svc.model.caches.users(ids)) {
        match cached {
            Some(user) => {
                found.insert(id, user);
            }
            None => missing.push(id),
        }
    }
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(found);
    }
    ctx.check_deadline()?;
    let fetched = if missing.len() > SHARED_FETCH_MAX_IDS {
        fetch(ctx, &missing)?
    } else {
        // Concurrent misses share one fetch from each database (see
        // `model::coalesce`).
        svc.model
            .user_misses
            .get(missing, ctx.call.deadline, &|ids, deadline| {
                fetch(&ctx.until(deadline), ids)
            })?
    };
    found.extend(fetched);
    Ok(found)
}

/// Above this many missed ids a call is a batch already and runs its own
/// fetch, so a big `user.gets` does not delay small reads queued with it.
const SHARED_FETCH_MAX_IDS: usize = 64;

/// The users among `ids`, assembled from PostgreSQL and MongoDB and cached
/// here. MongoDB is waited for within the deadline (`Ctx::start_mongo`);
/// without its answer the Users go out marked `profile_unavailable`.
fn fetch(ctx: &Ctx, ids: &[i64]) -> Result<HashMap<i64, Arc<UserJson>>, AppError> {
    let svc = ctx.svc;
    // Taken before the reads: a change applied meanwhile forbids caching.
    let generation = svc.model.caches.generation();
    // The two fetches run at once: MongoDB on the fetch pool, PostgreSQL
    // right here on the calling thread.
    let wanted = ids.to_vec();
    let profiles = ctx.start_mongo(move |m, max_time| m.profiles(&wanted, max_time));
    let accounts = ctx.read_found(
        |conn| accounts::accounts(conn, ids),
        |found| found.len() == ids.len(),
    )?;
    let mut profiles = profiles_or_none(ctx, profiles);
    let mut assembled = Vec::with_capacity(accounts.len());
    for account in accounts {
        assembled.push(Arc::new(UserJson::of(&assemble(
            account,
            profiles.as_mut(),
        ))?));
    }
    if profiles.is_some() {
        svc.model
            .caches
            .insert_users_if(generation, assembled.iter().cloned());
    }
    Ok(assembled.into_iter().map(|u| (u.user_id, u)).collect())
}

/// The profiles a MongoDB find read, or `None` (logged) when MongoDB could
/// not answer within the request's time: the Users are then answered from
/// PostgreSQL alone (`profile_unavailable`) and not cached.
fn profiles_or_none(
    ctx: &Ctx,
    call: MongoCall<HashMap<i64, String>>,
) -> Option<HashMap<i64, String>> {
    match call.wait() {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!(
                "rid={} profiles not read, answering without them: {e:?}",
                ctx.rid()
            );
            None
        }
    }
}

/// `user.find`: the User whose username or email is `login`.
pub fn find(ctx: &Ctx, login: &str) -> Result<Option<Arc<UserJson>>, AppError> {
    let id = ctx.read_found(
        |conn| accounts::id_by_login(&mut conn.client, login),
        Option::is_some,
    )?;
    match id {
        Some(id) => get(ctx, id),
        None => Ok(None),
    }
}

/// `user.search`: a page of Users in id order, and the cursor of the next
/// page (the last id), if there is one.
pub fn search(ctx: &Ctx, search: &Search) -> Result<(Vec<Arc<UserJson>>, Option<i64>), AppError> {
    let page = usize::try_from(search.limit).unwrap_or(0);
    // One more row than the page tells whether another page follows.
    let one_more = Search {
        limit: search.limit.saturating_add(1),
        ..(*search).clone()
    };
    // Before the rows are read: see `from_accounts`.
    let generation = ctx.svc.model.caches.generation();
    let mut found = ctx.read(|conn| accounts::search(&mut conn.client, &one_more))?;
    let more = found.len() > page;
    found.truncate(page);
    let next = more.then(|| found.last().map(|a| a.id)).flatten();
    Ok((from_accounts(ctx, generation, found)?, next))
}

/// `user.login_history`: the user's latest login events, newest first;
/// `NotFound` for an unknown user.
pub fn login_history(ctx: &Ctx, user_id: i64, limit: i64) -> Result<Vec<LoginEvent>, AppError> {
    {
        let mut conn = ctx.pg()?;
        if !accounts::exists(&mut conn.client, user_id)? {
            return Err(AppError::NotFound);
        }
    }
    ctx.mongo(move |m, max_time| m.recent_events(user_id, limit, max_time))
}

/// The Users of accounts just read from PostgreSQL (`user.search`), in
/// their order: cached ones as cached, the others assembled from these rows
/// and their profiles (one MongoDB find) without asking PostgreSQL again.
/// `generation` was taken before the rows were read, so a row that a change
/// made stale meanwhile is answered but not cached.
fn from_accounts(
    ctx: &Ctx,
    generation: u64,
    accounts: Vec<Account>,
) -> Result<Vec<Arc<UserJson>>, AppError> {
    let svc = ctx.svc;
    let mut users = Vec::with_capacity(accounts.len());
    let mut missing = Vec::new();
    for (i, account) in accounts.into_iter().enumerate() {
        match svc.model.caches.user(account.id) {
            Some(user) => users.push(Some(user)),
            None => {
                users.push(None);
                missing.push((i, account));
            }
        }
    }
    if !missing.is_empty() {
        let wanted: Vec<i64> = missing.iter().map(|(_, a)| a.id).collect();
        let profiles = ctx.start_mongo(move |m, max_time| m.profiles(&wanted, max_time));
        let mut profiles = profiles_or_none(ctx, profiles);
        let mut assembled = Vec::with_capacity(missing.len());
        for (i, account) in missing {
            let user = Arc::new(UserJson::of(&assemble(account, profiles.as_mut()))?);
            assembled.push(user.clone());
            if let Some(slot) = users.get_mut(i) {
                *slot = Some(user);
            }
        }
        if profiles.is_some() {
            svc.model
                .caches
                .insert_users_if(generation, assembled.into_iter());
        }
    }
    Ok(users.into_iter().flatten().collect())
}

/// Creates an account with its profile; its id. The id is settled first
/// (`kept.id`, or one taken from the sequence) and the profile written under
/// it before the account exists, so no account is ever without the profile
/// its caller asked for, and no PostgreSQL transaction waits on MongoDB. The
/// profile replaces whatever document was under the id, and a kept id
/// without a profile has any document removed: a new account never inherits
/// one it did not write. A refused account's profile is removed again; a
/// crash in between leaves at most a document under an id no account has
/// (taken ids are never handed out again; a kept id's is replaced or
/// removed by the next account to keep that id).
///
/// `key`: `auth.register`'s idempotency key, kept with the answer
/// `{user_id}` in the account's transaction; a key another call kept first
/// is `Conflict("idempotency_key")` and nothing is created.
pub fn create(
    ctx: &Ctx,
    new: &NewAccount,
    mut kept: Kept,
    profile: Option<&ProfilePatch>,
    key: Option<&idempotency::Key>,
) -> Result<i64, AppError> {
    {
        let mut conn = ctx.pg()?;
        match kept.id {
            Some(id) => {
                // A kept id already in use must not have its profile
                // overwritten by this row's.
                if accounts::exists(&mut conn.client, id)? {
                    return Err(AppError::Conflict("user_id"));
                }
                accounts::allocate_above(&mut conn.client, id)?;
            }
            None if profile.is_some() => kept.id = Some(accounts::next_id(&mut conn.client)?),
            None => {}
        }
    }
    // The account gets exactly the profile it brings, or none: never a
    // document a refused row (or an erasure not finished) left under its id.
    let written = match (profile, kept.id) {
        (Some(profile), Some(id)) => {
            let fields = profile.0.clone();
            Some((id, ctx.mongo(move |m, _| m.replace_profile(id, &fields))?))
        }
        (None, Some(id)) => {
            ctx.mongo(move |m, _| m.remove_profile(id))?;
            None
        }
        (_, None) => None,
    };
    let stored = insert_account(ctx, new, &kept, key);
    if let (Err(_), Some((id, document))) = (&stored, written) {
        // All or nothing: a refused row leaves no profile behind.
        if let Err(e) = ctx.mongo(move |m, _| m.remove_profile_if(id, &document)) {
            log::warn!(
                "rid={} the profile of refused account {id} stays",
                ctx.rid()
            );
            e.to_json(ctx.rid()); // logs the cause
        }
    }
    stored
}

fn insert_account(
    ctx: &Ctx,
    new: &NewAccount,
    kept: &Kept,
    key: Option<&idempotency::Key>,
) -> Result<i64, AppError> {
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let id = match accounts::insert_kept(&mut tx, new, kept) {
        Ok(id) => id,
        Err(InsertError::Conflict(field)) => return Err(AppError::Conflict(field)),
        Err(InsertError::Db(e)) => return Err(e.into()),
    };
    if let Some(key) = key {
        let answer = serde_json::json!({ "user_id": id }).to_string();
        if !store_keys::remember(&mut tx, &key.scope(ctx), &answer)? {
            return Err(AppError::Conflict("idempotency_key"));
        }
    }
    let created = Event::new(
        "user.created",
        id,
        serde_json::json!({"username": new.username, "state": new.state, "roles": new.roles}),
    );
    account_events::record(&mut tx, &[created])?;
    tx.commit()?;
    Ok(id)
}

/// After a change outside PostgreSQL (a profile in MongoDB): moves the
/// account's `updated_at`, appends `event` and tells the caches.
/// `NotFound` if there is no such account.
pub fn changed(ctx: &Ctx, id: i64, event: Event) -> Result<(), AppError> {
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    if !accounts::touch(&mut tx, id)? {
        return Err(AppError::NotFound);
    }
    account_events::record(&mut tx, &[event])?;
    cache::commit(&ctx.svc.model.caches, tx, &[Change::User(id)])?;
    Ok(())
}
