//! An account's email and its proof: `auth.request_email_verification`
//! (a `pev_` token for the email as it is), `auth.change_email` (a `pev_`
//! token for a new address, which replaces the old one only once proven)
//! and `auth.verify_email`. Tokens are stored only as SHA-256, single use,
//! one live token per account and purpose.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cache::{self, Change, TokenInfo};
use crate::domain::{Email, Password, Token, TokenHash, TokenKind};
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::model::idempotency;
use crate::model::limits::{self, LoginLimits};
use crate::model::password as pw;
use crate::services::Ctx;
use crate::store::accounts::{self, Credentials, InsertError};
use crate::store::emails::{self, Proof};
use crate::store::idempotency as store_keys;

/// A `pev_` token as issued: the caller delivers it to the address.
pub struct Issued {
    pub token: String,
    pub email: String,
    pub expires_in: i64,
}

fn random(e: getrandom::Error) -> AppError {
    AppError::Internal(format!("OS random generator: {e}"))
}

/// `auth.request_email_verification`: a token for the email `user_id`
/// has now; `NotFound` when it has none (or, asked by id, no such
/// account). Counted per account like reset requests: a new one spends the
/// older token, and they never pile up.
pub fn request_verification(ctx: &Ctx, user_id: i64, by_token: bool) -> Result<Issued, AppError> {
    let token = Token::generate(TokenKind::EmailVerify).map_err(random)?;
    let ttl = ctx.config().auth.verify_ttl_s;
    let mut conn = ctx.pg()?;
    let creds = match accounts::credentials_by_id(&mut conn.client, user_id)? {
        Some(creds) => creds,
        None if by_token => return Err(AppError::Unauthorized),
        None => return Err(AppError::NotFound),
    };
    let email = creds.email.ok_or(AppError::NotFound)?;
    limits::admit_reset_request(ctx, &format!("verify:{user_id}"))?;
    let proof = Proof {
        user_id,
        email,
        change: false,
    };
    let mut tx = conn.client.transaction()?;
    emails::spend(&mut tx, user_id, false)?;
    emails::create(
        &mut tx,
        &token.hash(),
        &proof,
        Utc::now() + ChronoDuration::seconds(ttl),
    )?;
    tx.commit()?;
    Ok(Issued {
        token: token.into_string(),
        email: proof.email,
        expires_in: ttl,
    })
}

/// `auth.verify_email`: what the token proved, `(user_id, email)`. Any
/// token that is not a live `pev_` one is `Unauthorized`, whatever the
/// reason (no oracle for strangers). A proof of an email the account no
/// longer has is dead too; a new address taken by another account since
/// the token was issued is `Conflict("email")` (the token stays usable).
pub fn verify(ctx: &Ctx, presented: &str) -> Result<(i64, String), AppError> {
    if Token::kind_of(presented) != Some(TokenKind::EmailVerify) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let proof = emails::take(&mut tx, &hash)?.ok_or(AppError::Unauthorized)?;
    let mut events = Vec::new();
    if proof.change {
        match emails::set_email(&mut tx, proof.user_id, Some(proof.email.as_str()), true) {
            Ok(true) => {}
            Ok(false) => return Err(AppError::Unauthorized),
            Err(InsertError::Conflict(field)) => return Err(AppError::Conflict(field)),
            Err(InsertError::Db(e)) => return Err(e.into()),
        }
        // A proof of the old address proves nothing any more.
        emails::spend(&mut tx, proof.user_id, false)?;
        events.push(Event::new("email.changed", proof.user_id, json!({})));
    } else if !emails::mark_verified(&mut tx, proof.user_id, &proof.email)? {
        return Err(AppError::Unauthorized);
    }
    events.push(Event::new("email.verified", proof.user_id, json!({})));
    account_events::record(&mut tx, &events)?;
    cache::commit(&ctx.svc.model.caches, tx, &[Change::User(proof.user_id)])?;
    Ok((proof.user_id, proof.email))
}

