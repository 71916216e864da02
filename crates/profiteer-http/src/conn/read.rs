//! profiteer patch: how a connection reads one request: its head (found by
//! line, within the size limits, parsed and framed by `head.rs`), then its
//! body (Content-Length or chunked, within the body limits and the budget
//! of bodies in flight), then hands it on.

use std::time::Instant;

use super::{bump, BodyReader, Conn, Env, Phase};
use crate::chunked::{Chunked, Step};
use crate::head::{self, find, wants_close, Framing, Head};
use crate::limits::{BodyBytes, Limits};
use crate::request::new_request;
use crate::Request;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

impl<S: Read + Write> Conn<S> {
    /// Searches the buffered head for its end: `Ok(Some(end))`, the index
    /// after the empty line; `Ok(None)`, more is needed; `Err(status)`, a
    /// line or the head is over its limit.
    pub(super) fn scan_head(&mut self, limits: &Limits) -> Result<Option<usize>, u16> {
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
    pub(super) fn start_request(&mut self, end: usize, env: &mut Env<'_>) {
        let limits = env.limits;
        let head: Vec<u8> = self.inb.drain(..end).collect();
        match self.parse_head(&head, env) {
            Ok(()) => {}
            Err(code) => {
                match code {
                    413 => bump(&env.stats.bodies_too_large),
                    431 => bump(&env.stats.headers_too_large),
                    503 => {} // counted where the budget refused it
                    _ => bump(&env.stats.bad_requests),
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
        let mut held = BodyBytes::new(env.stats.clone());
        if let BodyReader::Length(n) = reader {
            if !held.grow(n, limits.max_inflight_body_bytes) {
                bump(&env.stats.bodies_over_budget);
                return Err(503);
            }
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
            held,
            wire: 0,
        };
        self.deadline = Some(arrived + limits.request_timeout);
        Ok(())
    }

    /// Moves buffered bytes into the body: `Ok(true)` when that made
    /// progress (the body may be complete and handed on), `Ok(false)` when
    /// more must be read, `Err(status)` to refuse.
    pub(super) fn take_body(&mut self, env: &mut Env<'_>) -> Result<bool, u16> {
        let (max, in_flight) = (
            env.limits.max_body_bytes,
            env.limits.max_inflight_body_bytes,
        );
        let Phase::Body {
            reader,
            body,
            held,
            wire,
            ..
        } = &mut self.phase
        else {
            return Ok(false);
        };
        let complete = match reader {
            BodyReader::Length(n) => {
                let take = (*n - body.len()).min(self.inb.len());
                if body.capacity() - body.len() < take {
                    // Doubling, but never past the length held for it.
                    let room = (body.capacity() * 2).clamp(body.len() + take, *n);
                    body.reserve_exact(room - body.len());
                }
                body.extend(self.inb.drain(..take));
                body.len() == *n
            }
            BodyReader::Chunked(decoder) => {
                // Chunk framing may cost more bytes than the body it
                // carries; past this much the body is refused as too large.
                let wire_max = max.saturating_mul(2).saturating_add(64 * 1024);
                let (used, step) = decoder.feed(&self.inb, body, max);
                self.inb.drain(..used);
                *wire += used;
                let grown = body.capacity().saturating_sub(held.held());
                if grown > 0 && !held.grow(grown, in_flight) {
                    bump(&env.stats.bodies_over_budget);
                    return Err(503);
                }
                match step {
                    Step::Done => true,
                    Step::Bad => {
                        bump(&env.stats.bad_requests);
                        return Err(400);
                    }
                    Step::TooLarge => {
                        bump(&env.stats.bodies_too_large);
                        return Err(413);
                    }
                    Step::More if *wire > wire_max => {
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
        let Phase::Body {
            request,
            body,
            held,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Waiting)
        else {
            return Ok(false);
        };
        let mut request = *request;
        request.set_body(body);
        self.held = Some(held);
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
