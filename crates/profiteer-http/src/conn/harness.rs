//! A connection driven by tests: a scripted socket (what the client sent so
//! far, whether it closed, how much it takes before a write would block) and
//! what its poller would lend it.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{Conn, Env};
use crate::limits::{EdgeStats, Limits, OpenSlot};
use crate::Request;

/// A socket whose reads give what was pushed, one push per read at most.
#[derive(Default)]
pub(crate) struct Wire {
    pub(crate) input: VecDeque<Vec<u8>>,
    pub(crate) eof: bool,
    pub(crate) output: Vec<u8>,
    /// Bytes writable before a write would block; `None`: no limit.
    pub(crate) room: Option<usize>,
    /// Reads that returned bytes.
    pub(crate) reads: usize,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(front) = self.input.front_mut() else {
            return if self.eof {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        };
        let n = buf.len().min(front.len());
        buf[..n].copy_from_slice(&front[..n]);
        front.drain(..n);
        if front.is_empty() {
            self.input.pop_front();
        }
        self.reads += 1;
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.room {
            Some(0) => return Err(ErrorKind::WouldBlock.into()),
            Some(room) => room.min(buf.len()),
            None => buf.len(),
        };
        if let Some(room) = &mut self.room {
            *room -= n;
        }
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One connection and what its poller would lend it.
pub(crate) struct Harness {
    pub(crate) conn: Conn<Wire>,
    pub(crate) limits: Limits,
    pub(crate) stats: Arc<EdgeStats>,
    scratch: Vec<u8>,
    /// Requests handed on, in order.
    pub(crate) delivered: Vec<Request>,
    /// The last step's verdict: `false`, the poller would close it.
    pub(crate) alive: bool,
}

impl Harness {
    pub(crate) fn new(limits: Limits) -> Harness {
        let stats = Arc::new(EdgeStats::default());
        stats.open.fetch_add(1, Ordering::AcqRel);
        let slot = OpenSlot(stats.clone());
        let conn = Conn::new(Wire::default(), 1, None, Instant::now(), &limits, slot);
        Harness {
            conn,
            limits,
            stats,
            scratch: vec![0; 16 * 1024],
            delivered: Vec::new(),
            alive: true,
        }
    }

    fn step(&mut self, f: impl FnOnce(&mut Conn<Wire>, &mut Env<'_>) -> bool) -> bool {
        let mut got = Vec::new();
        let mut deliver = |r: Request| got.push(r);
        let mut env = Env {
            limits: &self.limits,
            stats: &self.stats,
            scratch: &mut self.scratch,
            deliver: &mut deliver,
        };
        self.alive = f(&mut self.conn, &mut env);
        self.delivered.extend(got);
        self.alive
    }

    /// The client sends `bytes` (none: the socket is only reported ready).
    pub(crate) fn send(&mut self, bytes: &[u8]) -> bool {
        if !bytes.is_empty() {
            self.conn.sock.input.push_back(bytes.to_vec());
        }
        self.conn.readable = true;
        self.step(|c, env| c.drive(env))
    }

    pub(crate) fn answer(&mut self, bytes: &[u8]) -> bool {
        let bytes = bytes.to_vec();
        self.step(move |c, env| c.answer(bytes, env))
    }

    pub(crate) fn expire(&mut self) -> bool {
        self.step(|c, env| c.expire(env))
    }

    pub(crate) fn written(&self) -> String {
        String::from_utf8_lossy(&self.conn.sock.output).into_owned()
    }
}