/// The token's account, once `password` is found to be its password. As
/// for a password change: a stolen access token must not buy unlimited
/// guesses, so a wrong password counts as a failed login of the account.
pub fn confirm_password(
    ctx: &Ctx,
    info: &TokenInfo,
    password: &Password,
) -> Result<Credentials, AppError> {
    let ticket = pw::reserve(ctx)?;
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials_by_id(&mut conn.client, info.user_id)?
            .ok_or(AppError::Unauthorized)?
    };
    let attempt = LoginLimits::account_only(ctx, &creds.username).admit(ctx)?;
    let (matches, attempt) = attempt.check(ctx, || {
        pw::verify(ctx, ticket, password, &creds.password_hash)
    })?;
    if !matches {
        return Err(AppError::InvalidCredentials);
    }
    attempt.succeeded(ctx);
    Ok(creds)
}

/// `auth.change_email`: with the password, a token for `new`; the old
/// address stays until it is verified. `{verify_token, expires_in}`. With
/// an idempotency key, a repeat answers the first answer (its token kept
/// only masked by the access token the repeat must present again, see
/// [`mask`]).
pub fn change(
    ctx: &Ctx,
    info: &TokenInfo,
    access: &str,
    password: &Password,
    new: &Email,
    key: Option<&idempotency::Key>,
) -> Result<Value, AppError> {
    if let Some(kept) = idempotency::recall(ctx, key)? {
        return unmask_answer(kept, access);
    }
    confirm_password(ctx, info, password)?;
    let token = Token::generate(TokenKind::EmailVerify).map_err(random)?;
    let ttl = ctx.config().auth.verify_ttl_s;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    // Taken now (by anyone, this account included): refused at once. Taken
    // later: refused when verified.
    if emails::taken(&mut tx, new.as_str())? {
        return Err(AppError::Conflict("email"));
    }
    let proof = Proof {
        user_id: info.user_id,
        email: new.as_str().to_string(),
        change: true,
    };
    // One pending change at a time: the latest.
    emails::spend(&mut tx, info.user_id, true)?;
    emails::create(
        &mut tx,
        &token.hash(),
        &proof,
        Utc::now() + ChronoDuration::seconds(ttl),
    )?;
    let token = token.into_string();
    if let Some(key) = key {
        let kept = json!({"verify_token": mask(&token, access), "expires_in": ttl});
        if !store_keys::remember(&mut tx, &key.scope(ctx), &kept.to_string())? {
            // Another call with this key committed first: its answer.
            drop(tx);
            return match idempotency::recall(ctx, Some(key))? {
                Some(kept) => unmask_answer(kept, access),
                None => Err(AppError::Conflict("idempotency_key")),
            };
        }
    }
    tx.commit()?;
    Ok(json!({"verify_token": token, "expires_in": ttl}))
}

fn unmask_answer(mut kept: Value, access: &str) -> Result<Value, AppError> {
    let masked = kept["verify_token"]
        .as_str()
        .ok_or_else(|| AppError::Internal("a kept change_email answer has no token".into()))?;
    kept["verify_token"] = Value::String(mask(masked, access));
    Ok(kept)
}

/// A `pev_` token's 32 random bytes XOR a key derived from the access
/// token of the call: what an idempotency key keeps, so the database never
/// holds a usable token (it holds only SHA-256 of the access token, not
/// this derivation). Its own inverse.
pub fn mask(token: &str, access: &str) -> String {
    let Some(body) = token.strip_prefix("pev_") else {
        return token.to_string();
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(body) else {
        return token.to_string();
    };
    let mut key = Sha256::new();
    key.update(b"profiteer change_email answer\0");
    key.update(access.as_bytes());
    let key = key.finalize();
    let masked: Vec<u8> = bytes.iter().zip(key.iter()).map(|(b, k)| b ^ k).collect();
    format!("pev_{}", URL_SAFE_NO_PAD.encode(masked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_token_is_unusable_and_unmasks_with_the_same_access_token() {
        let token = Token::generate(TokenKind::EmailVerify)
            .unwrap()
            .into_string();
        let masked = mask(&token, "pat_one");
        assert_ne!(masked, token);
        assert_eq!(Token::kind_of(&masked), Some(TokenKind::EmailVerify));
        assert_eq!(mask(&masked, "pat_one"), token);
        assert_ne!(mask(&masked, "pat_two"), token);
    }
}
