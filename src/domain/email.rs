//! Email addresses: a deliberately plain check (one `@`, a dotted domain, no
//! spaces, at most 254 characters), stored lower-cased so lookups are exact.
//! Lengths count characters, as JSON Schema's `maxLength` does, so the
//! schema `rpc.discover` states is the rule itself.

use super::Invalid;

pub const MAX_LEN: usize = 254;
pub const LOCAL_MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let lower = raw.trim().to_lowercase();
        let bad = || Invalid::new("email", "invalid");
        if lower.chars().count() > MAX_LEN {
            return Err(Invalid::new("email", "too_long"));
        }
        let (local, domain) = lower.split_once('@').ok_or_else(bad)?;
        let ok = !local.is_empty()
            && local.chars().count() <= LOCAL_MAX_LEN
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !lower.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Email(lower))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_plainly_checked() {
        assert_eq!(
            Email::parse("Bob@Example.COM").unwrap().as_str(),
            "bob@example.com"
        );
        for bad in [
            "bob",
            "bob@",
            "@x.io",
            "bob@x",
            "bo b@x.io",
            "a@b@c.io",
            "a@.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
