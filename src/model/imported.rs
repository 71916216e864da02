//! Storing accounts moved from elsewhere (`user.import`, the Thrift
//! `createUser` of old callers), keeping the ids they had when given one.
//! Each row is all-or-nothing; a batch is not. A batch costs a few round
//! trips whatever its size: its conflicts are found in one query, its new
//! ids drawn in one, its profiles written in two and its accounts, roles
//! and events inserted in one transaction; only plain passwords are done
//! one at a time, on the hashing lane.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::json;

use crate::domain::{Email, ProfilePatch, UserState, Username};
use crate::error::AppError;
use crate::hashlane::Ticket;
use crate::model::account_events::{self, Event};
use crate::model::password as pw;
use crate::services::Ctx;
use crate::store::accounts::{self, NewAccount};
use crate::store::identity;

/// What a row brings to log in with.
pub enum Secret {
    /// A password to check against the policy and hash.
    Plain(String),
    /// A bcrypt hash kept as given (checked by `pw::acceptable_hash`).
    Hash(String),
}

/// An account ready to store, parsed.
pub struct Row {
    /// Kept as given; `None`: the next id.
    pub id: Option<i64>,
    pub username: Username,
    pub email: Option<Email>,
    /// The email was proven where the account comes from.
    pub email_verified: bool,
    pub secret: Secret,
    pub state: UserState,
    pub roles: Vec<String>,
    pub profile: Option<ProfilePatch>,
}

/// What became of each row, in order: the account's id, or why not.
pub type Outcomes = Vec<Result<i64, AppError>>;

/// Stores `rows`. A whole-call error only when nothing could be done: the
/// databases cannot be reached, or every row needs a hash and the lane is
/// full (-32002, which callers in a tight loop hear paced; see
/// `http::delay`). Rows not reached before the deadline are -32001.
pub fn import(ctx: &Ctx, rows: &[Row]) -> Result<Outcomes, AppError> {
    // The lane first, as for a registration: a call that can do nothing
    // but hash is refused for the price of parsing it, before it costs a
    // database round trip.
    let plain = rows
        .iter()
        .filter(|r| matches!(r.secret, Secret::Plain(_)))
        .count();
    let first = (plain > 0).then(|| pw::reserve(ctx));
    if plain == rows.len() && matches!(first, Some(Err(_))) {
        return Err(AppError::Overloaded);
    }
    let mut outcomes: Vec<Option<Result<i64, AppError>>> = vec![None; rows.len()];
    refuse_conflicts(ctx, rows, &mut outcomes)?;
    let hashes = hash_passwords(ctx, rows, first, &mut outcomes);
    let ready: Vec<(usize, String)> = hashes
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| h.map(|h| (i, h)))
        .collect();
    let refused_by_lane = outcomes
        .iter()
        .any(|o| matches!(o, Some(Err(AppError::Overloaded))));
    if ready.is_empty() && refused_by_lane {
        return Err(AppError::Overloaded);
    }
    if !ready.is_empty() {
        store(ctx, rows, &ready, &mut outcomes)?;
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Err(AppError::Timeout)))
        .collect())
}

/// Rows that collide with an account stored already, a held username or
/// an earlier row of the batch: `Conflict` naming the field, before any
/// hash is spent on them. The unique constraints still decide a race.
fn refuse_conflicts(
    ctx: &Ctx,
    rows: &[Row],
    outcomes: &mut [Option<Result<i64, AppError>>],
) -> Result<(), AppError> {
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.id).collect();
    let usernames: Vec<&str> = rows.iter().map(|r| r.username.as_str()).collect();
    let emails: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.email.as_ref().map(Email::as_str))
        .collect();
    let taken = {
        let mut conn = ctx.pg()?;
        accounts::taken_many(&mut conn.client, &ids, &usernames, &emails)?
    };
    let (mut seen_ids, mut seen_names, mut seen_emails) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    for (row, outcome) in rows.iter().zip(outcomes.iter_mut()) {
        let name = row.username.as_str();
        let email = row.email.as_ref().map(Email::as_str);
        let field = if row
            .id
            .is_some_and(|id| taken.ids.contains(&id) || !seen_ids.insert(id))
        {
            Some("user_id")
        } else if taken.usernames.contains(name)
            || taken.held.contains(name)
            || !seen_names.insert(name)
        {
            Some("username")
        } else if email.is_some_and(|e| taken.emails.contains(e) || !seen_emails.insert(e)) {
            Some("email")
        } else {
            None
        };
        if let Some(field) = field {
            *outcome = Some(Err(AppError::Conflict(field)));
        }
    }
    Ok(())
}

