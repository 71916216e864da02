//! profiteer patch: reading a request's head (line, headers) into what the
//! connection (`conn.rs`) needs: the request line, how the body is
//! framed, whether the connection ends after it.

use crate::common::{HTTPVersion, Header, Method};

/// How the body of a request is framed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// The value of the first header called `name`.
pub(crate) fn find<'h>(headers: &'h [Header], name: &'static str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// Content-Length or chunked. `Err` (answered 400): several Content-Length
/// values that disagree, or one that is not a number: a proxy in front might
/// read them differently (request smuggling).
pub(crate) fn framing(headers: &[Header]) -> Result<Framing, ()> {
    if find(headers, "Transfer-Encoding").is_some() {
        // Only "chunked" is decoded (RFC 7230 3.3.1: it is always last).
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for h in headers.iter().filter(|h| h.field.equiv("Content-Length")) {
        let n: usize = h.value.as_str().trim().parse().map_err(|_| ())?;
        if length.is_some_and(|l| l != n) {
            return Err(());
        }
        length = Some(n);
    }
    Ok(match length {
        None | Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
    })
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

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Option<HTTPVersion> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return None,
    };
    Some(HTTPVersion(major, minor))
}

/// Parses the request line of the request, eg. `GET / HTTP/1.1`.
pub(crate) fn parse_request_line(line: &str) -> Option<(Method, String, HTTPVersion)> {
    let mut parts = line.trim().split(' ');
    let method = parts.next()?.parse().ok()?;
    let path = parts.next()?.to_owned();
    let version = parse_http_version(parts.next()?)?;
    Some((method, path, version))
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_none());
        assert!(super::parse_request_line("qsd qsd qsd").is_none());
    }
}
