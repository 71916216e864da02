//! Storing one account moved from elsewhere (`user.import`, the Thrift
//! `createUser` of old callers): account, roles and profile in one
//! transaction, keeping the id it had when given one.

use crate::domain::{Email, ProfilePatch, UserState, Username};
use crate::error::AppError;
use crate::services::Ctx;
use crate::store::accounts::{self, InsertError, Kept, NewAccount};

/// An account ready to store: parsed, its password hashed already.
pub struct Row {
    /// Kept as given; `None`: the next id.
    pub id: Option<i64>,
    pub username: Username,
    pub email: Option<Email>,
    pub hash: String,
    pub state: UserState,
    pub roles: Vec<String>,
    pub profile: Option<ProfilePatch>,
}

/// Stores `row`; a taken id, username or email is `Conflict` naming it.
pub fn store(ctx: &Ctx, row: &Row) -> Result<i64, AppError> {
    let mut conn = ctx.pg()?;
    if let Some(id) = row.id {
        accounts::allocate_above(&mut conn.client, id)?;
    }
    let mut tx = conn.client.transaction()?;
    let new = NewAccount {
        username: row.username.as_str(),
        email: row.email.as_ref().map(Email::as_str),
        password_hash: &row.hash,
        state: row.state.as_str(),
        roles: &row.roles,
    };
    let kept = Kept {
        id: row.id,
        ..Kept::default()
    };
    let id = match accounts::insert_kept(&mut tx, &new, &kept) {
        Ok(id) => id,
        Err(InsertError::Conflict(field)) => return Err(AppError::Conflict(field)),
        Err(InsertError::Db(e)) => return Err(e.into()),
    };
    if let Some(profile) = &row.profile {
        ctx.svc.mongo.update_profile(id, &profile.0)?;
    }
    tx.commit()?;
    Ok(id)
}
