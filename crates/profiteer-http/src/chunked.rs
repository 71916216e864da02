//! profiteer patch: a chunked request body decoded as its bytes arrive.
//! The connection's poller thread never blocks on a client, so it cannot
//! hand a socket to a blocking decoder: it feeds this one whatever it has
//! read and learns whether the body is complete, needs more, or is bad.

use std::convert::TryFrom;

/// Where the decoder is in the chunked framing (RFC 9112 §7.1).
enum State {
    /// Reading a chunk-size line (hex size, optional `;extensions`).
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(usize),
    /// The line end that follows a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, until an empty one.
    Trailer,
    Done,
}

/// What one [`Chunked::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Everything given was used; the body goes on.
    More,
    /// The body is complete; bytes after it were not consumed.
    Done,
    /// The framing is broken (answered 400).
    Bad,
    /// The decoded body passed its limit (answered 413).
    TooLarge,
}

/// A size or trailer line longer than this is broken framing.
const MAX_LINE: usize = 8 * 1024;

pub(crate) struct Chunked {
    state: State,
    line: Vec<u8>,
}

impl Chunked {
    pub(crate) fn new() -> Chunked {
        Chunked {
            state: State::Size,
            line: Vec::new(),
        }
    }

    /// Decodes from `input` into `body` (at most `max_body` bytes in all);
    /// returns how many bytes of `input` it consumed, and what it found.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        max_body: usize,
    ) -> (usize, Step) {
        let mut at = 0;
        while at < input.len() {
            match self.state {
                State::Done => return (at, Step::Done),
                State::Data(left) => {
                    let n = left.min(input.len() - at);
                    body.extend_from_slice(&input[at..at + n]);
                    at += n;
                    self.state = if n == left {
                        State::DataEnd
                    } else {
                        State::Data(left - n)
                    };
                }
                State::Size | State::DataEnd | State::Trailer => {
                    let rest = &input[at..];
                    let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                        if self.line.len() + rest.len() > MAX_LINE {
                            return (at, Step::Bad);
                        }
                        self.line.extend_from_slice(rest);
                        return (input.len(), Step::More);
                    };
                    if self.line.len() + i > MAX_LINE {
                        return (at, Step::Bad);
                    }
                    self.line.extend_from_slice(&rest[..i]);
                    at += i + 1;
                    // RFC 9112 §7.1: every line ends in CRLF. A lone LF
                    // ends a line for some parsers and not for others.
                    if self.line.pop() != Some(b'\r') {
                        return (at, Step::Bad);
                    }
                    let line = std::mem::take(&mut self.line);
                    match self.line_done(&line, body.len(), max_body) {
                        Ok(()) => {}
                        Err(step) => return (at, step),
                    }
                }
            }
        }
        let step = match self.state {
            State::Done => Step::Done,
            _ => Step::More,
        };
        (at, step)
    }

    /// A complete line (without its end) in the state that reads lines.
    fn line_done(&mut self, line: &[u8], have: usize, max_body: usize) -> Result<(), Step> {
        match self.state {
            State::Size => {
                let size = chunk_size(line).ok_or(Step::Bad)?;
                if size == 0 {
                    self.state = State::Trailer;
                } else if size > max_body.saturating_sub(have) {
                    return Err(Step::TooLarge);
                } else {
                    self.state = State::Data(size);
                }
            }
            State::DataEnd if line.is_empty() => self.state = State::Size,
            State::DataEnd => return Err(Step::Bad),
            State::Trailer if line.is_empty() => self.state = State::Done,
            State::Trailer if has_control(line) => return Err(Step::Bad),
            State::Trailer => {}
            State::Data(_) | State::Done => {}
        }
        Ok(())
    }
}

