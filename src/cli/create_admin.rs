//! `profiteer create-admin --username NAME`: the first administrator,
//! without an open `user.grant_role` call.
//!
//! - No such account: creates it with the password read from the first line
//!   of stdin (the same policy as `auth.register`) and the role.
//! - The account exists: refused (exit 2), since whoever registered that
//!   name first would become an administrator with their own password.
//!   With `--existing` the role is granted to it and the command says so,
//!   leaving its password alone (stdin is not read).
//!
//! Pending migrations are applied first, as start-up would, so this works on
//! a fresh database before the service ever ran. A grant records the change
//! for the caches in its transaction (`cache::record`), so running
//! instances' change feeds drop the user's cached copies within a second.

use std::io::{BufRead, IsTerminal};

use crate::cache::{self, Change};
use crate::domain::{PasswordPolicy, Role, Username};
use crate::store::accounts::{self, InsertError, NewAccount};
use crate::store::pg;
use crate::Config;

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account's username (3-32 of a-z 0-9 _ . -; upper case is lowered)
    #[arg(long, value_name = "NAME")]
    username: String,

    /// The role to hold; it must be listed in [ROLES]
    #[arg(long, value_name = "ROLE", default_value = "admin")]
    role: String,

    /// Grant the role to an account that exists already (its password is
    /// left as it is); without this flag an existing account is refused
    #[arg(long)]
    existing: bool,
}

pub fn run(config: Config, args: &Args) -> Result<(), Failure> {
    let username = Username::parse(&args.username)
        .map_err(|e| Failure::Refused(format!("--username: {} ({})", args.username, e.reason)))?;
    let role = Role::parse(&args.role)
        .map_err(|e| Failure::Refused(format!("--role: {} ({})", args.role, e.reason)))?;
    if !config.roles.contains_key(role.as_str()) {
        return Err(Failure::Refused(format!(
            "[ROLES] has no role {0}: add a line such as `{0} = *` to the config first",
            role.as_str()
        )));
    }
    let mut client = pg::connect_one(&config.pg).map_err(Failure::Failed)?;
    pg::migrate(&mut client).map_err(Failure::Failed)?;
    let db = |e: postgres::Error| Failure::Failed(format!("PostgreSQL: {e}"));

    if let Some(id) = accounts::id_by_login(&mut client, username.as_str()).map_err(db)? {
        if !args.existing {
            return Err(Failure::Refused(format!(
                "the account {} exists already (user_id {id}): it keeps the password \
                 its owner chose, so it is not made {} unless you pass --existing \
                 (check who registered it first)",
                username.as_str(),
                role.as_str()
            )));
        }
        let mut tx = client.transaction().map_err(db)?;
        accounts::grant_role(&mut tx, id, role.as_str()).map_err(db)?;
        cache::record(&mut tx, &[Change::User(id)]).map_err(db)?;
        tx.commit().map_err(db)?;
        println!(
            "granted role {} to the existing account {} (user_id {id}); its password is unchanged",
            role.as_str(),
            username.as_str()
        );
        return Ok(());
    }

    let raw = read_password()?;
    let policy = PasswordPolicy {
        min_score: config.auth.password_min_score,
    };
    let password = policy
        .check(raw, "password", username.as_str(), None)
        .map_err(|e| Failure::Failed(format!("the password was refused: {}", e.reason)))?;
    let hash = bcrypt::hash(password.expose(), config.auth.bcrypt_cost)
        .map_err(|e| Failure::Failed(format!("bcrypt: {e}")))?;
    let roles = [role.as_str().to_string()];
    let new = NewAccount {
        username: username.as_str(),
        email: None,
        email_verified: false,
        password_hash: &hash,
        state: crate::domain::UserState::Active.as_str(),
        roles: &roles,
    };
    let id = match accounts::insert(&mut client, &new) {
        Ok(id) => id,
        Err(InsertError::Conflict(field)) => {
            return Err(Failure::Failed(format!(
                "{field} {} was taken meanwhile: nothing was changed (see --existing)",
                username.as_str()
            )))
        }
        Err(InsertError::Db(e)) => return Err(db(e)),
    };
    println!(
        "created the account {} (user_id {id}) with role {}",
        username.as_str(),
        role.as_str()
    );
    Ok(())
}

/// The first line of stdin, without its line ending. A terminal is refused:
/// the password would echo as it is typed (and stay in the scrollback).
fn read_password() -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        return Err(Failure::Refused(
            "stdin is a terminal: pipe the new account's password in, e.g. \
             `printf '%s\\n' \"$PASSWORD\" | profiteer create-admin ...`"
                .into(),
        ));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Failed(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Failure::Refused(
            "no password on stdin: pipe the new account's password in, one line".into(),
        ));
    }
    Ok(password)
}
