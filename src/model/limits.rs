//! Attempt limits on password guesses and reset requests: which counters an
//! attempt counts against, with which ceiling, and where they live (Redis,
//! shared by every instance; this instance's memory while Redis cannot be
//! reached, never no limit at all).
//!
//! A login is counted *before* its password is checked, in the same atomic
//! step that checks the ceilings, so parallel guesses cannot all slip in
//! under a limit; a correct password gives its attempt back.

use crate::error::AppError;
use crate::services::Ctx;
use crate::store::limits::{self, Counter, Success};

/// Failed-login ceilings, as multiples of `[AUTH] LOGIN_MAX_FAILS`: the
/// (login, ip) pair, the ip alone (many accounts from one address), and the
/// login alone (one account from many addresses; high, and never applied at
/// an address the account logged in from before, so strangers cannot keep
/// its owner out).
const PAIR_FACTOR: u64 = 1;
const IP_FACTOR: u64 = 4;
const LOGIN_FACTOR: u64 = 10;

/// How long a successful login makes its (account, ip) pair a known
/// address, exempt from the per-ip and per-login ceilings.
pub const KNOWN_ADDRESS_TTL_S: u64 = 30 * 86400;

/// The address an attempt is counted against: the caller's `ip` param, or
/// else the TCP peer's address.
fn address(ctx: &Ctx, ip: Option<&str>) -> String {
    match (ip, ctx.call.peer) {
        (Some(ip), _) => ip.to_string(),
        (None, Some(peer)) => peer.to_string(),
        (None, None) => "-".to_string(),
    }
}

pub struct LoginLimits {
    /// The (login, ip) pair's counter first, if there is one.
    counters: Vec<Counter>,
    pair: bool,
    known: Option<String>,
}

/// Which store took an admission decision, so its outcome goes to the same.
#[derive(Clone, Copy)]
enum Backend {
    Redis,
    Local,
}

/// An admitted, counted attempt. Dropped, it stays counted (a wrong
/// password); [`Attempt::succeeded`] gives it back, and so does a check
/// that never answered ([`Attempt::check`]).
pub struct Attempt {
    limits: LoginLimits,
    backend: Backend,
}

impl LoginLimits {
    /// The counters of a password guess on account `login` from `ip` (or
    /// the TCP peer): the pair, the address, the account.
    pub fn new(ctx: &Ctx, login: &str, ip: Option<&str>) -> LoginLimits {
        let max = u64::from(ctx.config().auth.login_max_fails);
        let r = &ctx.svc.model.redis;
        let ip = address(ctx, ip);
        let counters = vec![
            Counter {
                key: r.key("rl:pair", format!("{login}|{ip}")),
                ceiling: max * PAIR_FACTOR,
                exempt_if_known: false,
            },
            Counter {
                key: r.key("rl:ip", &ip),
                ceiling: max * IP_FACTOR,
                exempt_if_known: true,
            },
            Counter {
                key: r.key("rl:login", login),
                ceiling: max * LOGIN_FACTOR,
                exempt_if_known: true,
            },
        ];
        LoginLimits {
            counters,
            pair: true,
            known: Some(r.key("rl:known", format!("{login}|{ip}"))),
        }
    }

    /// A guess made with an account's access token (`auth.change_password`):
    /// counted against the account only. The address is the calling
    /// service's, shared by every user behind it, not the guesser's.
    pub fn account_only(ctx: &Ctx, login: &str) -> LoginLimits {
        let max = u64::from(ctx.config().auth.login_max_fails);
        LoginLimits {
            counters: vec![Counter {
                key: ctx.svc.model.redis.key("rl:login", login),
                ceiling: max * LOGIN_FACTOR,
                exempt_if_known: false,
            }],
            pair: false,
            known: None,
        }
    }

    /// Counts the attempt, or `RateLimited` (nothing counted) if a ceiling
    /// that applies is reached.
    pub fn admit(self, ctx: &Ctx) -> Result<Attempt, AppError> {
        let (wait, backend) = admit(ctx, self.known.as_deref(), &self.counters);
        match wait {
            Some(retry_after) => Err(AppError::RateLimited { retry_after }),
            None => Ok(Attempt {
                limits: self,
                backend,
            }),
        }
    }
}

impl Attempt {
    /// A correct password: the pair's count is cleared, the attempt given
    /// back on the other counters, and the address becomes known.
    pub fn succeeded(self, ctx: &Ctx) {
        let l = &self.limits;
        let skip = usize::from(l.pair);
        let refund: Vec<String> = l.counters[skip..].iter().map(|c| c.key.clone()).collect();
        let success = Success {
            known: l.known.as_deref().map(|k| (k, KNOWN_ADDRESS_TTL_S)),
            clear: l.pair.then(|| l.counters[0].key.as_str()),
            refund: &refund,
        };
        if let Backend::Redis = self.backend {
            if limits::succeeded(&ctx.svc.model.redis, &success).is_ok() {
                return;
            }
        }
        ctx.svc.model.login_limits.succeeded(&success);
    }
}

impl Attempt {
    /// Runs the password check this attempt was counted for. A check that
    /// gave no answer (its deadline passed on the hashing lane) told the
    /// caller nothing, so it is given back: an overloaded lane must not
    /// turn into a lockout of everyone behind one address.
    pub fn check(
        self,
        ctx: &Ctx,
        check: impl FnOnce() -> Result<bool, AppError>,
    ) -> Result<(bool, Attempt), AppError> {
        match check() {
            Ok(matches) => Ok((matches, self)),
            Err(e) => {
                self.given_back(ctx);
                Err(e)
            }
        }
    }

    /// Not a guess after all (a correct password, but no session yet: an
    /// inactive account, or a second factor to come): the attempt is given
    /// back on every counter, and nothing else changes.
    pub fn given_back(self, ctx: &Ctx) {
        let refund: Vec<String> = self.limits.counters.iter().map(|c| c.key.clone()).collect();
        let success = Success {
            known: None,
            clear: None,
            refund: &refund,
        };
        if let Backend::Redis = self.backend {
            if limits::succeeded(&ctx.svc.model.redis, &success).is_ok() {
                return;
            }
        }
        ctx.svc.model.login_limits.succeeded(&success);
    }
}

/// Redis first; this instance's counters when Redis cannot be reached.
fn admit(ctx: &Ctx, known: Option<&str>, counters: &[Counter]) -> (Option<u64>, Backend) {
    let window = ctx.config().auth.login_window_s;
    let local = &ctx.svc.model.login_limits;
    match limits::admit(&ctx.svc.model.redis, known, counters, window) {
        Ok(wait) => {
            local.set_in_force(false);
            (wait, Backend::Redis)
        }
        Err(e) => {
            log::debug!("rid={} login limits kept locally: {e:?}", ctx.rid());
            local.set_in_force(true);
            (local.admit(known, counters, window), Backend::Local)
        }
    }
}

/// `auth.request_password_reset`: every request counts (there is no
/// "correct" one), at most `LOGIN_MAX_FAILS` per account and window.
pub fn admit_reset_request(ctx: &Ctx, account: &str) -> Result<(), AppError> {
    let counter = Counter {
        key: ctx.svc.model.redis.key("rl:reset", account),
        ceiling: u64::from(ctx.config().auth.login_max_fails),
        exempt_if_known: false,
    };
    match admit(ctx, None, std::slice::from_ref(&counter)).0 {
        Some(retry_after) => Err(AppError::RateLimited { retry_after }),
        None => Ok(()),
    }
}
