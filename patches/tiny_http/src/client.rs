//! profiteer patch: one connection, served from accept to close on its own
//! thread. Upstream split a connection across threads and left whoever
//! answered a request to drain its body and write to the socket, so a slow
//! or silent client could hold any thread that touched its request.
//!
//! Here, for each request in turn: wait for its first byte (keep-alive),
//! read the request line and headers within `header_timeout` and their size
//! limits, read the whole body by the request's deadline, hand the request
//! on, wait for its answer and write it within `write_timeout`. Only this
//! thread reads or writes the socket; a request reaches the application
//! complete, and answering it only fills a buffer.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chunked_transfer::Decoder;

use crate::common::{Header, StatusCode};
use crate::connection::Connection;
use crate::head::{find, framing, parse_request_line, wants_close, Framing};
use crate::limits::{Answering, EdgeStats, Limits};
use crate::request::{new_request, ResponseSink};
use crate::Request;

/// How a connection ends early.
enum Fail {
    /// Answer with this status (the reason is counted already), then close.
    Answer(u16),
    /// Close without a word: the client left, idled out, or cannot be written to.
    Close,
}

/// Marks a body that passed `max_body_bytes` (or its wire budget).
#[derive(Debug)]
struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body too large")
    }
}

impl std::error::Error for BodyTooLarge {}

struct Client<'a> {
    reader: BufReader<Connection>,
    limits: &'a Limits,
    stats: &'a EdgeStats,
    remote_addr: Option<std::net::SocketAddr>,
}

/// Serves `conn` until it closes, fails or breaks a limit. `accepted`
/// starts the first request's header deadline; `deliver` hands a complete
/// request to the application.
pub(crate) fn serve(
    mut conn: Connection,
    accepted: Instant,
    limits: &Limits,
    stats: &EdgeStats,
    deliver: &dyn Fn(Request),
) {
    let remote_addr = conn.peer_addr().ok().flatten();
    let mut client = Client {
        reader: BufReader::with_capacity(4096, conn),
        limits,
        stats,
        remote_addr,
    };
    let mut first = true;
    loop {
        match client.one(first, accepted, deliver) {
            Ok(true) => first = false,
            Ok(false) | Err(Fail::Close) => break,
            Err(Fail::Answer(code)) => {
                client.refuse(code);
                break;
            }
        }
    }
    let _ = client.reader.get_ref().shutdown(std::net::Shutdown::Write);
}

fn bump(counter: &AtomicU64) {
    EdgeStats::bump(counter)
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<BodyTooLarge>())
}

