//! The HTTP side: the patched tiny_http serves the connections on a few
//! poller threads within the edge's limits (`[SERVER] MAX_CONNECTIONS`,
//! `HEADER_TIMEOUT_MS`, `KEEPALIVE_S`, `MAX_BODY_BYTES`) and hands on only
//! complete requests, body read, to [`Router::route`], on the poller thread
//! that read them. `/rpc` work goes on a bounded queue to a fixed pool of
//! workers sized to the database pool; a full queue is answered 503
//! (-32002) at once, and a request that waited past its deadline is
//! answered 503 (-32001) without running. No thread here ever waits on a
//! client's bytes, and nothing on a poller thread waits at all.

pub(crate) mod delay;
mod respond;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Sender};
use tiny_http::{ConfigListenAddr, EdgeStats, Limits, Method, Server};

use crate::error::AppError;
use crate::services::{Call, Services};
use respond::Reply;

/// A request waiting for a worker.
pub struct HttpJob {
    request: tiny_http::Request,
    call: Call,
}

/// What a worker takes from the queue: an HTTP request, or a call that came
/// in another way (the Thrift port, `crate::thrift`), which so shares the
/// same workers, queue bound and shedding.
// Jobs travel by value through a bounded queue: boxing the larger variant
// would cost every HTTP request an allocation to save at most QUEUE_DEPTH
// times a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum Job {
    Http(HttpJob),
    Task(Task),
}

/// A call from another front end: it checks its own deadline and sends its
/// answer back itself; the worker only runs it.
pub type Task = Box<dyn FnOnce(&Services) + Send>;

/// Puts [`Task`]s on the workers' queue, never waiting: a full queue
/// refuses at once (the caller answers "overloaded").
#[derive(Clone)]
pub struct WorkQueue(Sender<Job>);

impl WorkQueue {
    /// `false` when the queue is full (or the workers have stopped).
    pub fn try_submit(&self, task: Task) -> bool {
        self.0.try_send(Job::Task(task)).is_ok()
    }
}

/// A request id, unique across front ends, for logs and error data.
pub fn next_rid() -> u64 {
    NEXT_RID.fetch_add(1, Ordering::Relaxed)
}

