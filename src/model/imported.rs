//! Storing one account moved from elsewhere (`user.import`, the Thrift
//! `createUser` of old callers): the profile, then account and roles in one
//! transaction, keeping the id it had when given one.

use crate::domain::{Email, ProfilePatch, UserState, Username};
use crate::error::AppError;
use crate::services::Ctx;
use crate::store::accounts::{Kept, NewAccount};

/// An account ready to store: parsed, its password hashed already.
pub struct Row {
    /// Kept as given; `None`: the next id.
    pub id: Option<i64>,
    pub username: Username,
    pub email: Option<Email>,
    /// The email was proven where the account comes from.
    pub email_verified: bool,
    pub hash: String,
    pub state: UserState,
    pub roles: Vec<String>,
    pub profile: Option<ProfilePatch>,
}

/// Stores `row`; a taken id, username or email is `Conflict` naming it.
/// The profile is written first and no transaction waits on MongoDB: see
/// [`super::user::create`].
pub fn store(ctx: &Ctx, row: &Row) -> Result<i64, AppError> {
    let new = NewAccount {
        username: row.username.as_str(),
        email: row.email.as_ref().map(Email::as_str),
        email_verified: row.email_verified,
        password_hash: &row.hash,
        state: row.state.as_str(),
        roles: &row.roles,
    };
    let kept = Kept {
        id: row.id,
        ..Kept::default()
    };
    super::user::create(ctx, &new, kept, row.profile.as_ref(), None)
}
