//! The shared handles every handler works with ([`Services`]), and the
//! per-call view of them ([`Ctx`]) that carries the request's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::LocalCaches;
use crate::config::Config;
use crate::error::AppError;
use crate::events::EventWriter;
use crate::hashlane::HashLane;
use crate::metrics::Metrics;
use crate::store::mongo::Mongo;
use crate::store::pg;
use crate::store::redis::Redis;
use crate::window::WindowCounter;

pub struct Services {
    pub config: Config,
    pub pg: pg::Pool,
    pub redis: Arc<Redis>,
    pub mongo: Arc<Mongo>,
    pub caches: Arc<LocalCaches>,
    pub lane: HashLane,
    pub events: EventWriter,
    pub metrics: Metrics,
    /// Calls other than password hashing, counted to tell the hashing lane
    /// when token checks need the CPU.
    pub token_calls: Arc<WindowCounter>,
    /// Runs a model's independent fetches (PostgreSQL and MongoDB) at once.
    pub fetch: rayon::ThreadPool,
    /// Verified against when a login names no account, so an unknown user
    /// costs the same bcrypt time as a wrong password.
    pub dummy_hash: String,
}

/// One call's view: the services, its deadline and its request id.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub svc: &'a Services,
    pub deadline: Instant,
    pub rid: u64,
}

impl Ctx<'_> {
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn check_deadline(&self) -> Result<(), AppError> {
        if Instant::now() >= self.deadline {
            Err(AppError::Timeout)
        } else {
            Ok(())
        }
    }

    /// A PostgreSQL connection, waited for no longer than the pool timeout
    /// or the request's deadline.
    pub fn pg(&self) -> Result<pg::Conn, AppError> {
        self.check_deadline()?;
        pg::get(
            &self.svc.pg,
            self.remaining().min(self.svc.config.pg.pool_timeout),
        )
    }

    pub fn config(&self) -> &Config {
        &self.svc.config
    }
}
