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
