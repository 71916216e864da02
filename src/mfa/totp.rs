//! RFC 6238 time-based one-time passwords through `totp-rs`: HMAC-SHA-1,
//! 6 digits, 30-second steps, one step of drift either way. What is ours is
//! only the fixed parameters and the replay rule's input: [`matched_step`]
//! says WHICH step a code belongs to, so the caller can accept each step once.

use std::fmt;

use totp_rs::{Algorithm, Builder, Totp};

/// 160 bits, the length RFC 4226 recommends (and authenticator apps expect).
pub const SECRET_BYTES: usize = 20;
const DIGITS: u8 = 6;
const STEP_S: u64 = 30;
const SKEW_STEPS: u16 = 1;

/// A TOTP secret in the clear. `Debug` never prints it.
pub struct TotpSecret(pub Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    /// A fresh secret from the OS generator.
    pub fn generate() -> Result<TotpSecret, getrandom::Error> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(TotpSecret(bytes))
    }
}

fn build(secret: &[u8], digits: u8, label: Option<(&str, &str)>) -> Result<Totp, String> {
    let mut b = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_step_duration(STEP_S)
        .with_skew(SKEW_STEPS)
        .with_secret(secret.to_vec());
    if let Some((issuer, account)) = label {
        b = b.with_issuer(Some(issuer)).with_account_name(account);
    }
    b.build().map_err(|e| format!("totp: {e}"))
}

/// What an authenticator app needs: the secret in base32 and the
/// `otpauth://totp/<issuer>:<account>?secret=..&issuer=..` URI (the form
/// QR codes carry; SHA-1, 6 digits and 30 s are the defaults it leaves out).
pub fn provisioning(
    secret: &TotpSecret,
    issuer: &str,
    account: &str,
) -> Result<(String, String), String> {
    let totp = build(&secret.0, DIGITS, Some((issuer, account)))?;
    let uri = totp.to_url().map_err(|e| format!("totp uri: {e}"))?;
    Ok((totp.secret().to_base32(), uri))
}

/// Whether `code` looks like a TOTP code at all (6 ASCII digits).
pub fn looks_like_code(code: &str) -> bool {
    code.len() == usize::from(DIGITS) && code.bytes().all(|b| b.is_ascii_digit())
}

/// The time step (`unix time / 30`) whose code `code` is, among the steps
/// at `now_s` ±1; `None` for a wrong or malformed code.
pub fn matched_step(secret: &TotpSecret, code: &str, now_s: u64) -> Option<u64> {
    if !looks_like_code(code) {
        return None;
    }
    build(&secret.0, DIGITS, None).ok()?.check(code, now_s)
}

/// The code of `secret` at `time_s` with `digits` digits (6 in service;
/// 8 to check the RFC's own test vectors).
pub fn code_at(secret: &[u8], digits: u8, time_s: u64) -> Result<String, String> {
    Ok(build(secret, digits, None)?.generate(time_s).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: the ASCII secret
    /// "12345678901234567890", times and 8-digit TOTP values.
    const RFC_SECRET: &[u8] = b"12345678901234567890";
    const VECTORS: &[(u64, &str)] = &[
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors_with_8_digits() {
        for (t, expected) in VECTORS {
            assert_eq!(code_at(RFC_SECRET, 8, *t).unwrap(), *expected, "T = {t}");
        }
    }

    #[test]
    fn six_digit_codes_are_the_vectors_truncated_to_their_last_six_digits() {
        // Dynamic truncation takes the value modulo 10^digits: the 6-digit
        // code is the 8-digit one's last six digits.
        for (t, expected) in VECTORS {
            let secret = TotpSecret(RFC_SECRET.to_vec());
            let six = &expected[2..];
            assert_eq!(code_at(RFC_SECRET, 6, *t).unwrap(), six, "T = {t}");
            assert_eq!(matched_step(&secret, six, *t), Some(t / 30), "T = {t}");
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_either_way_and_two_are_not() {
        let secret = TotpSecret(RFC_SECRET.to_vec());
        let t = 1_234_567_890;
        let code = code_at(RFC_SECRET, 6, t).unwrap();
        assert_eq!(matched_step(&secret, &code, t + 30), Some(t / 30));
        assert_eq!(matched_step(&secret, &code, t - 30), Some(t / 30));
        assert_eq!(matched_step(&secret, &code, t + 60), None);
        assert_eq!(matched_step(&secret, &code, t - 60), None);
    }

    #[test]
    fn malformed_codes_never_match() {
        let secret = TotpSecret(RFC_SECRET.to_vec());
        let t = 1_234_567_890;
        let code = code_at(RFC_SECRET, 6, t).unwrap();
        for bad in ["", "12345", "1234567", "+05924", " 05924", "abcdef"] {
            assert_eq!(matched_step(&secret, bad, t), None, "{bad:?}");
        }
        assert!(matched_step(&secret, &code, t).is_some());
    }

    #[test]
    fn the_uri_names_issuer_and_account_and_carries_the_base32_secret() {
        let secret = TotpSecret(RFC_SECRET.to_vec());
        let (b32, uri) = provisioning(&secret, "profiteer", "alice").unwrap();
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            uri,
            "otpauth://totp/profiteer:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=profiteer"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        assert_eq!(format!("{:?}", TotpSecret(vec![1, 2])), "TotpSecret(***)");
    }
}
