//! profiteer patch: one connection's HTTP/1.1 state, advanced by its poller
//! thread (`poller.rs`) whenever the socket is ready, an answer comes back
//! or a deadline passes. The socket is non-blocking and nothing here waits:
//! a slow or silent client costs memory for its state, never a thread.
//!
//! Per request: the first byte must come within `keepalive` (idle
//! keep-alive connections close); the request line and headers within
//! `header_timeout` of the accept or of that first byte (else 408), one line
//! at most `max_header_line` and all at most `max_header_bytes` (else 431,
//! 414 for the request line), nothing read past them; a Content-Length over
//! `max_body_bytes` is 413 before any body is read; the whole body arrives
//! by `request_timeout` after the headers (else 408). Only then is the
//! request handed on. Its answer is written within `write_timeout`. While a
//! request is handed on, nothing more is read from its connection, so a
//! pipelining client cannot make the server buffer without bound.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::chunked::{Chunked, Step};
use crate::common::StatusCode;
use crate::head::{self, find, wants_close, Framing, Head};
use crate::limits::{EdgeStats, Limits, OpenSlot};
use crate::request::new_request;
use crate::Request;

/// What the poller lends a connection while driving it.
pub(crate) struct Env<'a> {
    pub(crate) limits: &'a Limits,
    pub(crate) stats: &'a EdgeStats,
    /// A reusable read buffer.
    pub(crate) scratch: &'a mut [u8],
    /// Gives a complete request its answer sink and hands it on.
    pub(crate) deliver: &'a mut dyn FnMut(Request),
}

enum Phase {
    /// Between requests: waiting for the next one's first byte.
    Idle,
    /// Reading the request line and headers: `scanned` bytes of `inb` have
    /// been searched for line ends, the current line starts at `line_start`
    /// and `lines` lines are complete.
    Head {
        scanned: usize,
        line_start: usize,
        lines: usize,
    },
    /// Reading the body of `request`.
    Body {
        request: Box<Request>,
        reader: BodyReader,
        body: Vec<u8>,
        /// Bytes taken off the wire for this body (chunk framing included).
        wire: usize,
    },
    /// Handed on; its answer has not come back yet.
    Waiting,
    /// Writing an answer; after it, the next request (or close).
    Answering,
    /// Writing a refusal of the edge's own; then close.
    Refusing,
}

enum BodyReader {
    Length(usize),
    Chunked(Chunked),
}

pub(crate) struct Conn<S> {
    pub(crate) sock: S,
    /// Tells this connection from an earlier one in the same slot, so an
    /// answer for a connection that is gone is not written to a new one.
    pub(crate) gen: u64,
    remote: Option<SocketAddr>,
    /// Bytes read and not yet used.
    inb: Vec<u8>,
    /// The socket may have bytes to read (reset when a read comes up short).
    pub(crate) readable: bool,
    phase: Phase,
    /// When the current phase gives up; `None` while the application has
    /// the request (it keeps its own deadline).
    pub(crate) deadline: Option<Instant>,
    out: Vec<u8>,
    out_pos: usize,
    /// The current request is the connection's last.
    close_after: bool,
    /// An answer counted in `EdgeStats::answering` is being written.
    counted: bool,
    _slot: OpenSlot,
}

/// A refusal's bytes: status line, no body, `Connection: close`.
fn refusal(code: u16) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        StatusCode(code).default_reason_phrase()
    )
    .into_bytes()
}

fn bump(counter: &std::sync::atomic::AtomicU64) {
    EdgeStats::bump(counter)
}

/// What a read gave.
enum Fill {
    Got,
    /// Nothing now: wait for the socket to be readable.
    Wait,
    /// The client closed its side, or the socket failed.
    Gone,
}

impl<S: Read + Write> Conn<S> {
    pub(crate) fn new(
        sock: S,
        gen: u64,
        remote: Option<SocketAddr>,
        accepted: Instant,
        limits: &Limits,
        slot: OpenSlot,
    ) -> Conn<S> {
        Conn {
            sock,
            gen,
            remote,
            inb: Vec::new(),
            readable: false,
            phase: Phase::Head {
                scanned: 0,
                line_start: 0,
                lines: 0,
            },
            deadline: Some(accepted + limits.header_timeout),
            out: Vec::new(),
            out_pos: 0,
            close_after: false,
            counted: false,
            _slot: slot,
        }
    }