impl Client<'_> {
    /// Makes at least one byte available (0: the client closed), waiting no
    /// later than `deadline`. The socket's read timeout is set to what is
    /// left, so a trickling client is cut off at the deadline, not after one
    /// more full timeout per byte.
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        if self.reader.buffer().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(1) {
                return Err(io::Error::new(ErrorKind::TimedOut, "deadline passed"));
            }
            self.reader.get_ref().set_read_timeout(left)?;
        }
        loop {
            match self.reader.fill_buf() {
                Ok(buf) => return Ok(buf.len()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `data` in full, giving up at `deadline` (each write call may
    /// also wait up to the socket's write timeout, `write_timeout`).
    fn write_by(&mut self, mut data: &[u8], deadline: Instant) -> io::Result<()> {
        let sock = self.reader.get_mut();
        while !data.is_empty() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(ErrorKind::TimedOut, "write deadline passed"));
            }
            match sock.write(data) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// An answer of the edge's own (no body), after which the connection closes.
    fn refuse(&mut self, code: u16) {
        let head = format!(
            "HTTP/1.1 {code} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            StatusCode(code).default_reason_phrase()
        );
        let deadline = Instant::now() + self.limits.write_timeout;
        let _ = self.write_by(head.as_bytes(), deadline);
    }

    /// One request: `Ok(true)` when the connection stays open for another.
    fn one(
        &mut self,
        first: bool,
        accepted: Instant,
        deliver: &dyn Fn(Request),
    ) -> Result<bool, Fail> {
        let limits = self.limits;
        let head_deadline = if first {
            accepted + limits.header_timeout
        } else {
            match self.fill(Instant::now() + limits.keepalive) {
                Ok(0) => return Err(Fail::Close),
                Ok(_) => Instant::now() + limits.header_timeout,
                Err(e) if timed_out(&e) => {
                    bump(&self.stats.idle_closed);
                    return Err(Fail::Close);
                }
                Err(_) => return Err(Fail::Close),
            }
        };
        let mut lines = self.read_head(head_deadline)?.into_iter();
        let arrived = Instant::now();
        let (method, path, version) = lines
            .next()
            .and_then(|l| parse_request_line(&l))
            .ok_or(Fail::Answer(400))?;
        let headers = lines
            .map(|l| Header::from_str(&l))
            .collect::<Result<Vec<Header>, ()>>()
            .map_err(|()| Fail::Answer(400))?;
        if version > (1, 1) {
            return Err(Fail::Answer(505));
        }
        let mut close_after = wants_close(&headers, &version);
        let framing = framing(&headers).map_err(|()| Fail::Answer(400))?;
        if framing == Framing::Chunked && find(&headers, "Content-Length").is_some() {
            // RFC 7230 3.3.3: chunked wins, and the connection must close.
            close_after = true;
        }
        if let Framing::Length(n) = framing {
            if n > limits.max_body_bytes {
                bump(&self.stats.bodies_too_large);
                return Err(Fail::Answer(413));
            }
        }
        let expects_continue = match find(&headers, "Expect") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            Some(_) => return Err(Fail::Answer(417)),
        };
        let claimed = match framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        };
        let mut request = new_request(
            false,
            method,
            path,
            version,
            headers,
            self.remote_addr,
            Vec::new(),
            claimed,
            arrived,
        );
        if framing != Framing::None {
            let wanted =
                !expects_continue || limits.continue_if.as_ref().is_none_or(|f| f(&request));
            if wanted {
                if expects_continue {
                    let deadline = Instant::now() + limits.write_timeout;
                    self.write_by(b"HTTP/1.1 100 Continue\r\n\r\n", deadline)
                        .map_err(|_| Fail::Close)?;
                }
                let body = self.read_body(framing, arrived + limits.request_timeout)?;
                request.set_body(body);
            } else {
                // The client waits for our word before sending the body:
                // answer without it and close, so nothing is left to drain.
                bump(&self.stats.bodies_refused);
                close_after = true;
            }
        }
        request.close_after = close_after;
        let (tx, rx) = mpsc::channel();
        request.set_sink(Box::new(ResponseSink::new(tx)));
        let stats: &EdgeStats = self.stats;
        let _answering = Answering::start(stats);
        deliver(request);
        let answer = rx.recv().map_err(|_| Fail::Close)?;
        let deadline = Instant::now() + limits.write_timeout;
        self.write_by(&answer, deadline).map_err(|_| Fail::Close)?;
        Ok(!close_after)
    }

    /// The request line and header lines (without line ends), read within
    /// `deadline` and the size limits; nothing past an over-long line is read.
    fn read_head(&mut self, deadline: Instant) -> Result<Vec<String>, Fail> {
        let (max_line, max_all) = (self.limits.max_header_line, self.limits.max_header_bytes);
        let mut lines: Vec<String> = Vec::new();
        let mut total = 0usize;
        loop {
            let mut line = Vec::new();
            loop {
                match self.fill(deadline) {
                    Ok(0) => return Err(Fail::Close),
                    Ok(_) => {}
                    Err(e) if timed_out(&e) => {
                        bump(&self.stats.header_timeouts);
                        return Err(Fail::Answer(408));
                    }
                    Err(_) => return Err(Fail::Close),
                }
                let buf = self.reader.buffer();
                let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                // +2: the line end does not count against the line's limit.
                if line.len() + take > max_line + 2 || total + line.len() + take > max_all {
                    bump(&self.stats.headers_too_large);
                    // The request line is the URI's: 414; a header's: 431.
                    return Err(Fail::Answer(if lines.is_empty() { 414 } else { 431 }));
                }
                line.extend_from_slice(&buf[..take]);
                self.reader.consume(take);
                if done {
                    break;
                }
            }
            total += line.len();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                if lines.is_empty() {
                    continue; // RFC 7230 3.5: empty lines before a request are ignored
                }
                return Ok(lines);
            }
            lines.push(String::from_utf8(line).map_err(|_| Fail::Answer(400))?);
        }
    }

    /// The whole body, by `deadline`, at most `max_body_bytes` of it.
    fn read_body(&mut self, framing: Framing, deadline: Instant) -> Result<Vec<u8>, Fail> {
        let max = self.limits.max_body_bytes;
        let mut body = Vec::new();
        let result = match framing {
            Framing::None => return Ok(body),
            Framing::Length(n) => {
                body.reserve(n.min(64 * 1024));
                let wire = Wire {
                    client: self,
                    deadline,
                    budget: n,
                };
                wire.take(n as u64).read_to_end(&mut body).and_then(|_| {
                    if body.len() < n {
                        Err(ErrorKind::UnexpectedEof.into())
                    } else {
                        Ok(())
                    }
                })
            }
            Framing::Chunked => {
                // Chunk framing may cost more bytes than the body it carries;
                // past this budget the body is refused as too large anyway.
                let wire = Wire {
                    client: self,
                    deadline,
                    budget: max.saturating_mul(2).saturating_add(64 * 1024),
                };
                Decoder::new(wire)
                    .take(max as u64 + 1)
                    .read_to_end(&mut body)
                    .and_then(|_| {
                        if body.len() > max {
                            Err(io::Error::new(ErrorKind::Other, BodyTooLarge))
                        } else {
                            Ok(())
                        }
                    })
            }
        };
        match result {
            Ok(()) => Ok(body),
            Err(e) if timed_out(&e) => {
                bump(&self.stats.body_timeouts);
                Err(Fail::Answer(408))
            }
            Err(e) if too_large(&e) => {
                bump(&self.stats.bodies_too_large);
                Err(Fail::Answer(413))
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::InvalidData) => {
                Err(Fail::Answer(400))
            }
            Err(_) => Err(Fail::Close),
        }
    }
}

/// The socket as a body reader: bounded by the deadline and by a byte
/// budget, never reading past it (a pipelined next request stays buffered).
struct Wire<'a, 'b> {
    client: &'a mut Client<'b>,
    deadline: Instant,
    budget: usize,
}

impl Read for Wire<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.budget == 0 {
            return Err(io::Error::new(ErrorKind::Other, BodyTooLarge));
        }
        if self.client.fill(self.deadline)? == 0 {
            return Ok(0);
        }
        let buf = self.client.reader.buffer();
        let n = buf.len().min(out.len()).min(self.budget);
        out[..n].copy_from_slice(&buf[..n]);
        self.client.reader.consume(n);
        self.budget -= n;
        Ok(n)
    }
}
