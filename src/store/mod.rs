//! Storage: one module per backing service, each a set of narrow functions
//! per query. Nothing here knows about JSON-RPC; lookups return
//! `Result<Option<T>>` so a database error is never mistaken for "not found".

pub mod account_events;
pub mod accounts;
mod bson_json;
pub mod changes;
pub mod emails;
pub mod error;
pub mod idempotency;
pub mod identity;
pub mod lifecycle;
pub mod limits;
pub mod local_limits;
pub mod mfa;
pub mod mongo;
pub mod passkeys;
pub mod pg;
pub mod redis;
pub mod replica;
pub mod seeded;
pub mod sessions;

mod migrations;