/// Each row's hash: given, or its plain password checked and hashed on
/// the lane, one after another while the call's time lasts, the first with
/// the place `first` reserved. Once the lane is full the other plain
/// passwords are refused at once (-32002).
fn hash_passwords<'a>(
    ctx: &Ctx<'a>,
    rows: &[Row],
    mut first: Option<Result<Ticket<'a>, AppError>>,
    outcomes: &mut [Option<Result<i64, AppError>>],
) -> Vec<Option<String>> {
    let mut lane_full = false;
    rows.iter()
        .zip(outcomes.iter_mut())
        .map(|(row, outcome)| {
            if outcome.is_some() {
                return None;
            }
            let raw = match &row.secret {
                Secret::Hash(h) => return Some(h.clone()),
                Secret::Plain(raw) => raw,
            };
            let hashed = if lane_full {
                Err(AppError::Overloaded)
            } else if Instant::now() >= pw::hash_deadline(ctx) {
                Err(AppError::Timeout)
            } else {
                first
                    .take()
                    .unwrap_or_else(|| pw::reserve(ctx))
                    .and_then(|ticket| {
                        let chosen = pw::Chosen {
                            raw: raw.clone(),
                            field: "password",
                            username: row.username.as_str(),
                            email: row.email.as_ref().map(Email::as_str),
                        };
                        pw::check_and_hash(ctx, ticket, chosen)
                    })
            };
            match hashed {
                Ok(hash) => Some(hash),
                Err(e) => {
                    lane_full |= matches!(e, AppError::Overloaded);
                    *outcome = Some(Err(e));
                    None
                }
            }
        })
        .collect()
}

