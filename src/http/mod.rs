//! The HTTP side: tiny_http reads requests; one acceptor thread stamps each
//! with its arrival time and routes it. `/rpc` work goes on a bounded queue
//! to a fixed pool of workers sized to the database pool; a full queue is
//! answered 503 (-32002) at once, and a request that waited past its
//! deadline is answered 503 (-32001) without running. Nothing waits forever.

mod respond;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Sender, TrySendError};
use tiny_http::{Method, Server};

use crate::error::AppError;
use crate::services::Services;
use respond::Reply;

/// A request waiting for a worker.
pub struct Job {
    request: tiny_http::Request,
    arrived: Instant,
    rid: u64,
}

pub struct HttpServer {
    server: Arc<Server>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(svc: Arc<Services>, host: &str, port: u16) -> Result<HttpServer, String> {
        let server = Server::http((host, port))
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| "listener has no IP address".to_string())?;
        let server = Arc::new(server);
        let (tx, rx) = bounded::<Job>(svc.config.server.queue_depth);
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| format!("cannot start a thread: {e}"))
        };
        let mut workers = Vec::new();
        for i in 0..svc.config.server.workers {
            let (svc, rx) = (svc.clone(), rx.clone());
            workers.push(spawn(
                format!("worker-{i}"),
                Box::new(move || worker::run(&svc, rx)),
            )?);
        }
        let acceptor = {
            let (svc, server) = (svc.clone(), server.clone());
            spawn(
                "acceptor".into(),
                Box::new(move || accept(&svc, &server, tx)),
            )?
        };
        Ok(HttpServer {
            server,
            addr,
            acceptor: Some(acceptor),
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets the workers finish what is queued, returns.
    pub fn shutdown(mut self) {
        self.server.unblock();
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

static NEXT_RID: AtomicU64 = AtomicU64::new(1);

fn accept(svc: &Arc<Services>, server: &Server, queue: Sender<Job>) {
    loop {
        let request = match server.recv() {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Other => break, // unblocked
            Err(e) => {
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let arrived = Instant::now();
        let rid = NEXT_RID.fetch_add(1, Ordering::Relaxed);
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let method = request.method().clone();
        let reply = match (path.as_str(), &method) {
            ("/rpc", Method::Post) => {
                let too_large = request
                    .body_length()
                    .is_some_and(|n| n > svc.config.server.max_body_bytes);
                if too_large {
                    svc.metrics.too_large.fetch_add(1, Ordering::Relaxed);
                    Reply::too_large()
                } else {
                    match queue.try_send(Job {
                        request,
                        arrived,
                        rid,
                    }) {
                        Ok(()) => continue,
                        Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                            svc.metrics.shed.fetch_add(1, Ordering::Relaxed);
                            svc.metrics
                                .observe("unknown", "overloaded", arrived.elapsed());
                            let reply = Reply::rpc_error(503, &AppError::Overloaded, rid);
                            reply.send(job.request, rid, arrived, "overloaded", svc);
                            continue;
                        }
                    }
                }
            }
            ("/rpc", _) => Reply::not_allowed("POST"),
            ("/healthz", Method::Get | Method::Head) => Reply::text(200, "ok"),
            ("/metrics", Method::Get) => Reply::metrics(svc, queue.len()),
            ("/readyz", Method::Get) => {
                // Probing three services can take a while: never here.
                let svc = svc.clone();
                let spawned = std::thread::Builder::new()
                    .name("readyz".into())
                    .spawn(move || {
                        let reply = Reply::readiness(&svc);
                        reply.send(request, rid, arrived, "-", &svc);
                    });
                if let Err(e) = spawned {
                    log::error!("cannot start a readiness probe: {e}");
                }
                continue;
            }
            ("/healthz" | "/metrics" | "/readyz", _) => Reply::not_allowed("GET"),
            _ => Reply::text(404, "not found"),
        };
        reply.send(request, rid, arrived, "-", svc);
    }
}
