//! Passkey logins: `auth.passkey.login_begin` (with a login name: that
//! account's passkeys; without: any discoverable passkey) and
//! `login_finish`, which opens a session like a password would
//! (`sessions::create`, amr `hwk`). A failed one counts against the login
//! limits like a wrong password; a counter that went backwards is refused
//! and logged.

use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, PasskeyAuthentication, PublicKeyCredential,
    WebauthnError,
};

use super::{handle, internal, parse_passkey, public_key, relying_party, store_challenge};
use crate::domain::UserState;
use crate::error::AppError;
use crate::model::account_events;
use crate::model::limits::LoginLimits;
use crate::model::login::{self, event, Opened};
use crate::model::session::Minted;
use crate::services::Ctx;
use crate::store::accounts;
use crate::store::passkeys::{self, Kind};
use crate::store::sessions::{self, Stale, Verified};

/// `auth.passkey.login_begin`: `(challenge_id, options)`. With a login
/// name, the options list that account's passkeys; without, any passkey
/// of this relying party may answer (it names its account itself).
pub fn login_begin(ctx: &Ctx, login: Option<&str>) -> Result<(String, Value), AppError> {
    let rp = relying_party(ctx)?;
    let Some(login) = login else {
        let (rcr, state) = rp
            .start_discoverable_authentication()
            .map_err(|e| internal("login start", e))?;
        let id = store_challenge(ctx, Kind::Discoverable, None, &state)?;
        return Ok((id, public_key(rcr)?));
    };
    let (user_id, stored) = {
        let mut conn = ctx.pg()?;
        // An unknown name and an account without passkeys answer alike.
        let creds = accounts::credentials(&mut conn, login)?.ok_or(AppError::InvalidCredentials)?;
        (creds.id, passkeys::of_user(&mut conn.client, creds.id)?)
    };
    if stored.is_empty() {
        return Err(AppError::InvalidCredentials);
    }
    let keys = stored
        .iter()
        .map(parse_passkey)
        .collect::<Result<Vec<_>, _>>()?;
    let (rcr, state) = rp
        .start_passkey_authentication(&keys)
        .map_err(|e| internal("login start", e))?;
    let id = store_challenge(ctx, Kind::Login, Some(user_id), &state)?;
    Ok((id, public_key(rcr)?))
}

/// A passkey login as asked.
pub struct Asserted<'a> {
    pub challenge_id: &'a str,
    pub credential: &'a PublicKeyCredential,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// The ceremony's state, by kind.
enum State {
    Login(PasskeyAuthentication),
    Discoverable(DiscoverableAuthentication),
}

