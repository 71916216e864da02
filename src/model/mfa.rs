//! The second factor over storage: opening a user's sealed secret, checking
//! a proof (a TOTP code, accepted once per time step, or a single-use
//! recovery code) inside the caller's transaction, and the start-up check
//! of `[AUTH] MFA_KEY` against what is stored.

use chrono::Utc;
use postgres::GenericClient;

use crate::config::AuthConfig;
use crate::error::AppError;
use crate::mfa::sealed::{Keys, Sealed};
use crate::mfa::{recovery, totp};
use crate::store::mfa;

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
