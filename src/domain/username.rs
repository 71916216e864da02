//! Usernames: 3-32 of `[a-z0-9_.-]`, compared and stored lower-cased.

use super::Invalid;

/// Bounds and alphabet, shared with the schema `rpc.discover` states.
pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 32;
/// Allowed besides ASCII letters (compared lower-cased) and digits.
pub const EXTRA_CHARS: &str = "_.-";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, Invalid> {
        let lower = raw.trim().to_ascii_lowercase();
        if lower.len() < MIN_LEN {
            return Err(Invalid::new("username", "too_short"));
        }
        if lower.len() > MAX_LEN {
            return Err(Invalid::new("username", "too_long"));
        }
        if !lower.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || EXTRA_CHARS.as_bytes().contains(&b)
        }) {
            return Err(Invalid::new("username", "invalid_characters"));
        }
        Ok(Username(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased() {
        assert_eq!(Username::parse("Alice.B-1").unwrap().as_str(), "alice.b-1");
    }

    #[test]
    fn usernames_out_of_bounds_or_alphabet_are_refused() {
        assert_eq!(Username::parse("ab").unwrap_err().reason, "too_short");
        assert_eq!(
            Username::parse(&"a".repeat(33)).unwrap_err().reason,
            "too_long"
        );
        assert_eq!(
            Username::parse("al ice").unwrap_err().reason,
            "invalid_characters"
        );
        assert_eq!(
            Username::parse("alicé").unwrap_err().reason,
            "invalid_characters"
        );
        assert_eq!(
            Username::parse("a@b.c").unwrap_err().reason,
            "invalid_characters"
        );
    }
}
