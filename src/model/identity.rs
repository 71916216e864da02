//! `user.update_account`: an operator changes an account's username,
//! email, or whether its email counts as verified, in one transaction. A
//! username given up is held from every other account for `[AUTH]
//! USERNAME_HOLD_DAYS` (`store::identity`), so a name others know an
//! account by cannot be taken over at once.

use serde_json::json;

use crate::cache::{self, Change};
use crate::domain::{Email, Username};
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::services::Ctx;
use crate::store::accounts::{self, InsertError};
use crate::store::{emails, identity};

/// What to change; `None`: leave as it is.
pub struct AccountUpdate {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub email_verified: Option<bool>,
}

fn insert_error(e: InsertError) -> AppError {
    match e {
        InsertError::Conflict(field) => AppError::Conflict(field),
        InsertError::Db(e) => e.into(),
    }
}

/// `NotFound` for an unknown account; a username taken or held from it,
/// or an email taken, is `Conflict` naming it. A new email is unverified
/// unless `email_verified` says otherwise.
pub fn update_account(ctx: &Ctx, id: i64, u: &AccountUpdate) -> Result<(), AppError> {
    let days = ctx.config().auth.username_hold_days;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let old = identity::lock_username(&mut tx, id)?.ok_or(AppError::NotFound)?;
    if let Some(new) = &u.username {
        if new.as_str() != old {
            if identity::held(&mut tx, new.as_str(), Some(id))? {
                return Err(AppError::Conflict("username"));
            }
            identity::rename(&mut tx, id, &old, new.as_str(), days).map_err(insert_error)?;
        }
    }
    let creds = accounts::credentials_by_id(&mut tx, id)?.ok_or(AppError::NotFound)?;
    let given = u.email.as_ref().map(|e| e.as_str().to_string());
    let changed = given.is_some() && given != creds.email;
    let email = given.or(creds.email);
    let verified = u.email_verified.unwrap_or(creds.email_verified && !changed);
    if email.is_none() && verified {
        return Err(AppError::invalid("email_verified", "no_email"));
    }
    emails::set_email(&mut tx, id, email.as_deref(), verified).map_err(insert_error)?;
    let mut fields = Vec::new();
    if u.username.as_ref().is_some_and(|n| n.as_str() != old) {
        fields.push("username");
    }
    if changed {
        fields.push("email");
    }
    if verified != creds.email_verified || changed {
        fields.push("email_verified");
    }
    if !fields.is_empty() {
        let event = Event::new("user.updated", id, json!({ "fields": fields }));
        account_events::record(&mut tx, &[event])?;
    }
    cache::commit(&ctx.svc.model.caches, tx, &[Change::User(id)])?;
    Ok(())
}
