//! The connection as a parser: random streams of requests (well framed,
//! smuggling variants, then a few bytes changed, put in or taken out at
//! random), cut at random points, are fed to a connection that answers each
//! request it hands on.
//! What it hands on must be exactly what a whole-buffer reading frames:
//! `httparse` finds each head, `head::parse`/`head::framing` apply the
//! RFC 9112 rules (tested rule by rule in `head_tests.rs`), and the body is
//! cut by an independent strict chunked decoder below. Nothing after a
//! refused request is ever a request, and never more requests are handed
//! on than were sent.

use proptest::collection::vec;
use proptest::prelude::*;

use super::harness::Harness;
use crate::head::{self, Framing};
use crate::limits::Limits;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/// Header lines that frame a body in ways proxies disagree on.
const ODD: &[&str] = &[
    "Transfer-Encoding: chunked, cow",
    "Transfer-Encoding: gzip, chunked",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    "Transfer-Encoding: \"chunked\"",
    "Transfer-Encoding : chunked",
    "Content-Length: 5\r\nTransfer-Encoding: chunked",
    "Content-Length: 5\r\nContent-Length: 5",
    "Content-Length: +5",
    "X: a\r\n Transfer-Encoding: chunked",
    "X: a\nTransfer-Encoding: chunked",
    "Connection: close",
];

/// Bytes a change puts in: the ones framing turns on.
const SPICE: &[u8] = b"\r\n \t\0:;,+-0159aAfF\x85\x0b";

/// One request of kind `kind` (`n` varies its path and body).
fn request(kind: u8, n: usize) -> Vec<u8> {
    let body: String = "abcdefghij".chars().cycle().take(n % 23).collect();
    let chunked = if body.is_empty() {
        "0\r\n\r\n".to_string()
    } else {
        let (a, b) = body.split_at(body.len() / 2);
        let chunk = |s: &str, ext: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{:x}{}\r\n{}\r\n", s.len(), ext, s)
            }
        };
        format!("{}{}0\r\nT: 1\r\n\r\n", chunk(a, ";e=1"), chunk(b, ""))
    };
    let text = match kind % 5 {
        0 => format!("GET /g{} HTTP/1.1\r\nHost: t\r\n\r\n", n),
        1 => format!(
            "POST /l{} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{}",
            n,
            body.len(),
            body
        ),
        2 => format!(
            "POST /c{} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            n, chunked
        ),
        3 => format!(
            "POST /o{} HTTP/1.1\r\n{}\r\n\r\n{}",
            n,
            ODD[n % ODD.len()],
            chunked
        ),
        _ => format!("\r\nGET /e{} HTTP/1.1\r\n\r\n", n),
    };
    text.into_bytes()
}

/// A served request: method, target, body.
type Served = (String, String, Vec<u8>);

/// What a whole-buffer reading serves from `stream`, in order.
fn reference(stream: &[u8]) -> Vec<Served> {
    let mut served = Vec::new();
    let mut at = 0;
    loop {
        while stream[at..].starts_with(b"\r\n") || stream[at..].starts_with(b"\n") {
            at += if stream[at] == b'\r' { 2 } else { 1 };
        }
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut slots);
        let end = match req.parse(&stream[at..]) {
            Ok(httparse::Status::Complete(n)) => at + n,
            _ => return served, // incomplete, or refused
        };
        let Ok(head) = head::parse(&stream[at..end]) else {
            return served;
        };
        let Ok(framing) = head::framing(&head.version, &head.headers) else {
            return served;
        };
        let (body, next) = match framing {
            Framing::None => (Vec::new(), end),
            Framing::Length(n) if stream.len() - end >= n => {
                (stream[end..end + n].to_vec(), end + n)
            }
            Framing::Length(_) => return served,
            Framing::Chunked => match dechunk(&stream[end..]) {
                Some((body, used)) => (body, end + used),
                None => return served,
            },
        };
        let last = head::wants_close(&head.headers, &head.version);
        served.push((head.method.as_str().to_owned(), head.path, body));
        if last {
            return served;
        }
        at = next;
    }
}

/// A complete, strictly framed chunked body at the start of `wire`: the
/// body and the bytes it took. `None`: incomplete or broken.
fn dechunk(wire: &[u8]) -> Option<(Vec<u8>, usize)> {
    let line = |at: usize| -> Option<(&[u8], usize)> {
        let lf = wire[at..].iter().position(|&b| b == b'\n')? + at;
        let ctl = |b: &u8| (*b < b' ' && *b != b'\t') || *b == 0x7f;
        let text = wire[at..lf].strip_suffix(b"\r")?;
        (!text.iter().any(ctl)).then_some((text, lf + 1))
    };
    let (mut body, mut at) = (Vec::new(), 0);
    loop {
        let (size_line, next) = line(at)?;
        let digits = size_line
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let rest = &size_line[digits..];
        let ext_ok =
            rest.is_empty() || rest.iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b';');
        if digits == 0 || digits > 16 || !ext_ok {
            return None;
        }
        let size =
            usize::from_str_radix(std::str::from_utf8(&size_line[..digits]).ok()?, 16).ok()?;
        at = next;
        if size == 0 {
            loop {
                let (trailer, next) = line(at)?;
                at = next;
                if trailer.is_empty() {
                    return Some((body, at));
                }
            }
        }
        body.extend_from_slice(wire.get(at..at + size)?);
        if wire.get(at + size..at + size + 2)? != b"\r\n" {
            return None;
        }
        at += size + 2;
    }
}

/// What the connection serves from `stream` cut at `cuts`, answering each
/// request as it is handed on.
fn served_by_connection(stream: &[u8], cuts: &[usize]) -> Vec<Served> {
    let mut h = Harness::new(Limits::default());
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    let mut answered = 0;
    for pair in points.windows(2) {
        if !h.send(&stream[pair[0]..pair[1]]) {
            break;
        }
        while answered < h.delivered.len() && h.alive {
            answered += 1;
            h.answer(OK);
        }
        if !h.alive {
            break;
        }
    }
    h.delivered
        .iter_mut()
        .map(|r| {
            let mut body = Vec::new();
            r.as_reader().read_to_end(&mut body).unwrap();
            (r.method().as_str().to_owned(), r.url().to_owned(), body)
        })
        .collect()
}

proptest! {
    #[test]
    fn a_connection_serves_what_httparse_and_the_rfc_rules_frame_however_the_bytes_are_cut(
        kinds in vec((0u8..5, 0usize..100), 1..6),
        changes in vec((any::<usize>(), 0..SPICE.len(), 0u8..3), 0..3),
        cuts in vec(any::<usize>(), 0..12),
    ) {
        let mut stream: Vec<u8> = kinds.iter().flat_map(|&(k, n)| request(k, n)).collect();
        for (at, spice, how) in changes {
            let at = at % stream.len();
            match how {
                0 => stream[at] = SPICE[spice],
                1 => stream.insert(at, SPICE[spice]),
                _ if stream.len() > 1 => {
                    stream.remove(at);
                }
                _ => {}
            }
        }
        let expected = reference(&stream);
        let got = served_by_connection(&stream, &cuts);
        prop_assert!(got.len() <= kinds.len(), "more served than sent");
        prop_assert_eq!(got, expected, "stream {:?}", String::from_utf8_lossy(&stream));
    }
}
