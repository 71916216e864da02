//! Passkeys (WebAuthn, through Kanidm's webauthn-rs): registration
//! (`auth.passkey.register_begin` / `register_finish`, with an access token
//! or an account's `pre_` enrolment token), login (`login_begin` /
//! `login_finish`, with or without a username), the owner's list and
//! removal, and what exports and `user.reset_mfa` need.
//!
//! A ceremony's state (the challenge and what it was for) lives in
//! PostgreSQL for 5 minutes and is taken by the finish call that uses it:
//! single use, and any instance may finish what another began. Logins are
//! in `login.rs`.

mod login;

pub use login::{login_begin, login_finish, Asserted};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use webauthn_rs::prelude::{
    Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

use crate::cache::{self, Change};
use crate::domain::{Token, TokenHash, TokenKind};
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::model::mfa::random;
use crate::model::session;
use crate::services::Ctx;
use crate::store::accounts;
use crate::store::passkeys::{self, Kind, NewPasskey, Stored};

/// How long a ceremony may take, begin to finish.
pub const CHALLENGE_TTL_S: i64 = 300;
/// How long a `pre_` enrolment token lives.
pub const ENROLMENT_TTL_S: i64 = 86_400;
/// A passkey's name, as its owner gives it, at most this many characters.
pub const NAME_MAX_CHARS: usize = 64;
const DEFAULT_NAME: &str = "Passkey";

/// The relying party, as `[WEBAUTHN]` configures it (validated at start).
fn relying_party(ctx: &Ctx) -> Result<Webauthn, AppError> {
    let cfg = &ctx.config().webauthn;
    let (Some(rp_id), Some(first)) = (cfg.rp_id.as_deref(), cfg.origins.first()) else {
        return Err(AppError::NotConfigured("WEBAUTHN"));
    };
    let mut builder = WebauthnBuilder::new(rp_id, first)
        .map_err(|e| AppError::Internal(format!("[WEBAUTHN]: {e}")))?
        .rp_name(&cfg.rp_name);
    for origin in &cfg.origins[1..] {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map_err(|e| AppError::Internal(format!("[WEBAUTHN]: {e}")))
}

/// The user handle a passkey carries for an account: derived from its id,
/// so a discoverable login can name the account and nothing else is stored.
fn handle(user_id: i64) -> Uuid {
    Uuid::from_u64_pair(0x7072_6f66_6974_6565, user_id as u64)
}

fn internal(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("passkey {what}: {e}"))
}

/// Who registers a passkey: a session's user, or an account without a
/// password through its one-time enrolment token.
pub struct Enroller {
    pub user_id: i64,
    pub username: String,
    enrolment: Option<TokenHash>,
}

/// `token`: an access token, or a `pre_` enrolment token.
pub fn enroller(ctx: &Ctx, token: &str) -> Result<Enroller, AppError> {
    if Token::kind_of(token) != Some(TokenKind::Enrolment) {
        let info = session::require(ctx, token)?;
        return Ok(Enroller {
            user_id: info.user_id,
            username: info.username.clone(),
            enrolment: None,
        });
    }
    let hash = TokenHash::of(token);
    let mut conn = ctx.pg()?;
    let user_id =
        passkeys::enrolment_user(&mut conn.client, &hash)?.ok_or(AppError::Unauthorized)?;
    let creds =
        accounts::credentials_by_id(&mut conn.client, user_id)?.ok_or(AppError::Unauthorized)?;
    Ok(Enroller {
        user_id,
        username: creds.username,
        enrolment: Some(hash),
    })
}

/// `auth.register` without a password: the account's enrolment token.
pub fn enrolment_token(ctx: &Ctx, user_id: i64) -> Result<String, AppError> {
    let token = Token::generate(TokenKind::Enrolment).map_err(random)?;
    let expires = Utc::now() + ChronoDuration::seconds(ENROLMENT_TTL_S);
    let mut conn = ctx.pg()?;
    passkeys::create_enrolment(&mut conn.client, &token.hash(), user_id, expires)?;
    Ok(token.into_string())
}

fn parse_passkey(stored: &Stored) -> Result<Passkey, AppError> {
    serde_json::from_str(&stored.credential).map_err(|e| internal("stored credential", e))
}

/// A new ceremony's id: 128 random bits, base64url.
fn new_challenge_id() -> Result<String, AppError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn store_challenge(
    ctx: &Ctx,
    kind: Kind,
    user_id: Option<i64>,
    state: &impl serde::Serialize,
) -> Result<String, AppError> {
    let id = new_challenge_id()?;
    let state = serde_json::to_string(state).map_err(|e| internal("state", e))?;
    let expires = Utc::now() + ChronoDuration::seconds(CHALLENGE_TTL_S);
    let mut conn = ctx.pg()?;
    passkeys::create_challenge(&mut conn.client, &id, kind, user_id, &state, expires)?;
    Ok(id)
}

/// The `publicKey` member of webauthn-rs's options: what a browser's
/// `PublicKeyCredential.parse*OptionsFromJSON` takes.
fn public_key(options: impl serde::Serialize) -> Result<Value, AppError> {
    let mut v = serde_json::to_value(options).map_err(|e| internal("options", e))?;
    Ok(v.get_mut("publicKey")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

/// `auth.passkey.register_begin`: `(challenge_id, options)`.
pub fn register_begin(ctx: &Ctx, who: &Enroller) -> Result<(String, Value), AppError> {
    let rp = relying_party(ctx)?;
    let existing = {
        let mut conn = ctx.pg()?;
        passkeys::of_user(&mut conn.client, who.user_id)?
    };
    let exclude = existing
        .iter()
        .map(|s| parse_passkey(s).map(|p| p.cred_id().clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let (ccr, state) = rp
        .start_passkey_registration(
            handle(who.user_id),
            &who.username,
            &who.username,
            Some(exclude),
        )
        .map_err(|e| internal("registration start", e))?;
    let mut options = public_key(ccr)?;
    // A passkey that can name its account: login without a username.
    if let Some(sel) = options
        .get_mut("authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        sel.insert("residentKey".into(), json!("required"));
        sel.insert("requireResidentKey".into(), json!(true));
    }
    let id = store_challenge(ctx, Kind::Register, Some(who.user_id), &state)?;
    Ok((id, options))
}

/// `auth.passkey.register_finish`: the new passkey's id.
pub fn register_finish(
    ctx: &Ctx,
    who: &Enroller,
    challenge_id: &str,
    credential: &RegisterPublicKeyCredential,
    name: Option<&str>,
) -> Result<i64, AppError> {
    let rp = relying_party(ctx)?;
    let mut conn = ctx.pg()?;
    // Taken before it is checked, in its own statement: a failed finish
    // spends it too.
    let challenge = passkeys::take_challenge(&mut conn.client, challenge_id)?
        .filter(|c| c.kind == Kind::Register && c.user_id == Some(who.user_id))
        .ok_or(AppError::Unauthorized)?;
    let state: PasskeyRegistration =
        serde_json::from_str(&challenge.state).map_err(|e| internal("state", e))?;
    let passkey = rp
        .finish_passkey_registration(credential, &state)
        .map_err(|e| {
            log::info!(
                "rid={} passkey registration of user {} refused: {e:?}",
                ctx.rid(),
                who.user_id
            );
            AppError::invalid("credential", "verification_failed")
        })?;
    let serialised = serde_json::to_string(&passkey).map_err(|e| internal("credential", e))?;
    // The counter and backup flag webauthn-rs read from the authenticator.
    let fields: Value = serde_json::from_str(&serialised).map_err(|e| internal("credential", e))?;
    let sign_count = fields["cred"]["counter"].as_i64().unwrap_or(0);
    let backed_up = fields["cred"]["backup_state"].as_bool().unwrap_or(false);
    let name = name.unwrap_or(DEFAULT_NAME);
    let mut tx = conn.client.transaction()?;
    if let Some(hash) = &who.enrolment {
        if passkeys::spend_enrolment(&mut tx, hash)? != Some(who.user_id) {
            return Err(AppError::Unauthorized);
        }
    }
    let new = NewPasskey {
        user_id: who.user_id,
        credential_id: passkey.cred_id().as_ref(),
        name,
        credential: &serialised,
        sign_count,
        backed_up,
    };
    let id = passkeys::insert(&mut tx, &new)?.ok_or(AppError::Conflict("credential"))?;
    let added = Event::new(
        "passkey.added",
        who.user_id,
        json!({"passkey_id": id, "name": name, "backed_up": backed_up}),
    );
    account_events::record(&mut tx, &[added])?;
    cache::commit(&ctx.svc.model.caches, tx, &[Change::User(who.user_id)])?;
    Ok(id)
}

/// `auth.passkey.list` and exports: a user's passkeys, as JSON.
pub fn list(ctx: &Ctx, user_id: i64) -> Result<Vec<Value>, AppError> {
    let mut conn = ctx.pg()?;
    listed(&mut conn.client, user_id)
}

/// [`list`] inside a caller's transaction (`user.export`).
pub fn listed(
    client: &mut impl postgres::GenericClient,
    user_id: i64,
) -> Result<Vec<Value>, AppError> {
    Ok(passkeys::list(client, user_id)?
        .into_iter()
        .map(|p| {
            json!({
                "passkey_id": p.id,
                "name": p.name,
                "created_at": crate::model::user::rfc3339(p.created_at),
                "last_used_at": p.last_used_at.map(crate::model::user::rfc3339),
                "backed_up": p.backed_up,
            })
        })
        .collect())
}

/// `auth.passkey.remove`: one of the caller's own passkeys.
/// The last passkey of an account without a password is kept: without it
/// the account could never sign in again (nor reset a password it has not).
pub fn remove(ctx: &Ctx, user_id: i64, passkey_id: i64) -> Result<(), AppError> {
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    // Locked: two removals at once cannot each leave the other's key last.
    let passwordless = passkeys::lock_owner(&mut tx, user_id)?
        .is_some_and(|hash| hash == crate::model::password::PASSKEY_ONLY);
    if !passkeys::remove(&mut tx, user_id, passkey_id)? {
        return Err(AppError::NotFound);
    }
    if passwordless && passkeys::of_user(&mut tx, user_id)?.is_empty() {
        return Err(AppError::invalid("passkey_id", "last_passkey"));
    }
    let removed = Event::new(
        "passkey.removed",
        user_id,
        json!({"passkey_id": passkey_id, "by": "user"}),
    );
    account_events::record(&mut tx, &[removed])?;
    cache::commit(&ctx.svc.model.caches, tx, &[Change::User(user_id)])?;
    Ok(())
}

/// `user.reset_mfa`: every passkey of the user goes, inside the caller's
/// transaction; the events to record.
pub fn remove_all(
    client: &mut impl postgres::GenericClient,
    user_id: i64,
) -> Result<Vec<Event>, AppError> {
    Ok(passkeys::remove_all(client, user_id)?
        .into_iter()
        .map(|id| {
            Event::new(
                "passkey.removed",
                user_id,
                json!({"passkey_id": id, "by": "operator"}),
            )
        })
        .collect())
}
