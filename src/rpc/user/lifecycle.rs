//! `user.export`, `user.delete` and `user.update_account` (admin): the
//! params parsed, `model::lifecycle` does the work.

use serde_json::{json, Value};

use crate::domain::{Email, Username};
use crate::error::AppError;
use crate::model::identity::{self, AccountUpdate};
use crate::model::{lifecycle, user};
use crate::rpc::{Output, Params};
use crate::services::Ctx;

pub fn export(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    lifecycle::export(ctx, p.i64("user_id")?)
}

pub fn delete(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    lifecycle::delete(ctx, p.i64("user_id")?)?;
    Ok(json!({"deleted": true}))
}

pub fn update_account(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    let email_verified = match p.get("email_verified") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(AppError::invalid("email_verified", "not_a_boolean")),
    };
    let update = AccountUpdate {
        username: p.opt_str("username")?.map(Username::parse).transpose()?,
        email: p.opt_str("email")?.map(Email::parse).transpose()?,
        email_verified,
    };
    if update.username.is_none() && update.email.is_none() && update.email_verified.is_none() {
        return Err(AppError::invalid("username", "nothing_to_change"));
    }
    identity::update_account(ctx, id, &update)?;
    let user = user::get(ctx, id)?.ok_or(AppError::NotFound)?;
    Ok(Output::User(user))
}
