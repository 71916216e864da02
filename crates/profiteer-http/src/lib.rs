//! # Simple usage
//!
//! ## Creating the server
//!
//! The easiest way to create a server is to call `Server::http()`.
//!
//! The `http()` function returns an `IoResult<Server>` which will return an error
//! in the case where the server creation fails (for example if the listening port is already
//! occupied).
//!
//! ```no_run
//! let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! ```
//!
//! A newly-created `Server` will immediately start listening for incoming connections and HTTP
//! requests.
//!
//! ## Receiving requests
//!
//! Calling `server.recv()` will block until the next request is available.
//! This function returns an `IoResult<Request>`, so you need to handle the possible errors.
//!
//! ```no_run
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//!
//! loop {
//!     // blocks until the next request is received
//!     let request = match server.recv() {
//!         Ok(rq) => rq,
//!         Err(e) => { println!("error: {}", e); break }
//!     };
//!
//!     // do something with the request
//!     // ...
//! }
//! ```
//!
//! In a real-case scenario, you will probably want to spawn multiple worker tasks and call
//! `server.recv()` on all of them. Like this:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::thread;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! let server = Arc::new(server);
//! let mut guards = Vec::with_capacity(4);
//!
//! for _ in (0 .. 4) {
//!     let server = server.clone();
//!
//!     let guard = thread::spawn(move || {
//!         loop {
//!             let rq = server.recv().unwrap();
//!
//!             // ...
//!         }
//!     });
//!
//!     guards.push(guard);
//! }
//! ```
//!
//! If you don't want to block, you can call `server.try_recv()` instead.
//!
//! ## Handling requests
//!
//! The `Request` object returned by `server.recv()` contains informations about the client's request.
//! The most useful methods are probably `request.method()` and `request.url()` which return
//! the requested method (`GET`, `POST`, etc.) and url.
//!
//! To handle a request, you need to create a `Response` object. See the docs of this object for
//! more infos. Here is an example of creating a `Response` from a file:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! ```
//!
//! All that remains to do is call `request.respond()`:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! # let request = server.recv().unwrap();
//! # let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! let _ = request.respond(response);
//! ```
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(clippy::match_like_matches_macro)]

use std::error::Error;
use std::io::Error as IoError;
use std::io::ErrorKind as IoErrorKind;
use std::io::Result as IoResult;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use limits::OpenSlot;
use poller::{NewConn, Poster};
use util::MessagesQueue;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
pub use connection::{ConfigListenAddr, ListenAddr, Listener};
pub use limits::{EdgeStats, HeadCheck, Limits};
pub use poller::Handler;
pub use request::{ReadWrite, Request};
pub use response::{Response, ResponseBox};
pub use test::TestRequest;

mod chunked;
mod common;
mod conn;
mod connection;
mod head;
mod limits;
mod poller;
mod request;
mod response;
mod test;
mod util;

/// The main class of this library.
///
/// Destroying this object will immediately close the listening socket and the reading
///  part of all the client's connections. Requests that have already been returned by
///  the `recv()` function will not close and the responses will be transferred to the client.
pub struct Server {
    // should be false as long as the server exists
    // when set to true, all the subtasks will close within a few hundreds ms
    close: Arc<AtomicBool>,

    // queue for messages received by child threads
    messages: Arc<MessagesQueue<Message>>,

    // result of TcpListener::local_addr()
    listening_addr: ListenAddr,

    // profiteer patch: what the edge did (open connections, refusals...)
    stats: Arc<EdgeStats>,

    // profiteer patch: the threads serving the connections, woken at drop
    pollers: Vec<Arc<Poster>>,
}

enum Message {
    Error(IoError),
    NewRequest(Request),
}

impl From<IoError> for Message {
    fn from(e: IoError) -> Message {
        Message::Error(e)
    }
}

impl From<Request> for Message {
    fn from(rq: Request) -> Message {
        Message::NewRequest(rq)
    }
}

// Server must be Sync and Send: recv() is called from many threads.
const _: fn() = || {
    fn is_sync_send<T: Sync + Send>() {}
    is_sync_send::<Server>();
};

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,

    /// profiteer patch: the bounds every connection lives within.
    pub limits: Limits,
}

