//! The second factor: enrolment (`auth.mfa.setup_totp`, then
//! `confirm_totp`), `auth.mfa.disable`, and over storage: opening a user's
//! sealed secret, checking a proof (a TOTP code, accepted once per time
//! step, or a single-use recovery code) inside the caller's transaction,
//! and the start-up check of `[AUTH] MFA_KEY` against what is stored. The
//! login's second step is `model::login::verify`.

use chrono::Utc;
use postgres::GenericClient;
use serde_json::json;

use crate::cache::{self, Change, TokenInfo};
use crate::config::AuthConfig;
use crate::domain::Password;
use crate::error::AppError;
use crate::mfa::sealed::{Keys, Sealed};
use crate::mfa::{recovery, totp};
use crate::model::account_events::{self, Event};
use crate::model::limits::LoginLimits;
use crate::model::login::event;
use crate::model::password as pw;
use crate::services::Ctx;
use crate::store::mfa;
use crate::store::{accounts, sessions};

pub fn random(e: getrandom::Error) -> AppError {
    AppError::Internal(format!("OS random generator: {e}"))
}

/// `auth.mfa.setup_totp`: a new secret, pending until confirmed; its
/// base32 text and `otpauth://` URI.
pub fn setup_totp(ctx: &Ctx, info: &TokenInfo) -> Result<(String, String), AppError> {
    let auth = &ctx.config().auth;
    let secret = totp::TotpSecret::generate().map_err(random)?;
    let sealed = keys(auth)
        .seal(info.user_id, &secret)
        .map_err(|e| AppError::Internal(format!("TOTP enrolment refused: {e}")))?;
    let provisioning = totp::provisioning(&secret, &auth.mfa_issuer, &info.username)
        .map_err(AppError::Internal)?;
    let mut conn = ctx.pg()?;
    if !mfa::set_pending(&mut conn.client, info.user_id, &sealed)? {
        return Err(AppError::Conflict("mfa"));
    }
    Ok(provisioning)
}

/// `auth.mfa.confirm_totp`: a code of the pending secret enables it; the
/// recovery codes, shown once (only their hashes are stored).
pub fn confirm_totp(ctx: &Ctx, info: &TokenInfo, code: &str) -> Result<Vec<String>, AppError> {
    let codes = recovery::generate().map_err(random)?;
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .filter_map(|c| recovery::normalise(c))
        .map(|c| recovery::hash(info.user_id, &c))
        .collect();
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let factor = mfa::factor(&mut tx, info.user_id, true)?.ok_or(AppError::NotFound)?;
    if factor.enabled {
        return Err(AppError::Conflict("mfa"));
    }
    let secret = open(&ctx.config().auth, info.user_id, &factor.sealed)?;
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let step = totp::matched_step(&secret, code, now)
        .and_then(|s| i64::try_from(s).ok())
        .ok_or(AppError::InvalidCredentials)?;
    if !mfa::enable(&mut tx, info.user_id, step, &hashes)? {
        return Err(AppError::Conflict("mfa"));
    }
    let enabled = Event::new("mfa.enabled", info.user_id, json!({"method": "totp"}));
    account_events::record(&mut tx, &[enabled])?;
    cache::commit(&ctx.svc.model.caches, tx, &[Change::User(info.user_id)])?;
    Ok(codes)
}

/// `auth.mfa.disable`: with the password and a code, the factor goes and
/// every other session of the user is revoked.
pub fn disable(
    ctx: &Ctx,
    info: &TokenInfo,
    password: &Password,
    proof: &Proof,
) -> Result<(), AppError> {
    let ticket = pw::reserve(ctx)?;
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials_by_id(&mut conn.client, info.user_id)?
            .ok_or(AppError::Unauthorized)?
    };
    let note = |ok: bool, reason: &'static str| {
        event(
            ctx,
            Some(info.user_id),
            &creds.username,
            ok,
            Some(reason),
            None,
            None,
        );
    };
    // As for a password change: a stolen access token must not buy
    // unlimited guesses of the password or the code. One attempt, counted
    // before either is checked; it stays counted if either is wrong.
    let attempt = LoginLimits::account_only(ctx, &creds.username).admit(ctx)?;
    let (matches, attempt) = attempt.check(ctx, || {
        pw::verify(ctx, ticket, password, &creds.password_hash)
    })?;
    if !matches {
        return Err(AppError::InvalidCredentials);
    }
    {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        if !mfa::enabled(&mut tx, info.user_id)? {
            return Err(AppError::NotFound);
        }
        // First in the transaction (see `sessions::end_all`); undone with
        // it if the code is wrong.
        let revoked = sessions::end_all(&mut tx, info.user_id, Some(info.session_id))?;
        if !accept(&ctx.config().auth, &mut tx, info.user_id, proof)? {
            drop(tx);
            note(false, "invalid_mfa_code");
            return Err(AppError::InvalidCredentials);
        }
        mfa::remove(&mut tx, info.user_id)?;
        accounts::touch(&mut tx, info.user_id)?;
        let mut events = Event::revoked(info.user_id, &revoked, "mfa_disabled");
        events.push(Event::new(
            "mfa.disabled",
            info.user_id,
            json!({"by": "user"}),
        ));
        account_events::record(&mut tx, &events)?;
        cache::commit(
            &ctx.svc.model.caches,
            tx,
            &Change::revoked(info.user_id, &revoked),
        )?;
    }
    attempt.succeeded(ctx);
    note(true, "mfa_disabled");
    Ok(())
}

