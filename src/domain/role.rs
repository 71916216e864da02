//! Roles, account states, and the wildcard patterns shared by `[ROLES]`
//! permissions and `[CLIENTS]` method lists.

use super::Invalid;

/// Bounds and alphabet, shared with the schema `rpc.discover` states.
pub const ROLE_MAX_LEN: usize = 64;
/// Allowed besides lower-case ASCII letters and digits.
pub const ROLE_EXTRA_CHARS: &str = "_.:-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role(String);

impl Role {
    pub fn parse(raw: &str) -> Result<Role, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= ROLE_MAX_LEN
            && raw.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || ROLE_EXTRA_CHARS.as_bytes().contains(&b)
            });
        if ok {
            Ok(Role(raw.to_string()))
        } else {
            Err(Invalid::new("role", "invalid"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Active,
    Disabled,
    Locked,
}

impl UserState {
    pub const ALL: [UserState; 3] = [UserState::Active, UserState::Disabled, UserState::Locked];

    pub fn parse(raw: &str) -> Option<UserState> {
        match raw {
            "active" => Some(UserState::Active),
            "disabled" => Some(UserState::Disabled),
            "locked" => Some(UserState::Locked),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "active",
            UserState::Disabled => "disabled",
            UserState::Locked => "locked",
        }
    }
}

/// `*` matches everything; `prefix*` (as in `post:*`, `auth.*`) matches names
/// starting with `prefix`; anything else matches only itself.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names_and_prefixes() {
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("post:*", "post:edit"));
        assert!(!pattern_matches("post:*", "poster:edit"));
        assert!(pattern_matches("auth.*", "auth.login"));
        assert!(pattern_matches("user:read", "user:read"));
        assert!(!pattern_matches("user:read", "user:read:all"));
    }

    #[test]
    fn roles_are_a_restricted_alphabet() {
        assert!(Role::parse("editor").is_ok());
        assert!(Role::parse("Editor").is_err());
        assert!(Role::parse("").is_err());
    }
}
