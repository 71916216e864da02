//! profiteer patch: a request's head (line, headers) read into what the
//! connection (`conn.rs`) needs, and how its body is framed.
//!
//! The bytes are parsed by `httparse` (hyper's parser, fuzzed for years),
//! with its strict defaults: no obs-fold, no whitespace between a field name
//! and its colon, names of token characters only, no NUL or lone CR in a
//! value. On top of it: every line ends in CRLF (a lone LF is read as a line
//! end by some parsers and not by others), and a value is visible ASCII,
//! spaces and tabs only. How long the body is, is decided by [`framing`]
//! alone (RFC 9112 §6). Any refusal here is answered and the connection
//! closed: after a head we could not frame, no byte is a request.

use crate::common::{HTTPVersion, Header, HeaderField, Method};
use ascii::AsciiString;

/// How the body of a request is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// A request line and headers that parsed.
pub(crate) struct Head {
    pub(crate) method: Method,
    /// Origin form (`/rpc?x`): an absolute-form target is reduced to it.
    pub(crate) path: String,
    pub(crate) version: HTTPVersion,
    pub(crate) headers: Vec<Header>,
}

/// More headers than this: 431 (hyper's limit is 100).
const MAX_HEADERS: usize = 128;

/// Parses a complete head (`buf` ends with its empty line). `Err`: the
/// status to refuse it with.
pub(crate) fn parse(buf: &[u8]) -> Result<Head, u16> {
    if has_lone_lf(buf) {
        return Err(400);
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n == buf.len() => {}
        Ok(_) => return Err(400),
        Err(httparse::Error::TooManyHeaders) => return Err(431),
        Err(httparse::Error::Version) => return Err(505),
        Err(_) => return Err(400),
    }
    let method = req.method.ok_or(400u16)?.parse().map_err(|()| 400u16)?;
    let path = origin_form(req.path.ok_or(400u16)?).ok_or(400u16)?;
    let version = match req.version {
        Some(0) => HTTPVersion(1, 0),
        Some(1) => HTTPVersion(1, 1),
        _ => return Err(505),
    };
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        if !h
            .value
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(400);
        }
        let field = HeaderField::from_bytes(h.name).map_err(|_| 400u16)?;
        let value = AsciiString::from_ascii(h.value).map_err(|_| 400u16)?;
        headers.push(Header { field, value });
    }
    Ok(Head {
        method,
        path,
        version,
        headers,
    })
}

/// A line feed not preceded by a carriage return.
fn has_lone_lf(buf: &[u8]) -> bool {
    buf.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || buf[i - 1] != b'\r'))
}

/// The request target in origin form. RFC 9112 §3.2.2: a server MUST accept
/// the absolute form (`http://host/rpc`); its authority is not used here.
fn origin_form(target: &str) -> Option<String> {
    let scheme = |s: &str| {
        target
            .get(..s.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(s))
    };
    let rest = if scheme("http://") {
        &target[7..]
    } else if scheme("https://") {
        &target[8..]
    } else {
        return Some(target.to_owned());
    };
    let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
    if path_at == 0 {
        return None; // no authority
    }
    Some(match &rest[path_at..] {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    })
}

/// The value of the first header called `name`.
pub(crate) fn find<'h>(headers: &'h [Header], name: &'static str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// How long the body is (RFC 9112 §6.1, §6.3), or the status that refuses
/// the request (the connection then closes), one rule per line:
/// - Transfer-Encoding in an HTTP/1.0 request: 400 (§6.1: faulty framing);
/// - Transfer-Encoding with Content-Length: 400 (§6.1: smuggling);
/// - a Transfer-Encoding element that is not a token: 400;
/// - Transfer-Encoding whose final coding is not `chunked`: 400 (§6.3);
/// - `chunked` twice (not only as the final coding): 400 (§7);
/// - any other coding before the final `chunked`: 501 (not implemented);
/// - Transfer-Encoding whose final coding is `chunked`: chunked;
/// - Content-Length given more than once (two lines, or a list): 400;
/// - Content-Length that is not only digits (`+41`, `-1`, ` 4 2`): 400;
/// - Content-Length alone: that many bytes (a number too big to hold is
///   `usize::MAX`, over any body limit);
/// - neither: no body.
pub(crate) fn framing(version: &HTTPVersion, headers: &[Header]) -> Result<Framing, u16> {
    let mut lengths = headers.iter().filter(|h| h.field.equiv("Content-Length"));
    if headers.iter().any(|h| h.field.equiv("Transfer-Encoding")) {
        if *version < (1, 1) || lengths.next().is_some() {
            return Err(400);
        }
        let codings: Vec<&str> = headers
            .iter()
            .filter(|h| h.field.equiv("Transfer-Encoding"))
            .flat_map(|h| h.value.as_str().split(','))
            .map(|c| c.trim_matches([' ', '\t']))
            .filter(|c| !c.is_empty())
            .collect();
        let Some((last, before)) = codings.split_last() else {
            return Err(400); // an empty Transfer-Encoding
        };
        if !codings.iter().all(|c| is_token(c)) || !last.eq_ignore_ascii_case("chunked") {
            return Err(400);
        }
        if before.iter().any(|c| c.eq_ignore_ascii_case("chunked")) {
            return Err(400);
        }
        if !before.is_empty() {
            return Err(501);
        }
        return Ok(Framing::Chunked);
    }
    let Some(length) = lengths.next() else {
        return Ok(Framing::None);
    };
    if lengths.next().is_some() {
        return Err(400);
    }
    let digits = length.value.as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(400);
    }
    let n = digits.iter().fold(0usize, |n, &d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    });
    Ok(if n == 0 {
        Framing::None
    } else {
        Framing::Length(n)
    })
}

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether this request is the connection's last (upstream's rule).
pub(crate) fn wants_close(headers: &[Header], version: &HTTPVersion) -> bool {
    let connection = find(headers, "Connection").map(|v| v.to_ascii_lowercase());
    match connection {
        Some(ref v) if v.contains("close") => true,
        Some(ref v) if v.contains("upgrade") => true,
        Some(ref v) => !v.contains("keep-alive") && *version == HTTPVersion(1, 0),
        None => *version == HTTPVersion(1, 0),
    }
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