/// A second factor as presented.
#[derive(Debug)]
pub enum Proof {
    /// Six digits from the authenticator app.
    Totp(String),
    /// A recovery code, normalised.
    Recovery(String),
}

impl Proof {
    /// `code` (6 digits) or `recovery_code`: exactly one. A `code` that is
    /// not 6 digits may be a recovery code when `code_may_be_recovery`.
    pub fn parse(
        code: Option<&str>,
        recovery_code: Option<&str>,
        code_may_be_recovery: bool,
    ) -> Result<Proof, AppError> {
        match (code, recovery_code) {
            (Some(c), None) if totp::looks_like_code(c) => Ok(Proof::Totp(c.to_string())),
            (Some(c), None) if code_may_be_recovery => recovery::normalise(c)
                .map(Proof::Recovery)
                .ok_or_else(|| AppError::invalid("code", "invalid")),
            (Some(_), None) => Err(AppError::invalid("code", "invalid")),
            (None, Some(r)) => recovery::normalise(r)
                .map(Proof::Recovery)
                .ok_or_else(|| AppError::invalid("recovery_code", "invalid")),
            (Some(_), Some(_)) => Err(AppError::invalid(
                "recovery_code",
                "give_code_or_recovery_code",
            )),
            (None, None) => Err(AppError::invalid("code", "missing")),
        }
    }
}

pub fn keys(auth: &AuthConfig) -> Keys {
    Keys::new(auth.mfa_key.as_ref(), auth.mfa_key_previous.as_ref())
}

/// Opens a user's secret; a key problem is a deployment fault (logged),
/// never the caller's.
pub fn open(
    auth: &AuthConfig,
    user_id: i64,
    sealed: &Sealed,
) -> Result<totp::TotpSecret, AppError> {
    keys(auth)
        .open(user_id, sealed)
        .map_err(|e| AppError::Internal(format!("TOTP secret of user {user_id}: {e}")))
}

/// Whether `proof` is a valid second factor of `user_id` now, recording its
/// use in `tx` (the step as the last accepted one, or the recovery code as
/// spent). A replayed code, an older step or a spent recovery code is
/// `false`, like a wrong one. The factor must be enabled.
pub fn accept(
    auth: &AuthConfig,
    tx: &mut impl GenericClient,
    user_id: i64,
    proof: &Proof,
) -> Result<bool, AppError> {
    let Some(factor) = mfa::factor(tx, user_id, true)? else {
        return Ok(false);
    };
    if !factor.enabled {
        return Ok(false);
    }
    match proof {
        Proof::Totp(code) => {
            let secret = open(auth, user_id, &factor.sealed)?;
            let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
            let Some(step) = totp::matched_step(&secret, code, now) else {
                return Ok(false);
            };
            let step = i64::try_from(step).map_err(|_| AppError::Internal("step".into()))?;
            Ok(mfa::accept_step(tx, user_id, step)?)
        }
        Proof::Recovery(code) => Ok(mfa::spend_recovery_code(
            tx,
            user_id,
            &recovery::hash(user_id, code),
        )?),
    }
}

/// At start-up: every stored secret must be readable with the configured
/// keys. Secrets under `MFA_KEY_PREVIOUS` are re-sealed under `MFA_KEY`
/// (so the previous key can be dropped after one start); secrets under any
/// other key, or any secret without `MFA_KEY` set, refuse the start.
pub fn check_keys_at_start(client: &mut postgres::Client, auth: &AuthConfig) -> Result<(), String> {
    let keys = keys(auth);
    let db = |e: postgres::Error| format!("checking [AUTH] MFA_KEY against stored secrets: {e}");
    let mut tx = client.transaction().map_err(db)?;
    let others = mfa::sealed_not_under(&mut tx, keys.current_id()).map_err(db)?;
    if others.is_empty() {
        return Ok(());
    }
    if keys.current_id().is_none() {
        return Err(format!(
            "[AUTH] MFA_KEY is missing: {} account(s) have a TOTP secret sealed under it; \
             set it to the key they were enrolled with (64 hex digits)",
            others.len()
        ));
    }
    let unknown = others
        .iter()
        .filter(|(_, s)| Some(s.key_id) != keys.previous_id())
        .count();
    if unknown > 0 {
        return Err(format!(
            "[AUTH] MFA_KEY: {unknown} TOTP secret(s) were sealed under a key that is neither \
             MFA_KEY nor MFA_KEY_PREVIOUS; set MFA_KEY to the key they were enrolled with \
             (or that key as MFA_KEY_PREVIOUS while rotating)"
        ));
    }
    let mut resealed = 0;
    for (user_id, sealed) in &others {
        let fresh = keys
            .open(*user_id, sealed)
            .and_then(|secret| keys.seal(*user_id, &secret));
        match fresh {
            Ok(fresh) => {
                mfa::reseal(&mut tx, *user_id, &fresh).map_err(db)?;
                resealed += 1;
            }
            // Altered in the database: that account cannot use TOTP until
            // an operator runs user.reset_mfa; the others must still log in.
            Err(e) => log::error!("TOTP secret of user {user_id} not re-sealed: {e}"),
        }
    }
    tx.commit().map_err(db)?;
    log::info!("{resealed} TOTP secret(s) re-sealed from MFA_KEY_PREVIOUS under MFA_KEY");
    Ok(())
}
