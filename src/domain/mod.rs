//! Domain types parsed once at the edge: a value of one of these types is
//! valid by construction, so handlers and stores never re-check it.
//! Rejections carry the field and a stable reason string for `-32602`.

pub mod email;
pub mod limits;
pub mod password;
pub mod profile;
pub mod role;
mod token;
pub mod username;

pub use email::Email;
pub use password::{Password, PasswordPolicy};
pub use profile::ProfilePatch;
pub use role::{pattern_matches, Role, UserState};
pub use token::{Token, TokenHash, TokenKind};
pub use username::Username;

/// The `[CLIENTS]` pseudo-pattern that lets a client state the end user's
/// address (the `ip` param of `auth.login`).
pub const IP_PATTERN: &str = "@ip";

/// An end user's address as a caller states it: an IPv4 or IPv6 address,
/// answered in its canonical text (so "::ffff:1.2.3.4" and "1.2.3.4" are
/// one address to the login limits).
pub fn parse_ip(field: &str, raw: &str) -> Result<String, Invalid> {
    raw.parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical().to_string())
        .map_err(|_| Invalid::new(field, "not_an_ip_address"))
}

/// Why a value was refused: the field and a reason from a small fixed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: &'static str,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: &'static str) -> Invalid {
        Invalid {
            field: field.into(),
            reason,
        }
    }
}
