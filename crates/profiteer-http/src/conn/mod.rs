//! profiteer patch: one connection's HTTP/1.1 state, advanced by its poller
//! thread (`poller.rs`) whenever the socket is ready, an answer comes back
//! or a deadline passes. The socket is non-blocking and nothing here waits:
//! a slow or silent client costs memory for its state, never a thread.
//!
//! Per request: the first byte must come within `keepalive` (idle
//! keep-alive connections close); the request line and headers within
//! `header_timeout` of the accept or of that first byte (else 408), one line
//! at most `max_header_line` and all at most `max_header_bytes` (else 431,
//! 414 for the request line), nothing read past them; the head is parsed
//! and its body framed by `head.rs` (RFC 9112; a request it refuses is
//! answered and the connection closed, nothing after it read); the
//! `HeadCheck` may refuse the body (then never read); a Content-Length over
//! `max_body_bytes` is 413, one that would pass `max_inflight_body_bytes`
//! 503, both before any body is read; the whole body arrives by
//! `request_timeout` after the headers (else 408). Only then is the request
//! handed on (`read.rs` reads it). Its answer is written within `write_timeout`. While a
//! request is handed on, nothing more is read from its connection, so a
//! pipelining client cannot make the server buffer without bound.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::chunked::Chunked;
use crate::common::StatusCode;
use crate::limits::{BodyBytes, EdgeStats, Limits, OpenSlot};
use crate::Request;

/// What the poller lends a connection while driving it.
pub(crate) struct Env<'a> {
    pub(crate) limits: &'a Limits,
    pub(crate) stats: &'a Arc<EdgeStats>,
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
        /// `body`'s room, counted against `max_inflight_body_bytes`.
        held: BodyBytes,
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
    /// The body handed on, counted in flight until its answer comes back
    /// (or the connection closes).
    held: Option<BodyBytes>,
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
            held: None,
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
        self.held = None;
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
}

#[cfg(test)]
mod harness;
#[cfg(test)]
mod prop_tests;
mod read;
#[cfg(test)]
mod tests;
