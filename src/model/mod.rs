//! The model layer: what a handler asks for ("this user", "these users",
//! "what does this token stand for") and how it is assembled: caches first,
//! then independent fetches from PostgreSQL and MongoDB in parallel (rayon),
//! then one value. Handlers never see where the parts came from.

pub mod account;
pub mod account_events;
pub mod coalesce;
pub mod email;
pub mod idempotency;
pub mod identity;
pub mod imported;
pub mod lifecycle;
pub mod limits;
pub mod login;
pub mod mfa;
pub mod passkey;
pub mod password;
pub mod session;
pub mod state;
pub mod user;

pub use state::Model;
