//! Passwords: a wrapper whose `Debug` never prints the secret, and the
//! contract's policy (8-72 bytes, not containing the username, zxcvbn score).

use std::fmt;

use super::Invalid;

/// bcrypt reads 72 bytes; a longer password is refused, never silently cut.
pub const MAX_BYTES: usize = 72;
pub const MIN_BYTES: usize = 8;

#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Accepts any password bcrypt can verify (for login: a stored hash may
    /// predate the policy, so only the 72-byte bound applies).
    pub fn for_login(raw: String) -> Result<Password, Invalid> {
        if raw.len() > MAX_BYTES {
            return Err(Invalid::new("password", "too_long"));
        }
        Ok(Password(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The policy a new password must meet.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_score: u8,
}

impl PasswordPolicy {
    /// `field` is where the password came from (`password`, `new_password`).
    pub fn check(
        &self,
        raw: String,
        field: &str,
        username: &str,
        email: Option<&str>,
    ) -> Result<Password, Invalid> {
        if raw.len() < MIN_BYTES {
            return Err(Invalid::new(field, "too_short"));
        }
        if raw.len() > MAX_BYTES {
            return Err(Invalid::new(field, "too_long"));
        }
        if raw.to_lowercase().contains(username) {
            return Err(Invalid::new(field, "contains_username"));
        }
        if self.min_score > 0 {
            let mut inputs = vec![username];
            inputs.extend(email);
            let score = zxcvbn::zxcvbn(&raw, &inputs).score() as u8;
            if score < self.min_score {
                return Err(Invalid::new(field, "too_weak"));
            }
        }
        Ok(Password(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy { min_score: 2 };

    fn reason(pw: &str) -> &'static str {
        POLICY
            .check(pw.to_string(), "password", "alice", None)
            .unwrap_err()
            .reason
    }

    #[test]
    fn the_policy_names_each_reason() {
        assert_eq!(reason("short"), "too_short");
        assert_eq!(reason(&"x".repeat(73)), "too_long");
        assert_eq!(reason("xxALICExx-long-enough"), "contains_username");
        assert_eq!(reason("password1"), "too_weak");
        assert!(POLICY
            .check(
                "correct horse battery staple".into(),
                "password",
                "alice",
                None
            )
            .is_ok());
    }

    #[test]
    fn the_length_bound_is_in_bytes_not_characters() {
        // 24 three-byte characters = 72 bytes: accepted by length; 25 = 75: refused.
        assert_eq!(reason(&"€".repeat(25)), "too_long");
        assert!(Password::for_login("€".repeat(24)).is_ok());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let pw = Password::for_login("hunter2hunter2".into()).unwrap();
        assert_eq!(format!("{pw:?}"), "Password(***)");
    }
}
