//! One Thrift connection, on its own reader thread (bounded by
//! `[THRIFT] MAX_CONNECTIONS`), as thriftpy2's `TThreadedServer` serves it:
//! calls one after another, unframed binary protocol. The thread reads a
//! whole call within the request deadline and size limit, hands it to the
//! shared workers, waits for the answer and writes it; a worker never
//! touches the socket, so a slow peer holds only its own thread.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol, TMessageType};
use thrift::ApplicationErrorKind;

use super::service;
use super::wire::{self, Call};
use super::Shared;

/// Reads from the socket on behalf of the protocol, enforcing the current
/// message's deadline (as the socket's read timeout) and byte budget.
struct Guarded {
    inner: BufReader<TcpStream>,
    deadline: Instant,
    left: usize,
}

impl Guarded {
    /// Waits up to `idle` for the first byte of the next message; `false`
    /// when the peer closed or stayed quiet.
    fn next_message(&mut self, idle: Duration) -> bool {
        if self.inner.buffer().is_empty()
            && self.inner.get_ref().set_read_timeout(Some(idle)).is_err()
        {
            return false;
        }
        matches!(self.inner.fill_buf(), Ok(bytes) if !bytes.is_empty())
    }

    fn start(&mut self, deadline: Instant, budget: usize) {
        self.deadline = deadline;
        self.left = budget;
    }
}

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too large",
            ));
        }
        if self.inner.buffer().is_empty() {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "message deadline"));
            }
            self.inner.get_ref().set_read_timeout(Some(left))?;
        }
        let end = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..end])?;
        self.left -= n;
        Ok(n)
    }
}

/// How one exchange ended, for metrics and the connection's fate.
struct Answer {
    /// The bytes to write back (a reply or an exception); none for oneway.
    bytes: Vec<u8>,
    method: &'static str,
    outcome: &'static str,
    /// The byte stream is out of step: close after answering.
    close: bool,
}

fn encode(f: impl FnOnce(&mut TBinaryOutputProtocol<Vec<u8>>) -> wire::Result<()>) -> Vec<u8> {
    let mut o = TBinaryOutputProtocol::new(Vec::new(), true);
    match f(&mut o) {
        Ok(()) => o.transport,
        Err(e) => {
            log::error!("thrift: cannot encode an answer: {e}");
            Vec::new()
        }
    }
}

fn protocol_error(name: &str, seq: i32, what: &str) -> Answer {
    let message = format!("cannot read the call: {what}");
    Answer {
        bytes: encode(|o| {
            wire::write_exception(o, name, seq, ApplicationErrorKind::ProtocolError, &message)
        }),
        method: "unknown",
        outcome: "parse_error",
        close: true,
    }
}

pub(super) fn serve(shared: &Shared, stream: TcpStream) {
    let config = &shared.svc.config;
    let (Ok(read_half), Ok(())) = (stream.try_clone(), stream.set_nodelay(true)) else {
        return;
    };
    let mut writer = stream;
    let guarded = Guarded {
        inner: BufReader::new(read_half),
        deadline: Instant::now(),
        left: 0,
    };
    let mut input = TBinaryInputProtocol::with_config(guarded, false, wire::limits());
    let idle = shared.idle;
    while !shared.stopping() && input.transport.next_message(idle) {
        let arrived = Instant::now();
        let deadline = arrived + config.server.request_timeout;
        input
            .transport
            .start(deadline, config.server.max_body_bytes);
        let answer = exchange(shared, &mut input, deadline);
        shared
            .svc
            .metrics
            .observe(answer.method, answer.outcome, arrived.elapsed());
        if answer.outcome == "overloaded" {
            // Callers retrying a refusal at once would otherwise take the
            // CPU the lane needs to finish what it holds; this thread holds
            // only its own connection meanwhile.
            if let Some(pause) = crate::http::delay::storm_pause(&shared.refusals) {
                std::thread::sleep(pause);
            }
        }
        if !answer.bytes.is_empty() {
            let written = writer
                .set_write_timeout(Some(config.server.request_timeout))
                .and_then(|()| writer.write_all(&answer.bytes));
            if let Err(e) = written {
                log::debug!("thrift: answer not written: {e}");
                return;
            }
        }
        if answer.close {
            return;
        }
    }
}

/// Reads one call and answers it.
fn exchange(
    shared: &Shared,
    input: &mut TBinaryInputProtocol<Guarded>,
    deadline: Instant,
) -> Answer {
    let header = match thrift::protocol::TInputProtocol::read_message_begin(input) {
        Ok(h) => h,
        Err(e) => return protocol_error("", 0, &e.to_string()),
    };
    let (name, seq) = (header.name.as_str(), header.sequence_number);
    let oneway = header.message_type == TMessageType::OneWay;
    if !matches!(
        header.message_type,
        TMessageType::Call | TMessageType::OneWay
    ) {
        return protocol_error(name, seq, "not a call");
    }
    let call = match wire::read_args(input, name) {
        Ok(call) => call,
        Err(e) => return protocol_error(name, seq, &e.to_string()),
    };
    let (method, result) = match call {
        Call::Unknown => {
            let message = format!("UserService has no method {name:?}");
            return Answer {
                bytes: encode(|o| {
                    wire::write_exception(
                        o,
                        name,
                        seq,
                        ApplicationErrorKind::UnknownMethod,
                        &message,
                    )
                }),
                method: "unknown",
                outcome: "method_not_found",
                close: false,
            };
        }
        call => service::submit(shared, call, deadline),
    };
    let outcome = result.as_ref().map_or_else(|f| f.outcome, |_| "ok");
    let bytes = if oneway {
        Vec::new()
    } else {
        match result {
            Ok(reply) => encode(|o| wire::write_reply(o, name, seq, &reply)),
            Err(f) => encode(|o| wire::write_exception(o, name, seq, f.kind, &f.message)),
        }
    };
    Answer {
        bytes,
        method,
        outcome,
        close: false,
    }
}