/// Stores the rows of `ready` (index, hash) in one go: ids, profiles, then
/// accounts, roles and `user.created` events in one transaction. A row the
/// insert left out lost a race for its id or a name (`Conflict`); a profile
/// written for a row that was not stored is removed again.
fn store(
    ctx: &Ctx,
    rows: &[Row],
    ready: &[(usize, String)],
    outcomes: &mut [Option<Result<i64, AppError>>],
) -> Result<(), AppError> {
    let ids = {
        let mut conn = ctx.pg()?;
        let kept_max = ready.iter().filter_map(|(i, _)| rows[*i].id).max();
        if let Some(max) = kept_max {
            // Before the kept ids are inserted: no registration from now on
            // can be handed one of them, and the rows without an id get
            // ids above them.
            accounts::allocate_above(&mut conn.client, max)?;
        }
        let new = ready.iter().filter(|(i, _)| rows[*i].id.is_none()).count();
        let mut drawn = match new {
            0 => Vec::new(),
            n => accounts::next_ids(&mut conn.client, n)?,
        }
        .into_iter();
        ready
            .iter()
            .map(|(i, _)| rows[*i].id.or_else(|| drawn.next()))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| AppError::Internal("the id sequence gave too few ids".into()))?
    };
    // The account gets exactly the profile it brings, or none: never a
    // document a refused row (or an erasure not finished) left under a kept id.
    let with_profile: Vec<(i64, Vec<_>)> = ready
        .iter()
        .zip(&ids)
        .filter_map(|((i, _), id)| rows[*i].profile.as_ref().map(|p| (*id, p.0.clone())))
        .collect();
    let kept_bare: Vec<i64> = ready
        .iter()
        .zip(&ids)
        .filter(|((i, _), _)| rows[*i].id.is_some() && rows[*i].profile.is_none())
        .map(|(_, id)| *id)
        .collect();
    let needs_mongo: HashSet<i64> = with_profile
        .iter()
        .map(|p| p.0)
        .chain(kept_bare.iter().copied())
        .collect();
    let written = if needs_mongo.is_empty() {
        Ok(Vec::new())
    } else {
        ctx.mongo(move |m, _| {
            m.remove_profiles(&kept_bare)?;
            m.replace_profiles(&with_profile)
        })
    };
    // MongoDB failed: the rows that needed it are refused with its error,
    // the others are stored.
    let (written, ready, ids) = match written {
        Ok(written) => (written, ready.to_vec(), ids),
        Err(e) => {
            let mut kept = (Vec::new(), Vec::new());
            for (r, id) in ready.iter().zip(ids) {
                if needs_mongo.contains(&id) {
                    outcomes[r.0] = Some(Err(e.clone()));
                } else {
                    kept.0.push(r.clone());
                    kept.1.push(id);
                }
            }
            (Vec::new(), kept.0, kept.1)
        }
    };
    let (ready, ids) = (&ready[..], &ids[..]);
    let stored = insert(ctx, rows, ready, ids);
    let inserted = match &stored {
        Ok(inserted) => inserted.clone(),
        Err(_) => HashSet::new(),
    };
    let refused: Vec<_> = written
        .into_iter()
        .filter(|(id, _)| !inserted.contains(id))
        .collect();
    if !refused.is_empty() {
        // All or nothing: a refused row leaves no profile behind.
        if let Err(e) = ctx.mongo(move |m, _| {
            refused
                .iter()
                .try_for_each(|(id, document)| m.remove_profile_if(*id, document))
        }) {
            log::warn!("rid={} profiles of refused accounts stay", ctx.rid());
            e.to_json(ctx.rid()); // logs the cause
        }
    }
    let inserted = stored?;
    let left_out: Vec<usize> = ready
        .iter()
        .zip(ids)
        .filter(|(_, id)| !inserted.contains(id))
        .map(|((i, _), _)| *i)
        .collect();
    let why = if left_out.is_empty() {
        accounts::Taken::default()
    } else {
        let mut conn = ctx.pg()?;
        let left: Vec<&Row> = left_out.iter().map(|i| &rows[*i]).collect();
        accounts::taken_many(
            &mut conn.client,
            &left.iter().filter_map(|r| r.id).collect::<Vec<_>>(),
            &left.iter().map(|r| r.username.as_str()).collect::<Vec<_>>(),
            &left
                .iter()
                .filter_map(|r| r.email.as_ref().map(Email::as_str))
                .collect::<Vec<_>>(),
        )?
    };
    for ((i, _), id) in ready.iter().zip(ids) {
        outcomes[*i] = Some(if inserted.contains(id) {
            Ok(*id)
        } else {
            let row = &rows[*i];
            let name = row.username.as_str();
            let field = if row.id.is_some_and(|id| why.ids.contains(&id)) {
                "user_id"
            } else if why.usernames.contains(name) || why.held.contains(name) {
                "username"
            } else if row
                .email
                .as_ref()
                .is_some_and(|e| why.emails.contains(e.as_str()))
            {
                "email"
            } else {
                // Taken and given up again since: a name, most likely.
                "username"
            };
            Err(AppError::Conflict(field))
        });
    }
    Ok(())
}

/// The transaction of [`store`]: the ids it inserted.
fn insert(
    ctx: &Ctx,
    rows: &[Row],
    ready: &[(usize, String)],
    ids: &[i64],
) -> Result<HashSet<i64>, AppError> {
    let new: Vec<(i64, NewAccount)> = ready
        .iter()
        .zip(ids)
        .map(|((i, hash), id)| {
            let row = &rows[*i];
            let account = NewAccount {
                username: row.username.as_str(),
                email: row.email.as_ref().map(Email::as_str),
                email_verified: row.email_verified,
                password_hash: hash,
                state: row.state.as_str(),
                roles: &row.roles,
            };
            (*id, account)
        })
        .collect();
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let mut inserted = accounts::insert_many(&mut tx, &new)?;
    // A rename that released one of these names may have committed while
    // the insert waited for it: its hold is visible now.
    let names: Vec<&str> = new
        .iter()
        .filter(|(id, _)| inserted.contains(id))
        .map(|(_, a)| a.username)
        .collect();
    let held = identity::held_among(&mut tx, &names)?;
    if !held.is_empty() {
        let undone: Vec<i64> = new
            .iter()
            .filter(|(id, a)| inserted.contains(id) && held.contains(a.username))
            .map(|(id, _)| *id)
            .collect();
        accounts::delete_many(&mut tx, &undone)?;
        inserted.retain(|id| !undone.contains(id));
    }
    let events: Vec<Event> = new
        .iter()
        .filter(|(id, _)| inserted.contains(id))
        .map(|(id, a)| {
            Event::new(
                "user.created",
                *id,
                json!({"username": a.username, "state": a.state, "roles": a.roles}),
            )
        })
        .collect();
    account_events::record(&mut tx, &events)?;
    tx.commit()?;
    Ok(inserted)
}
