//! The second factor's building blocks, free of any storage or RPC: RFC 6238
//! codes ([`totp`]), TOTP secrets sealed under `[AUTH] MFA_KEY` ([`sealed`]),
//! and single-use recovery codes ([`recovery`]).

pub mod recovery;
pub mod sealed;
pub mod totp;
