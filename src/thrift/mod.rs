//! The Python service's Thrift `UserService` on `[THRIFT] PORT`, so its old
//! callers (thriftpy2's `make_client`: binary protocol, buffered transport)
//! work unchanged while they move to JSON-RPC (wiki/migration.md).
//!
//! One accepting thread; one reader thread per connection, at most
//! `[THRIFT] MAX_CONNECTIONS` of them (more are closed at once). Calls run on
//! the HTTP side's request workers through the same bounded queue
//! ([`crate::http::WorkQueue`]), so admission control, deadlines, the
//! hashing lane and metrics are the ones `/rpc` has.

mod conn;
mod service;
mod wire;

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http::WorkQueue;
use crate::services::Services;
use crate::window::WindowCounter;

pub use service::{username_for, METHODS};

/// What the accepting thread and the connection threads share.
struct Shared {
    svc: Arc<Services>,
    queue: WorkQueue,
    /// How long a connection may stay quiet between calls.
    idle: Duration,
    stop: AtomicBool,
    /// Open connections (a clone of each socket, to close them at shutdown).
    open: Mutex<HashMap<u64, TcpStream>>,
    /// Calls refused for a full hashing lane or queue lately: in a storm
    /// each refusal is answered after a pause (`http::delay`).
    refusals: WindowCounter,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct ThriftServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl ThriftServer {
    pub fn start(
        svc: Arc<Services>,
        queue: WorkQueue,
        host: &str,
        port: u16,
    ) -> Result<ThriftServer, String> {
        let listener = TcpListener::bind((host, port))
            .map_err(|e| format!("[THRIFT] PORT: cannot listen on {host}:{port}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("[THRIFT] PORT: {e}"))?;
        let idle = svc.config.thrift.idle;
        let shared = Arc::new(Shared {
            svc,
            queue,
            idle,
            stop: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            refusals: WindowCounter::default(),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("thrift-accept".into())
                .spawn(move || accept(&shared, &listener))
                .map_err(|e| format!("cannot start the Thrift acceptor: {e}"))?
        };
        Ok(ThriftServer {
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends every connection's reading side: idle
    /// connections close at once, a call in progress still runs and its
    /// answer is sent, then that connection closes. Returns once every
    /// connection thread has ended (they hold the work queue).
    pub fn shutdown(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Wake the acceptor with a connection of our own.
        let wake = match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], a.port()))
            }
            a => a,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for stream in self.shared.lock_open().values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
        // A reader waiting for a worker's answer gives up at its deadline.
        let until = Instant::now() + self.shared.svc.config.server.request_timeout * 2;
        while !self.shared.lock_open().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

fn accept(shared: &Arc<Shared>, listener: &TcpListener) {
    let max = shared.svc.config.thrift.max_connections;
    let metrics = &shared.svc.metrics;
    for stream in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("thrift: accept failed: {e}");
                // e.g. out of file descriptors: do not spin on it.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let allowed = stream.peer_addr().is_ok_and(|peer| {
            let ip = peer.ip().to_canonical();
            shared
                .svc
                .config
                .thrift
                .allow
                .iter()
                .any(|n| n.contains(&ip))
        });
        if !allowed {
            metrics.thrift_refused.fetch_add(1, Ordering::Relaxed);
            continue; // not on [THRIFT] ALLOW: closed unread
        }
        let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        {
            let mut open = shared.lock_open();
            if open.len() >= max {
                metrics.thrift_refused.fetch_add(1, Ordering::Relaxed);
                continue; // dropping the stream closes it
            }
            match stream.try_clone() {
                Ok(clone) => open.insert(id, clone),
                Err(_) => continue,
            };
        }
        metrics.thrift_connections.fetch_add(1, Ordering::Relaxed);
        let spawned = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("thrift-conn".into())
                .spawn(move || {
                    conn::serve(&shared, stream);
                    shared.lock_open().remove(&id);
                    shared
                        .svc
                        .metrics
                        .thrift_connections
                        .fetch_sub(1, Ordering::Relaxed);
                })
        };
        if let Err(e) = spawned {
            log::error!("thrift: cannot start a connection thread: {e}");
            shared.lock_open().remove(&id);
            metrics.thrift_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
