//! profiteer patch: the threads that serve connections. Each poller thread
//! owns a share of the open connections (non-blocking sockets in one mio
//! `Poll`) and advances each (`conn.rs`) when its socket is ready, when the
//! application's answer to it comes back, or when its deadline passes.
//! Upstream served every connection on a thread of its own: a thousand
//! connections were a thousand threads taking turns on the cores, and a
//! thousand silent ones a thousand stacks.
//!
//! Answers come back through the poller's inbox (answers and newly accepted
//! connections), with one wake-up of its `Poll` however many arrive while
//! it is busy.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use crate::conn::{Conn, Env};
use crate::limits::{EdgeStats, Limits, OpenSlot};
use crate::Request;

/// A connection accepted and not yet taken up by its poller.
pub(crate) struct NewConn {
    pub(crate) sock: TcpStream,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) accepted: Instant,
    pub(crate) slot: OpenSlot,
}

struct Answer {
    slot: usize,
    gen: u64,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Inbox {
    conns: Vec<NewConn>,
    answers: Vec<Answer>,
}

/// The side of a poller that other threads post to.
pub(crate) struct Poster {
    inbox: Mutex<Inbox>,
    /// Set by the first post after the poller last emptied its inbox: only
    /// that post wakes it.
    posted: AtomicBool,
    waker: Waker,
}

impl Poster {
    fn post(&self, put: impl FnOnce(&mut Inbox)) {
        match self.inbox.lock() {
            Ok(mut inbox) => put(&mut inbox),
            Err(poisoned) => put(&mut poisoned.into_inner()),
        }
        if !self.posted.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn add(&self, conn: NewConn) {
        self.post(|inbox| inbox.conns.push(conn));
    }

    /// Wakes the poller so that it sees the server closing.
    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// What was posted since the last take; `None` when nothing was.
    fn take(&self) -> Option<Inbox> {
        if !self.posted.swap(false, Ordering::SeqCst) {
            return None;
        }
        Some(match self.inbox.lock() {
            Ok(mut inbox) => std::mem::take(&mut *inbox),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        })
    }
}

/// Where a request's answer is written: a buffer that goes back to the
/// connection's poller when the request is answered (or dropped).
pub(crate) struct AnswerSink {
    poster: Arc<Poster>,
    slot: usize,
    gen: u64,
    buf: Vec<u8>,
}

impl Write for AnswerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for AnswerSink {
    fn drop(&mut self) {
        let answer = Answer {
            slot: self.slot,
            gen: self.gen,
            bytes: std::mem::take(&mut self.buf),
        };
        self.poster.post(|inbox| inbox.answers.push(answer));
    }
}

/// What receives complete requests, on the poller thread that read them:
/// the server's queue for `recv()`, or the application's handler
/// (`Server::with_handler`).
pub type Handler = Arc<dyn Fn(Request) + Send + Sync>;

const WAKER: Token = Token(usize::MAX);
/// Deadlines are looked at no more often than this.
const SCAN_EVERY: Duration = Duration::from_millis(10);
/// With nothing due, the poller still looks this often.
const IDLE_SCAN: Duration = Duration::from_secs(1);

/// Starts one poller thread; its [`Poster`] takes its connections.
pub(crate) fn spawn(
    name: String,
    limits: Arc<Limits>,
    stats: Arc<EdgeStats>,
    deliver: Handler,
    close: Arc<AtomicBool>,
) -> io::Result<Arc<Poster>> {
    let poll = Poll::new()?;
    let poster = Arc::new(Poster {
        inbox: Mutex::new(Inbox::default()),
        posted: AtomicBool::new(false),
        waker: Waker::new(poll.registry(), WAKER)?,
    });
    let mut poller = Poller {
        poll,
        poster: poster.clone(),
        limits,
        stats,
        deliver,
        conns: Vec::new(),
        free: Vec::new(),
        next_gen: 0,
        scratch: vec![0; 16 * 1024],
        schedule: Schedule::new(Instant::now()),
    };
    thread::Builder::new()
        .name(name)
        .spawn(move || poller.run(&close))?;
    Ok(poster)
}

struct Poller {
    poll: Poll,
    poster: Arc<Poster>,
    limits: Arc<Limits>,
    stats: Arc<EdgeStats>,
    deliver: Handler,
    conns: Vec<Option<Conn<mio::net::TcpStream>>>,
    free: Vec<usize>,
    next_gen: u64,
    scratch: Vec<u8>,
    schedule: Schedule,
}

/// When a poller next looks at its connections' deadlines: at the earliest
/// one, but no sooner than [`SCAN_EVERY`] after the last look.
struct Schedule {
    /// The earliest deadline heard of since the last look.
    next: Instant,
    last: Instant,
}

impl Schedule {
    fn new(now: Instant) -> Schedule {
        Schedule {
            next: now + IDLE_SCAN,
            last: now,
        }
    }

    /// A connection's deadline is `due`: the look comes no later for it.
    /// Only ever earlier: a deadline that has passed must not postpone the
    /// look (it used to set it `SCAN_EVERY` from now, so a crowd of
    /// connections past their deadline, each sending a byte now and then,
    /// kept the poller from ever looking).
    fn deadline(&mut self, due: Instant) {
        self.next = self.next.min(due);
    }