/// More hex digits than this in a chunk size is broken framing (16 hold
/// any 64-bit size; a longer run of leading zeros is not worth reading).
const MAX_SIZE_DIGITS: usize = 16;

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1): hex digits only (no sign,
/// no `0x`, no space before them), then nothing or `;` and extensions,
/// which are skipped but may hold no control character.
fn chunk_size(line: &[u8]) -> Option<usize> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > MAX_SIZE_DIGITS {
        return None;
    }
    let rest = &line[digits..];
    let ext = rest.iter().position(|&b| b != b' ' && b != b'\t');
    match ext {
        None if rest.is_empty() => {}
        Some(i) if rest[i] == b';' && !has_control(&rest[i..]) => {}
        _ => return None,
    }
    let text = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(text, 16)
        .ok()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// A control character other than a tab (CR and LF included).
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::{Chunked, Step};

    fn decode_in_pieces(wire: &[u8], piece: usize, max: usize) -> (Vec<u8>, Step, usize) {
        let mut d = Chunked::new();
        let mut body = Vec::new();
        let mut used = 0;
        for chunk in wire.chunks(piece) {
            let (n, step) = d.feed(chunk, &mut body, max);
            used += n;
            if step != Step::More {
                return (body, step, used);
            }
        }
        (body, Step::More, used)
    }

    #[test]
    fn a_body_split_anywhere_decodes_the_same() {
        let wire =
            b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for piece in 1..wire.len() {
            let (body, step, used) = decode_in_pieces(wire, piece, 1024);
            assert_eq!(step, Step::Done, "piece {piece}");
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(&wire[used..], b"NEXT", "piece {piece}");
        }
    }

    #[test]
    fn lone_line_feeds_are_broken_framing() {
        for wire in [
            &b"3\nabc\r\n0\r\n\r\n"[..],
            b"3\r\nabc\n0\r\n\r\n",
            b"3\r\nabc\r\n0\n\r\n",
            b"3\r\nabc\r\n0\r\n\n",
            b"3;a\nb\r\nabc\r\n0\r\n\r\n",
        ] {
            assert_eq!(decode_in_pieces(wire, 100, 1000).1, Step::Bad, "{wire:?}");
        }
    }

    #[test]
    fn a_chunk_size_is_hex_digits_only() {
        for wire in [
            &b"+3\r\nabc\r\n0\r\n\r\n"[..],
            b"-3\r\n",
            b"0x3\r\nabc\r\n",
            b" 3\r\nabc\r\n",
            b"3 \r\nabc\r\n",
            b"3 x\r\nabc\r\n",
            b"\r\n",
            b"3\x00\r\nabc\r\n",
        ] {
            assert_eq!(decode_in_pieces(wire, 100, 1000).1, Step::Bad, "{wire:?}");
        }
    }

    #[test]
    fn a_chunk_size_of_more_than_sixteen_digits_is_broken_framing() {
        let (_, step, _) = decode_in_pieces(b"00000000000000003\r\nabc\r\n0\r\n\r\n", 100, 1000);
        assert_eq!(step, Step::Bad);
        let (body, step, _) = decode_in_pieces(b"0000000000000003\r\nabc\r\n0\r\n\r\n", 100, 1000);
        assert_eq!((body.as_slice(), step), (&b"abc"[..], Step::Done));
        let (_, step, _) = decode_in_pieces(b"ffffffffffffffff\r\n", 100, 1000);
        assert_eq!(step, Step::TooLarge);
    }

    #[test]
    fn chunk_extensions_are_skipped_unless_they_hold_a_control_character() {
        let (body, step, _) = decode_in_pieces(b"3 ; a=\"b\"\r\nabc\r\n0;z\r\n\r\n", 100, 1000);
        assert_eq!((body.as_slice(), step), (&b"abc"[..], Step::Done));
        let (_, step, _) = decode_in_pieces(b"3;a\x01\r\nabc\r\n", 100, 1000);
        assert_eq!(step, Step::Bad);
    }

    #[test]
    fn a_trailer_with_a_control_character_is_broken_framing() {
        let (_, step, _) = decode_in_pieces(b"0\r\nX: a\x00b\r\n\r\n", 100, 1000);
        assert_eq!(step, Step::Bad);
    }

    #[test]
    fn a_body_over_the_limit_is_too_large_before_its_data_is_read() {
        let (body, step, _) = decode_in_pieces(b"5\r\nhello\r\n400\r\n", 100, 1000);
        assert_eq!(step, Step::TooLarge);
        assert_eq!(body, b"hello");
    }

    #[test]
    fn broken_framing_is_bad() {
        for wire in [&b"zz\r\n"[..], b"3\r\nabcX\r\n", b"-1\r\n"] {
            assert_eq!(decode_in_pieces(wire, 100, 1000).1, Step::Bad);
        }
        let endless = vec![b'1'; 10 * 1024];
        assert_eq!(decode_in_pieces(&endless, 100, 1000).1, Step::Bad);
    }

    #[test]
    fn an_unfinished_body_asks_for_more() {
        assert_eq!(decode_in_pieces(b"5\r\nhel", 2, 1000).1, Step::More);
    }
}