    /// Advances as far as the socket allows; `false`: close it now.
    pub(crate) fn drive(&mut self, env: &mut Env<'_>) -> bool {
        loop {
            if self.out_pos < self.out.len() {
                match self.flush() {
                    Ok(true) => {}
                    Ok(false) => return true, // the socket will say when it takes more
                    Err(_) => return false,
                }
                self.out.clear();
                self.out_pos = 0;
                match self.phase {
                    Phase::Refusing => return false,
                    Phase::Answering => {
                        self.answered(env.stats);
                        if self.close_after {
                            return false;
                        }
                        self.phase = Phase::Idle;
                        self.deadline = Some(Instant::now() + env.limits.keepalive);
                        // An idle connection keeps no big buffer from a big request.
                        if self.inb.is_empty() && self.inb.capacity() > 4096 {
                            self.inb = Vec::new();
                        }
                    }
                    _ => {}
                }
            }
            let progressed = match self.phase {
                Phase::Waiting | Phase::Answering | Phase::Refusing => return true,
                Phase::Idle if self.inb.is_empty() => match self.fill(env, usize::MAX) {
                    Fill::Got => true,
                    Fill::Wait => return true,
                    Fill::Gone => return false,
                },
                Phase::Idle => {
                    self.phase = Phase::Head {
                        scanned: 0,
                        line_start: 0,
                        lines: 0,
                    };
                    self.deadline = Some(Instant::now() + env.limits.header_timeout);
                    true
                }
                Phase::Head { .. } => match self.scan_head(env.limits) {
                    Err(code) => {
                        bump(&env.stats.headers_too_large);
                        self.refuse(code, env.limits);
                        true
                    }
                    Ok(Some(end)) => {
                        self.start_request(end, env);
                        true
                    }
                    Ok(None) => {
                        let room = (env.limits.max_header_bytes + 3).saturating_sub(self.inb.len());
                        match self.fill(env, room.max(1)) {
                            Fill::Got => true,
                            Fill::Wait => return true,
                            Fill::Gone => return false,
                        }
                    }
                },
                Phase::Body { .. } => match self.take_body(env) {
                    Ok(true) => true,
                    Ok(false) => {
                        let want = match &self.phase {
                            Phase::Body {
                                reader: BodyReader::Length(n),
                                body,
                                ..
                            } => n.saturating_sub(body.len()),
                            _ => usize::MAX,
                        };
                        match self.fill(env, want.max(1)) {
                            Fill::Got => true,
                            Fill::Wait => return true,
                            Fill::Gone => return false,
                        }
                    }
                    Err(code) => {
                        self.refuse(code, env.limits);
                        true
                    }
                },
            };
            if !progressed {
                return true;
            }
        }
    }

    /// The application's answer to the request handed on.
    pub(crate) fn answer(&mut self, bytes: Vec<u8>, env: &mut Env<'_>) -> bool {
        self.counted = true;
        if !matches!(self.phase, Phase::Waiting) {
            return false; // not expected: nothing was handed on
        }
        self.phase = Phase::Answering;
        self.out = bytes;
        self.out_pos = 0;
        self.deadline = Some(Instant::now() + env.limits.write_timeout);
        if self.out.is_empty() {
            self.out.extend_from_slice(&refusal(500));
            self.close_after = true;
        }
        self.drive(env)
    }

    /// The deadline passed: `false` to close now.
    pub(crate) fn expire(&mut self, env: &mut Env<'_>) -> bool {
        match self.phase {
            Phase::Idle => {
                bump(&env.stats.idle_closed);
                false
            }
            Phase::Head { .. } => {
                bump(&env.stats.header_timeouts);
                self.refuse(408, env.limits);
                self.drive(env)
            }
            Phase::Body { .. } => {
                bump(&env.stats.body_timeouts);
                self.refuse(408, env.limits);
                self.drive(env)
            }
            Phase::Waiting => true,
            Phase::Answering | Phase::Refusing => false,
        }
    }

    /// The connection is being closed: an answer it was writing no longer
    /// counts as being answered.
    pub(crate) fn closing(&mut self, stats: &EdgeStats) {
        self.answered(stats);
    }