pub struct HttpServer {
    server: Arc<Server>,
    addr: SocketAddr,
    /// Dropped at shutdown (with the router's), so the workers end once
    /// the queue is drained.
    queue: Option<Sender<Job>>,
    router: Arc<Router>,
    /// Waits on `Server::recv`, which reports only a lost listener.
    watch: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(svc: Arc<Services>, host: &str, port: u16) -> Result<HttpServer, String> {
        let addr = ConfigListenAddr::from_socket_addrs((host, port))
            .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
        let (tx, rx) = bounded::<Job>(svc.config.server.queue_depth);
        let router = Arc::new(Router {
            svc: svc.clone(),
            queue: RwLock::new(Some(tx.clone())),
            edge: OnceLock::new(),
        });
        let handler = {
            let router = router.clone();
            Arc::new(move |request| router.route(request))
        };
        let server = Server::with_handler(
            tiny_http::ServerConfig {
                addr,
                limits: limits(&svc),
            },
            handler,
        )
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        let _ = router.edge.set(server.stats());
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| "listener has no IP address".to_string())?;
        let server = Arc::new(server);
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| format!("cannot start a thread: {e}"))
        };
        let (delayed_tx, delayed_rx) = bounded::<delay::Delayed>(delay::CAPACITY);
        let pacer = Arc::new(delay::Pacer::new(delayed_tx));
        let mut workers = Vec::new();
        for i in 0..svc.config.server.workers {
            let (svc, rx, pacer) = (svc.clone(), rx.clone(), pacer.clone());
            workers.push(spawn(
                format!("worker-{i}"),
                Box::new(move || worker::run(&svc, rx, &pacer)),
            )?);
        }
        drop(pacer);
        {
            let svc = svc.clone();
            workers.push(spawn(
                "delayed-sheds".into(),
                Box::new(move || delay::run(&svc, delayed_rx)),
            )?);
        }
        let watch = {
            let server = server.clone();
            spawn("listener-watch".into(), Box::new(move || watch(&server)))?
        };
        Ok(HttpServer {
            server,
            addr,
            queue: Some(tx),
            router,
            watch: Some(watch),
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The workers' queue, for calls from other front ends. Every clone
    /// must be dropped before [`HttpServer::shutdown`] can return.
    pub fn work_queue(&self) -> Option<WorkQueue> {
        self.queue.clone().map(WorkQueue)
    }

    /// Stops accepting, lets the workers finish what is queued, returns.
    pub fn shutdown(mut self) {
        self.queue = None;
        self.router.close();
        self.server.unblock();
        if let Some(w) = self.watch.take() {
            let _ = w.join();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // The workers hand their answers to the poller threads, which write
        // them: without this wait the process could exit with an in-flight
        // request's answer computed but never sent. Bounded, as a client may
        // not be reading.
        let edge = self.server.stats();
        let until = Instant::now() + ANSWERS_WRITTEN_WITHIN;
        while edge.answering.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// The edge's bounds from `[SERVER]`. A body is read only for a request
/// that will be served (`POST /rpc` with a valid client key), decided when
/// its headers end: any other is answered without it (a keyless caller 401)
/// and its connection closed, so no unwanted body is ever buffered.
fn limits(svc: &Arc<Services>) -> Limits {
    let c = &svc.config.server;
    let svc = svc.clone();
    Limits {
        max_connections: c.max_connections,
        header_timeout: c.header_timeout,
        keepalive: c.keepalive,
        request_timeout: c.request_timeout,
        max_body_bytes: c.max_body_bytes,
        max_inflight_body_bytes: c.max_inflight_body_bytes,
        write_timeout: c.write_timeout,
        head_check: Some(Arc::new(move |rq: &tiny_http::Request| {
            let path = rq.url().split('?').next().unwrap_or("");
            path == "/rpc" && *rq.method() == Method::Post && worker::caller(&svc, rq).is_ok()
        })),
        ..Limits::default()
    }
}

static NEXT_RID: AtomicU64 = AtomicU64::new(1);

/// How long a stopping server waits for handed-over answers to be written.
const ANSWERS_WRITTEN_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// `/metrics` and `/readyz` run on short-lived threads, at most
/// `SIDE_SLOTS` at once: a flood of them is answered 503, not with threads.
const SIDE_SLOTS: usize = 4;
static SIDE_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Side slots in use now, for `/metrics`: a leak would show as a gauge
/// stuck above zero on an idle server.
pub fn side_slots_in_use() -> usize {
    SIDE_IN_USE.load(Ordering::Acquire)
}

/// One of `SIDE_SLOTS`, given back when dropped. Only [`SideSlot::take`]
/// makes one, and only when it counted it: a slot that was never taken
/// must never exist, or its drop would give back one it never held.
struct SideSlot(());

impl SideSlot {
    fn take() -> Option<SideSlot> {
        SIDE_IN_USE
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < SIDE_SLOTS).then_some(n + 1)
            })
            .ok()
            .map(|_| SideSlot(()))
    }
}

impl Drop for SideSlot {
    fn drop(&mut self) {
        SIDE_IN_USE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Blocks until the server is unblocked (shutdown), or the listening
/// socket is gone for good: a process that stays up deaf helps nobody, so
/// it exits for a supervisor to restart it.
fn watch(server: &Server) {
    if let Err(e) = server.recv() {
        if e.kind() == io::ErrorKind::NotConnected {
            log::error!("{e}: exiting");
            log::logger().flush();
            std::process::exit(1);
        }
    }
}

/// Routes each complete request, on the poller thread that read it: `/rpc`
/// work to the workers' queue, the rest answered here or on a side thread.
/// Nothing here waits.
struct Router {
    svc: Arc<Services>,
    /// `None` once the server stops: nothing more is queued.
    queue: RwLock<Option<Sender<Job>>>,
    edge: OnceLock<Arc<EdgeStats>>,
}

impl Router {
    fn close(&self) {
        match self.queue.write() {
            Ok(mut q) => *q = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }

    /// Queues an `/rpc` request; gives it back when the queue is full or
    /// closed.
    fn enqueue(&self, job: HttpJob) -> Option<HttpJob> {
        let queue = match self.queue.read() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(queue) = queue.as_ref() else {
            return Some(job);
        };
        match queue.try_send(Job::Http(job)) {
            Ok(()) => None,
            Err(e) => match e.into_inner() {
                Job::Http(job) => Some(job),
                Job::Task(_) => None, // only HTTP jobs are sent here
            },
        }
    }

    fn queue_depth(&self) -> usize {
        match self.queue.read() {
            Ok(q) => q.as_ref().map_or(0, |q| q.len()),
            Err(_) => 0,
        }
    }

    fn route(&self, request: tiny_http::Request) {
        let svc = &self.svc;
        let arrived = request.arrived();
        let call = Call {
            rid: next_rid(),
            arrived,
            deadline: arrived + svc.config.server.request_timeout,
            peer: request.remote_addr().map(|a| a.ip()),
        };
        let path = request.url().split('?').next().unwrap_or("");
        let method = request.method();
        let reply = match (path, method) {
            ("/rpc", Method::Post) => {
                let job = HttpJob { request, call };
                if let Some(job) = self.enqueue(job) {
                    svc.metrics.shed.fetch_add(1, Ordering::Relaxed);
                    svc.metrics
                        .observe("unknown", "overloaded", arrived.elapsed());
                    let reply = Reply::rpc_error(503, &AppError::Overloaded, call.rid);
                    reply.send(job.request, &call, "overloaded", svc);
                }
                return;
            }
            ("/rpc", _) => Reply::not_allowed("POST"),
            ("/healthz", Method::Get | Method::Head) => Reply::text(200, "ok"),
            ("/metrics" | "/readyz", Method::Get) => {
                self.side(request, call);
                return;
            }
            ("/healthz" | "/metrics" | "/readyz", _) => Reply::not_allowed("GET"),
            _ => Reply::text(404, "not found"),
        };
        reply.send(request, &call, "-", svc);
    }

    /// `/metrics` and `/readyz`: rendering or probing can take a while (a
    /// slow reader, a dead dependency), so never on a poller thread, and
    /// only a few at once.
    fn side(&self, request: tiny_http::Request, call: Call) {
        let svc = &self.svc;
        let is_metrics = request.url().starts_with("/metrics");
        let (Some(slot), Some(edge)) = (SideSlot::take(), self.edge.get()) else {
            Reply::text(503, "busy").send(request, &call, "busy", svc);
            return;
        };
        let queue_depth = self.queue_depth();
        let (svc, edge) = (svc.clone(), edge.clone());
        let spawned = std::thread::Builder::new()
            .name("side".into())
            .spawn(move || {
                let _slot = slot;
                let reply = if is_metrics {
                    Reply::metrics(&svc, queue_depth, &edge)
                } else {
                    Reply::readiness(&svc)
                };
                reply.send(request, &call, "-", &svc);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a thread for a side request: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The /readyz outage: `taken.then_some(SideSlot)` built a slot even
    /// when none was free, and its drop gave back a slot it never held, so
    /// a burst of probes wrapped the count and every later probe got 503.
    #[test]
    fn refused_side_slots_give_nothing_back_and_taken_ones_give_back_theirs() {
        let before = side_slots_in_use();
        let held: Vec<SideSlot> = std::iter::from_fn(SideSlot::take).take(64).collect();
        assert_eq!(held.len(), SIDE_SLOTS - before, "took more than there are");
        for _ in 0..12 {
            assert!(SideSlot::take().is_none(), "a slot past the limit");
        }
        assert_eq!(side_slots_in_use(), SIDE_SLOTS);
        drop(held);
        assert_eq!(side_slots_in_use(), before);
        assert!(SideSlot::take().is_some(), "a free slot was refused");
        assert_eq!(side_slots_in_use(), before);
    }
}