impl Server {
    /// Shortcut for a simple server on a specific address.
    #[inline]
    pub fn http<A>(addr: A) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            limits: Limits::default(),
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::start(listener, config.limits, None)
    }

    /// profiteer patch: a server whose complete requests go to `handler`,
    /// called on the poller thread that read each one, instead of to
    /// `recv()` (which then only reports a lost listener). The handler must
    /// not block: every connection of that poller waits while it runs. It
    /// saves the hand-off to a thread that calls `recv()`.
    pub fn with_handler(
        config: ServerConfig,
        handler: Handler,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::start(listener, config.limits, Some(handler))
    }

    /// Builds a new server using the specified TCP listener.
    ///
    /// This is useful if you've constructed TcpListener using some less usual method
    /// such as from systemd. For other cases, you probably want the `new()` function.
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::start(listener.into(), Limits::default(), None)
    }

    /// profiteer patch: the accept loop. Each accepted connection goes to a
    /// poller thread in turn (`poller.rs`), served within `limits`; one over
    /// `max_connections` is closed at once. A failed `accept` (EMFILE in a
    /// flood, ECONNABORTED...) is counted and followed by a pause growing
    /// from 10 to 100 ms, then accepting goes on; upstream ended the loop and
    /// left the process up but deaf. Only an error that says the listener
    /// itself is gone (see `listener_lost`) ends it: `recv` then returns an
    /// error of kind `NotConnected`, so the application can exit and be
    /// restarted.
    fn start(
        server: Listener,
        limits: Limits,
        handler: Option<Handler>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let close_trigger = Arc::new(AtomicBool::new(false));
        let local_addr = server.local_addr()?;
        server.set_backlog(limits.max_connections.max(128))?;
        log::debug!("Server listening on {}", local_addr);

        let messages = MessagesQueue::with_capacity(8);
        let stats = Arc::new(EdgeStats::default());
        let limits = Arc::new(limits);
        let deliver: Handler = match handler {
            Some(handler) => handler,
            None => {
                let messages = messages.clone();
                Arc::new(move |rq: Request| messages.push(rq.into()))
            }
        };
        let pollers = (0..limits.pollers.max(1))
            .map(|i| {
                poller::spawn(
                    format!("tiny_http io {i}"),
                    limits.clone(),
                    stats.clone(),
                    deliver.clone(),
                    close_trigger.clone(),
                )
            })
            .collect::<IoResult<Vec<_>>>()?;

        let inside_close_trigger = close_trigger.clone();
        let inside_messages = messages.clone();
        let inside_stats = stats.clone();
        let inside_pollers = pollers.clone();
        thread::Builder::new()
            .name("tiny_http accept".into())
            .spawn(move || {
                let stats = inside_stats;
                let mut pause = Duration::ZERO;
                let mut next = 0usize;

                log::debug!("Running accept thread");
                while !inside_close_trigger.load(Relaxed) {
                    let (sock, remote) = match server.accept() {
                        Ok(accepted) => accepted,
                        Err(e) if listener_lost(&e) => {
                            log::error!("listener lost: {}", e);
                            let lost = IoError::new(
                                IoErrorKind::NotConnected,
                                format!("listener lost: {e}"),
                            );
                            inside_messages.push(lost.into());
                            break;
                        }
                        Err(e) => {
                            EdgeStats::bump(&stats.accept_errors);
                            if pause.is_zero() {
                                log::warn!("accept failed, pausing: {}", e);
                            }
                            pause = (pause * 2)
                                .clamp(Duration::from_millis(10), Duration::from_millis(100));
                            thread::sleep(pause);
                            continue;
                        }
                    };
                    pause = Duration::ZERO;
                    let accepted = Instant::now();
                    // Only this thread adds to `open`, so the check holds.
                    if stats.open.load(Acquire) >= limits.max_connections {
                        EdgeStats::bump(&stats.refused);
                        drop(sock);
                        continue;
                    }
                    if sock.set_nodelay(true).is_err() {
                        continue;
                    }
                    stats.open.fetch_add(1, AcqRel);
                    let slot = OpenSlot(stats.clone());
                    // Connections go to the pollers in turn.
                    next = (next + 1) % inside_pollers.len();
                    inside_pollers[next].add(NewConn {
                        sock,
                        remote: Some(remote),
                        accepted,
                        slot,
                    });
                }
                log::debug!("Terminating accept thread");
            })?;

        Ok(Server {
            messages,
            close: close_trigger,
            listening_addr: local_addr,
            stats,
            pollers,
        })
    }

    /// Returns an iterator for all the incoming requests.
    ///
    /// The iterator will return `None` if the server socket is shutdown.
    #[inline]
    pub fn incoming_requests(&self) -> IncomingRequests<'_> {
        IncomingRequests { server: self }
    }

    /// Returns the address the server is listening to.
    #[inline]
    pub fn server_addr(&self) -> ListenAddr {
        self.listening_addr.clone()
    }

    /// Returns the number of clients currently connected to the server.
    pub fn num_connections(&self) -> usize {
        self.stats.open.load(Relaxed)
    }

    /// profiteer patch: what the edge did so far (see [`EdgeStats`]).
    pub fn stats(&self) -> Arc<EdgeStats> {
        self.stats.clone()
    }

    /// Blocks until an HTTP request has been submitted and returns it.
    ///
    /// profiteer patch: an error of kind `NotConnected` means the listener
    /// is gone for good (nothing more will arrive); kind `Other`, that
    /// `unblock` was called.
    pub fn recv(&self) -> IoResult<Request> {
        match self.messages.pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(rq),
            None => Err(IoError::new(IoErrorKind::Other, "thread unblocked")),
        }
    }

    /// Same as `recv()` but doesn't block longer than timeout
    pub fn recv_timeout(&self, timeout: Duration) -> IoResult<Option<Request>> {
        match self.messages.pop_timeout(timeout) {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Same as `recv()` but doesn't block.
    pub fn try_recv(&self) -> IoResult<Option<Request>> {
        match self.messages.try_pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Unblock thread stuck in recv() or incoming_requests().
    /// If there are several such threads, only one is unblocked.
    /// This method allows graceful shutdown of server.
    pub fn unblock(&self) {
        self.messages.unblock();
    }
}

impl Iterator for IncomingRequests<'_> {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        self.server.recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close.store(true, Relaxed);
        for poller in &self.pollers {
            poller.wake();
        }
        // Connect briefly to ourselves to unblock the accept thread
        let ListenAddr::IP(addr) = &self.listening_addr;
        if let Ok(stream) = TcpStream::connect(addr) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// profiteer patch: `accept` errors that say the listening socket itself is
/// unusable, so waiting cannot help. Everything else (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM, ECONNABORTED, EPROTO, EPERM...) passes.
fn listener_lost(e: &IoError) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP | libc::EFAULT)
    )
}