    fn due(&self) -> Instant {
        self.next.max(self.last + SCAN_EVERY)
    }

    /// Looked at `now`; the earliest deadline left is `next`.
    fn scanned(&mut self, now: Instant, next: Instant) {
        self.last = now;
        self.next = next;
    }
}

impl Poller {
    fn run(&mut self, close: &AtomicBool) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .schedule
                .due()
                .saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("poll failed: {}", e);
                    thread::sleep(SCAN_EVERY);
                }
                continue;
            }
            if close.load(Ordering::Acquire) {
                break;
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                let slot = event.token().0;
                let Some(Some(conn)) = self.conns.get_mut(slot) else {
                    continue;
                };
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.readable = true;
                }
                self.drive(slot, |conn, env| conn.drive(env));
            }
            if let Some(inbox) = self.poster.take() {
                self.receive(inbox);
            }
            if Instant::now() >= self.schedule.due() {
                self.scan();
            }
        }
        for slot in 0..self.conns.len() {
            self.close(slot);
        }
    }

    /// Takes up newly accepted connections and writes the answers that came
    /// back.
    fn receive(&mut self, inbox: Inbox) {
        for new in inbox.conns {
            self.adopt(new);
        }
        for answer in inbox.answers {
            match self.conns.get(answer.slot) {
                Some(Some(conn)) if conn.gen == answer.gen => {
                    let bytes = answer.bytes;
                    self.drive(answer.slot, move |conn, env| conn.answer(bytes, env));
                }
                // Its connection is gone: the answer has nowhere to go.
                _ => {
                    self.stats.answering.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Runs `step` on the connection in `slot`; closes it when it says so.
    fn drive(
        &mut self,
        slot: usize,
        step: impl FnOnce(&mut Conn<mio::net::TcpStream>, &mut Env<'_>) -> bool,
    ) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        let gen = conn.gen;
        let (poster, target) = (&self.poster, &self.deliver);
        let mut deliver = |mut request: Request| {
            request.set_sink(Box::new(AnswerSink {
                poster: poster.clone(),
                slot,
                gen,
                buf: Vec::new(),
            }));
            target(request)
        };
        let mut env = Env {
            limits: &self.limits,
            stats: &self.stats,
            scratch: &mut self.scratch,
            deliver: &mut deliver,
        };
        if !step(conn, &mut env) {
            self.close(slot);
            return;
        }
        if let Some(due) = conn.deadline {
            self.schedule.deadline(due);
        }
    }

    fn adopt(&mut self, new: NewConn) {
        if new.sock.set_nonblocking(true).is_err() {
            return;
        }
        let mut sock = mio::net::TcpStream::from_std(new.sock);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut sock, Token(slot), interest)
        {
            log::warn!("cannot watch a connection: {}", e);
            self.free.push(slot);
            return;
        }
        self.next_gen += 1;
        let conn = Conn::new(
            sock,
            self.next_gen,
            new.remote,
            new.accepted,
            &self.limits,
            new.slot,
        );
        self.conns[slot] = Some(conn);
        // Bytes that came with the connection are reported by the first
        // readiness event; the header deadline starts now.
        self.drive(slot, |_, _| true);
    }

    /// Expires every connection whose deadline has passed, and finds the
    /// next deadline.
    fn scan(&mut self) {
        let now = Instant::now();
        let mut next = now + IDLE_SCAN;
        for slot in 0..self.conns.len() {
            let Some(conn) = &self.conns[slot] else {
                continue;
            };
            if conn.deadline.is_some_and(|due| due <= now) {
                self.drive(slot, |conn, env| conn.expire(env));
            }
            if let Some(Some(conn)) = self.conns.get(slot) {
                if let Some(due) = conn.deadline {
                    next = next.min(due);
                }
            }
        }
        self.schedule.scanned(now, next);
    }

    fn close(&mut self, slot: usize) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        conn.closing(&self.stats);
        let _ = self.poll.registry().deregister(&mut conn.sock);
        let _ = conn.sock.shutdown(Shutdown::Write);
        self.free.push(slot);
    }
}

#[cfg(test)]
#[path = "poller_tests.rs"]
mod socket_tests;

#[cfg(test)]
mod tests {
    use super::{Schedule, SCAN_EVERY};
    use std::time::{Duration, Instant};

    #[test]
    fn passed_deadlines_that_keep_reporting_never_postpone_the_look() {
        let t = Instant::now();
        let mut s = Schedule::new(t);
        s.scanned(t, t + Duration::from_millis(1));
        let looks_at = s.due();
        assert_eq!(looks_at, t + SCAN_EVERY);
        // Event after event from connections whose deadline has passed.
        for i in 0..20 {
            std::thread::sleep(Duration::from_millis(1));
            s.deadline(t + Duration::from_millis(1));
            assert!(s.due() <= looks_at, "postponed by event {}", i);
        }
    }

    #[test]
    fn the_look_comes_at_the_earliest_deadline_but_not_too_often() {
        let t = Instant::now();
        let mut s = Schedule::new(t);
        s.scanned(t, t + Duration::from_secs(1));
        s.deadline(t + Duration::from_millis(500));
        s.deadline(t + Duration::from_millis(700));
        assert_eq!(s.due(), t + Duration::from_millis(500));
        s.deadline(t);
        assert_eq!(s.due(), t + SCAN_EVERY);
    }
}