/// `auth.passkey.login_finish`: a session, as `auth.login` opens one.
pub fn login_finish(ctx: &Ctx, a: &Asserted) -> Result<Opened, AppError> {
    let rp = relying_party(ctx)?;
    let mut conn = ctx.pg()?;
    let challenge = passkeys::take_challenge(&mut conn.client, a.challenge_id)?
        .filter(|c| c.kind != Kind::Register)
        .ok_or(AppError::Unauthorized)?;
    let parse = |e| internal("state", e);
    let state = match challenge.kind {
        Kind::Discoverable => {
            State::Discoverable(serde_json::from_str(&challenge.state).map_err(parse)?)
        }
        _ => State::Login(serde_json::from_str(&challenge.state).map_err(parse)?),
    };
    // The passkey the authenticator used, and so the account.
    let used = passkeys::by_credential_id(&mut conn.client, a.credential.raw_id.as_ref())?;
    let owner = match (&state, challenge.user_id, &used) {
        (State::Login(_), Some(user_id), Some(p)) if p.user_id == user_id => Some(p),
        (State::Discoverable(_), None, Some(p)) => rp
            .identify_discoverable_authentication(a.credential)
            .ok()
            .filter(|(uuid, _)| *uuid == handle(p.user_id))
            .map(|_| p),
        _ => None,
    };
    let account = match (owner, challenge.user_id) {
        (Some(p), _) => Some(p.user_id),
        (None, Some(user_id)) => Some(user_id),
        (None, None) => None,
    };
    let creds = match account {
        Some(id) => accounts::credentials_by_id(&mut conn.client, id)?,
        None => None,
    };
    drop(conn);
    let name = creds
        .as_ref()
        .map(|c| c.username.clone())
        .unwrap_or_default();
    let user_id = creds.as_ref().map(|c| c.id);
    let note = |ok: bool, reason: Option<&'static str>| {
        event(ctx, user_id, &name, ok, reason, a.ip, a.user_agent);
    };
    // Counted like a password guess on the account (an unknown passkey:
    // on the address alone), before the signature is checked.
    let attempt = match LoginLimits::new(ctx, &name, a.ip).admit(ctx) {
        Ok(attempt) => attempt,
        Err(e) => {
            note(false, Some("rate_limited"));
            return Err(e);
        }
    };
    let (Some(stored), Some(creds)) = (owner, creds) else {
        note(false, Some("unknown_passkey"));
        return Err(AppError::InvalidCredentials);
    };
    let mut passkey = parse_passkey(stored)?;
    let checked = match state {
        State::Login(s) => rp.finish_passkey_authentication(a.credential, &s),
        State::Discoverable(s) => rp.finish_discoverable_authentication(
            a.credential,
            s,
            &[DiscoverableKey::from(&passkey)],
        ),
    };
    let result = match checked {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            log::warn!(
                "rid={} passkey {} of user {} refused: its signature counter went backwards \
                 (a cloned authenticator?)",
                ctx.rid(),
                stored.id,
                creds.id
            );
            note(false, Some("passkey_counter_regressed"));
            return Err(AppError::InvalidCredentials);
        }
        Err(e) => {
            log::info!(
                "rid={} passkey login of user {} refused: {e:?}",
                ctx.rid(),
                creds.id
            );
            note(false, Some("invalid_passkey"));
            return Err(AppError::InvalidCredentials);
        }
    };
    if UserState::parse(&creds.state) != Some(UserState::Active) {
        attempt.given_back(ctx);
        note(false, Some("account_inactive"));
        return Err(AppError::AccountInactive(creds.state));
    }
    if ctx.config().auth.require_verified_email && creds.email.is_some() && !creds.email_verified {
        attempt.given_back(ctx);
        note(false, Some("email_unverified"));
        return Err(AppError::EmailUnverified);
    }
    passkey.update_credential(&result);
    let serialised = serde_json::to_string(&passkey).map_err(|e| internal("credential", e))?;
    let tokens = Minted::new(ctx)?;
    let verified = Verified {
        user_id: creds.id,
        epoch: creds.epoch,
    };
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let count = i64::from(result.counter());
    if !passkeys::used(
        &mut tx,
        stored.id,
        &serialised,
        count,
        result.backup_state(),
    )? {
        // Another login moved the counter to or past this one meanwhile.
        drop(tx);
        log::warn!(
            "rid={} passkey {} of user {} refused: signature counter {count} already seen",
            ctx.rid(),
            stored.id,
            creds.id
        );
        note(false, Some("passkey_counter_regressed"));
        return Err(AppError::InvalidCredentials);
    }
    let created = sessions::create(
        &mut tx,
        verified,
        a.ip,
        a.user_agent,
        &["hwk"],
        &tokens.pair(),
    )?;
    let session_id = match created {
        Ok(id) => id,
        Err(Stale::Inactive(state)) => {
            drop(tx);
            note(false, Some("account_inactive"));
            return Err(AppError::AccountInactive(state));
        }
        Err(Stale::Changed) => {
            drop(tx);
            note(false, Some("credentials_changed"));
            return Err(AppError::InvalidCredentials);
        }
    };
    account_events::record(&mut tx, &[login::opened(creds.id, session_id, &["hwk"])])?;
    tx.commit()?;
    drop(conn);
    attempt.succeeded(ctx);
    note(true, None);
    Ok(Opened {
        user_id: creds.id,
        session_id,
        tokens,
    })
}