    fn answered(&mut self, stats: &EdgeStats) {
        if self.counted {
            self.counted = false;
            stats.answering.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn refuse(&mut self, code: u16, limits: &Limits) {
        self.inb.clear();
        self.out = refusal(code);
        self.out_pos = 0;
        self.phase = Phase::Refusing;
        self.deadline = Some(Instant::now() + limits.write_timeout);
    }

    /// Writes what it can of `out`: `Ok(true)` when all of it is written.
    fn flush(&mut self) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads at most `max` bytes into `inb`.
    fn fill(&mut self, env: &mut Env<'_>, max: usize) -> Fill {
        if !self.readable {
            return Fill::Wait;
        }
        let len = env.scratch.len().min(max);
        loop {
            match self.sock.read(&mut env.scratch[..len]) {
                Ok(0) => return Fill::Gone,
                Ok(n) => {
                    // A short read emptied the socket: the poller hears of
                    // the next bytes.
                    if n < len {
                        self.readable = false;
                    }
                    self.inb.extend_from_slice(&env.scratch[..n]);
                    return Fill::Got;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Fill::Wait;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Fill::Gone,
            }
        }
    }

    /// Searches the buffered head for its end: `Ok(Some(end))`, the index
    /// after the empty line; `Ok(None)`, more is needed; `Err(status)`, a
    /// line or the head is over its limit.
    fn scan_head(&mut self, limits: &Limits) -> Result<Option<usize>, u16> {
        let (max_line, max_all) = (limits.max_header_line, limits.max_header_bytes);
        loop {
            let Phase::Head {
                scanned,
                line_start,
                lines,
            } = &mut self.phase
            else {
                return Ok(None);
            };
            let over = |lines: usize| if lines == 0 { 414 } else { 431 };
            let Some(i) = self.inb[*scanned..].iter().position(|&b| b == b'\n') else {
                // +2: the line end does not count against the line's limit.
                if self.inb.len() - *line_start > max_line + 2 || self.inb.len() > max_all {
                    return Err(over(*lines));
                }
                *scanned = self.inb.len();
                return Ok(None);
            };
            let end = *scanned + i + 1;
            if end - *line_start > max_line + 2 || end > max_all {
                return Err(over(*lines));
            }
            let mut line = &self.inb[*line_start..end - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if !line.is_empty() {
                *lines += 1;
                *line_start = end;
                *scanned = end;
            } else if *lines == 0 {
                // RFC 7230 3.5: empty lines before a request are ignored.
                self.inb.drain(..end);
                *scanned = 0;
                *line_start = 0;
            } else {
                return Ok(Some(end));
            }
        }
    }

    /// The head `inb[..end]` is complete: checks it, then reads the body or
    /// hands the request on.
    fn start_request(&mut self, end: usize, env: &mut Env<'_>) {
        let limits = env.limits;
        let head: Vec<u8> = self.inb.drain(..end).collect();
        match self.parse_head(&head, env) {
            Ok(()) => {}
            Err(code) => {
                if code == 413 {
                    bump(&env.stats.bodies_too_large);
                }
                self.refuse(code, limits);
            }
        }
    }

    fn parse_head(&mut self, head: &[u8], env: &mut Env<'_>) -> Result<(), u16> {
        let limits = env.limits;
        let arrived = Instant::now();
        let Head {
            method,
            path,
            version,
            headers,
        } = head::parse(head)?;
        let framing = head::framing(&version, &headers)?;
        self.close_after = wants_close(&headers, &version);
        if let Framing::Length(n) = framing {
            if n > limits.max_body_bytes {
                return Err(413);
            }
        }
        let expects_continue = match find(&headers, "Expect") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            Some(_) => return Err(417),
        };
        let claimed = match framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        };
        let request = new_request(
            false,
            method,
            path,
            version,
            headers,
            self.remote,
            Vec::new(),
            claimed,
            arrived,
        );
        let reader = match framing {
            Framing::None => {
                self.hand_on(request, env);
                return Ok(());
            }
            Framing::Length(n) => BodyReader::Length(n),
            Framing::Chunked => BodyReader::Chunked(Chunked::new()),
        };
        if !limits.head_check.as_ref().is_none_or(|f| f(&request)) {
            // Not one byte of the body is read: the application answers
            // without it and the connection closes (what may follow the
            // head is not a request).
            bump(&env.stats.bodies_refused);
            self.inb.clear();
            self.close_after = true;
            self.hand_on(request, env);
            return Ok(());
        }
        if expects_continue {
            self.out = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
            self.out_pos = 0;
        }
        let initial = match reader {
            BodyReader::Length(n) => n.min(64 * 1024),
            BodyReader::Chunked(_) => 0,
        };
        self.phase = Phase::Body {
            request: Box::new(request),
            reader,
            body: Vec::with_capacity(initial),
            wire: 0,
        };
        self.deadline = Some(arrived + limits.request_timeout);
        Ok(())
    }

    /// Moves buffered bytes into the body: `Ok(true)` when that made
    /// progress (the body may be complete and handed on), `Ok(false)` when
    /// more must be read, `Err(status)` to refuse.
    fn take_body(&mut self, env: &mut Env<'_>) -> Result<bool, u16> {
        let max = env.limits.max_body_bytes;
        let Phase::Body {
            reader, body, wire, ..
        } = &mut self.phase
        else {
            return Ok(false);
        };
        let complete = match reader {
            BodyReader::Length(n) => {
                let take = (*n - body.len()).min(self.inb.len());
                body.extend(self.inb.drain(..take));
                body.len() == *n
            }
            BodyReader::Chunked(decoder) => {
                // Chunk framing may cost more bytes than the body it
                // carries; past this budget the body is refused as too large.
                let budget = max.saturating_mul(2).saturating_add(64 * 1024);
                let (used, step) = decoder.feed(&self.inb, body, max);
                self.inb.drain(..used);
                *wire += used;
                match step {
                    Step::Done => true,
                    Step::Bad => return Err(400),
                    Step::TooLarge => {
                        bump(&env.stats.bodies_too_large);
                        return Err(413);
                    }
                    Step::More if *wire > budget => {
                        bump(&env.stats.bodies_too_large);
                        return Err(413);
                    }
                    Step::More => false,
                }
            }
        };
        if !complete {
            return Ok(false);
        }
        let Phase::Body { request, body, .. } = std::mem::replace(&mut self.phase, Phase::Waiting)
        else {
            return Ok(false);
        };
        let mut request = *request;
        request.set_body(body);
        self.hand_on(request, env);
        Ok(true)
    }

    fn hand_on(&mut self, mut request: Request, env: &mut Env<'_>) {
        request.close_after = self.close_after;
        self.phase = Phase::Waiting;
        self.deadline = None;
        env.stats.answering.fetch_add(1, Ordering::AcqRel);
        (env.deliver)(request);
    }
}
