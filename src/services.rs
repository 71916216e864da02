//! The shared handles every handler works with ([`Services`]), and the
//! per-call view of them ([`Ctx`]) that carries the request's deadline.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{AppError, Dependency};
use crate::metrics::Metrics;
use crate::model::Model;
use crate::store::mongo::Mongo;
use crate::store::pg::PgConn;
use crate::store::replica::PrimaryConn;

#[cfg(test)]
use {
    crate::events::EventWriter, crate::hashlane::HashLane, crate::model::state::Parts,
    crate::store::redis::Redis, crate::window::WindowCounter, std::sync::Arc,
};

/// Left of a deadline for answering after a MongoDB call gave up.
const MONGO_MARGIN: Duration = Duration::from_millis(250);

/// The shared handles of a running instance: its config, its metrics,
/// whether it is draining, and the model (which alone reaches the stores,
/// caches and lanes behind it).
pub struct Services {
    /// Set on SIGTERM: `/readyz` answers 503 while requests are still served.
    pub draining: std::sync::atomic::AtomicBool,
    pub config: Config,
    pub metrics: Metrics,
    pub model: Model,
}

/// One request as every layer knows it, from its arrival on: its id (for
/// logs and error data), when it arrived, its deadline, and the TCP peer it
/// came from (the address a login is counted against when the caller names
/// none; `None` off the HTTP path).
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub rid: u64,
    pub arrived: Instant,
    pub deadline: Instant,
    pub peer: Option<IpAddr>,
}

/// One call's view: the services, the request it serves, and its caller.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub svc: &'a Services,
    pub call: Call,
    /// The calling client's `[CLIENTS]` name; `None` without `[CLIENTS]`
    /// (and off the HTTP path).
    pub client: Option<&'a str>,
}

impl Ctx<'_> {
    /// The request's id, for logs.
    pub fn rid(&self) -> u64 {
        self.call.rid
    }

    /// The same call with another deadline (a shared fetch's, the latest of
    /// its callers').
    pub fn until(&self, deadline: Instant) -> Self {
        Ctx {
            call: Call {
                deadline,
                ..self.call
            },
            ..*self
        }
    }

    pub fn remaining(&self) -> Duration {
        self.call.deadline.saturating_duration_since(Instant::now())
    }

    pub fn check_deadline(&self) -> Result<(), AppError> {
        if Instant::now() >= self.call.deadline {
            Err(AppError::Timeout)
        } else {
            Ok(())
        }
    }

    /// A connection to the primary, waited for no longer than the pool
    /// timeout or the request's deadline.
    pub fn pg(&self) -> Result<PrimaryConn<'_>, AppError> {
        self.check_deadline()?;
        Ok(self.svc.model.connection(self.pg_wait())?)
    }

    /// Runs the read-only `f` on a replica that has replayed all this
    /// instance has seen, else on the primary (`Model::read`).
    pub fn read<T>(
        &self,
        f: impl FnMut(&mut PgConn) -> Result<T, postgres::Error>,
    ) -> Result<T, AppError> {
        self.check_deadline()?;
        self.svc.model.read(self.pg_wait(), f)
    }

    /// [`Ctx::read`] for lookups: a replica's answer that `complete` finds
    /// short is asked of the primary again (`Model::read_found`).
    pub fn read_found<T>(
        &self,
        f: impl FnMut(&mut PgConn) -> Result<T, postgres::Error>,
        complete: impl Fn(&T) -> bool,
    ) -> Result<T, AppError> {
        self.check_deadline()?;
        self.svc.model.read_found(self.pg_wait(), f, complete)
    }

    fn pg_wait(&self) -> Duration {
        self.remaining().min(self.svc.config.pg.pool_timeout)
    }

    /// Runs a MongoDB call on the fetch pool and waits for it no longer than
    /// `[MONGO] MONGO_TIMEOUT` or what is left of the deadline (less a
    /// margin to answer in): the driver has no socket timeout, so a stalled
    /// MongoDB may hold a fetch thread, never a request worker. `f` gets
    /// that wait as the server-side limit (`maxTimeMS`).
    pub fn mongo<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Mongo, Duration) -> crate::store::mongo::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        self.start_mongo(f).wait()
    }

    /// [`Ctx::mongo`] in two steps, to do other work while MongoDB answers.
    pub fn start_mongo<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Mongo, Duration) -> crate::store::mongo::Result<T> + Send + 'static,
    ) -> MongoCall<T> {
        let wait = self
            .remaining()
            .saturating_sub(MONGO_MARGIN)
            .min(self.svc.config.mongo.timeout);
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !wait.is_zero() {
            self.svc.model.spawn_fetch(move |mongo| {
                let _ = tx.send(f(mongo, wait));
            });
        }
        MongoCall {
            rx,
            until: Instant::now() + wait,
        }
    }

    pub fn config(&self) -> &Config {
        &self.svc.config
    }
}

#[cfg(test)]
impl Services {
    /// Services whose dependencies all point at a closed port: for tests of
    /// the layers in front of them (the envelope, params, dispatch). A call
    /// that gets as far as a dependency fails fast with -32000 or -32001.
    pub fn offline() -> Services {
        let config = Config::from_sources(
            "[PG]\nPG_URI = postgres://nobody@127.0.0.1:1/none\nPG_POOL_TIMEOUT = 1\n\
             [MONGO]\nMONGO_MAIN_URI = mongodb://127.0.0.1:1/none\nMONGO_TIMEOUT = 1\n\
             MONGO_CONNECT_TIMEOUT = 1\n\
             [REDIS]\nREDIS_URI = redis://127.0.0.1:1/0\n\
             [AUTH]\nBCRYPT_COST = 4\nHASH_WORKERS = 1\nHASH_QUEUE_DEPTH = 64\n",
            std::iter::empty(),
        )
        .unwrap();
        let mongo = Arc::new(Mongo::connect(&config.mongo).unwrap());
        let token_calls = Arc::new(WindowCounter::default());
        let model = Model::new(Parts {
            pg: crate::store::pg::build_pool(&config.pg).unwrap(),
            replicas: Arc::new(crate::store::replica::Replicas::new(None)),
            redis: Arc::new(Redis::connect(&config.redis).unwrap()),
            events: EventWriter::start(mongo.clone()),
            mongo,
            caches: Default::default(),
            lane: HashLane::start(1, 64, token_calls.clone()),
            login_limits: Default::default(),
            token_calls,
            fetch: rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap(),
            dummy_hash: bcrypt::hash("offline", 4).unwrap(),
        });
        Services {
            draining: Default::default(),
            metrics: Metrics::new(crate::rpc::method_names()),
            model,
            config,
        }
    }
}

/// A MongoDB call under way on the fetch pool.
pub struct MongoCall<T> {
    rx: crossbeam_channel::Receiver<crate::store::mongo::Result<T>>,
    until: Instant,
}

impl<T> MongoCall<T> {
    /// Its result, or `Unavailable` once its wait is over.
    pub fn wait(self) -> Result<T, AppError> {
        match self.rx.recv_deadline(self.until) {
            Ok(result) => result.map_err(AppError::from),
            Err(_) => Err(AppError::Unavailable(
                Dependency::Mongo,
                "no answer within the wait".into(),
            )),
        }
    }
}
