//! Opaque bearer tokens: 256 random bits from the OS, base64url, with a prefix
//! that says what the token is for. Only their SHA-256 is ever stored.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
    Reset,
    /// The second step of a login with TOTP (`auth.mfa.verify`).
    Mfa,
    /// Proves an email address (`auth.verify_email`).
    EmailVerify,
    /// Enrols the first passkey of an account registered without a
    /// password (`auth.passkey.register_begin` / `register_finish`).
    Enrolment,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "pat_",
            TokenKind::Refresh => "prt_",
            TokenKind::Reset => "prs_",
            TokenKind::Mfa => "pmf_",
            TokenKind::EmailVerify => "pev_",
            TokenKind::Enrolment => "pre_",
        }
    }
}

/// A token as handed to a caller. `Debug` never prints it.
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// What is stored and looked up: SHA-256 of the whole token string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(***)")
    }
}

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Token {
    /// A fresh token; fails only if the OS random generator does.
    pub fn generate(kind: TokenKind) -> Result<Token, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Token(format!(
            "{}{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// Which kind a presented token claims to be, if it is well formed at all.
    pub fn kind_of(presented: &str) -> Option<TokenKind> {
        let well_formed = |body: &str| {
            body.len() == 43
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        [
            TokenKind::Access,
            TokenKind::Refresh,
            TokenKind::Reset,
            TokenKind::Mfa,
            TokenKind::EmailVerify,
            TokenKind::Enrolment,
        ]
        .into_iter()
        .find(|k| presented.strip_prefix(k.prefix()).is_some_and(well_formed))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_unique_and_recognised() {
        let a = Token::generate(TokenKind::Access).unwrap();
        let b = Token::generate(TokenKind::Access).unwrap();
        assert_ne!(a.hash(), b.hash());
        let s = a.into_string();
        assert!(s.starts_with("pat_"));
        assert_eq!(Token::kind_of(&s), Some(TokenKind::Access));
        assert_eq!(Token::kind_of("pat_short"), None);
        assert_eq!(
            Token::kind_of(&s.replace("pat_", "prt_")),
            Some(TokenKind::Refresh)
        );
        assert_eq!(
            Token::kind_of(&s.replace("pat_", "pev_")),
            Some(TokenKind::EmailVerify)
        );
    }

    #[test]
    fn debug_hides_tokens_and_hashes() {
        let t = Token::generate(TokenKind::Refresh).unwrap();
        assert_eq!(
            format!("{:?} {:?}", t, t.hash()),
            "Token(***) TokenHash(***)"
        );
    }
}
