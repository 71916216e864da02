//! Request smuggling (issue 21), over raw TCP against the real binary: a
//! corpus of requests whose body length a proxy in front could read
//! differently (RFC 9112 §6, the public smuggling tools' Transfer-Encoding
//! variants, control characters, bare line feeds, signed numbers). Each is
//! sent followed by a second request on the same connection. A refused one
//! must get exactly one answer, its refusal, with the connection closed:
//! the application never ran it, and the bytes after it were never taken as
//! a request. Well-framed ones (the control group) are served, and the
//! request after them too.

use std::io::Write;

use super::{connect, read_to_close, PING};
use crate::helpers::*;

/// What follows every case on its connection: answered 404 if it is ever
/// taken as a request.
const NEXT: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// `PING` as one chunk and the last chunk, with `size` as the chunk-size.
fn chunked_ping(size: &str, eol: &str) -> Vec<u8> {
    format!("{size}{eol}{PING}{eol}0{eol}{eol}").into_bytes()
}

/// A `POST /rpc` with these header lines (CRLF added to each) and body.
fn post(headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut raw = b"POST /rpc HTTP/1.1\r\nHost: t\r\n".to_vec();
    for h in headers {
        raw.extend_from_slice(h);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

/// A case's name, header lines, body and the status it must be refused with.
type Case = (&'static str, Vec<Vec<u8>>, Vec<u8>, u16);

fn cases() -> Vec<(&'static str, Vec<u8>, u16)> {
    let hex = format!("{:x}", PING.len());
    let chunked = chunked_ping(&hex, "\r\n");
    let len = format!("Content-Length: {}", PING.len());
    let te = |v: &[u8]| [&b"Transfer-Encoding: "[..], v].concat();
    let mut cases = vec![];
    for (name, value, status) in [
        ("TE chunked, cow", &b"chunked, cow"[..], 400),
        ("TE cow chunked bar", b"cow chunked bar", 400),
        ("TE quoted chunked", b"\"chunked\"", 400),
        ("TE chunk", b"chunk", 400),
        ("TE gzip", b"gzip", 400),
        ("TE chunked, gzip", b"chunked, gzip", 400),
        ("TE chunked twice in a list", b"chunked, chunked", 400),
        ("TE xchunked", b"xchunked", 400),
        ("TE chunked;ext", b"chunked;a=1", 400),
        ("TE nbsp chunked nel", b"\xa0chunked\x85", 400),
        ("TE chunked vertical tab", b"chunked\x0b", 400),
        ("TE chunked form feed", b"\x0cchunked", 400),
        ("TE empty", b"", 400),
        ("TE gzip, chunked", b"gzip, chunked", 501),
        ("TE cow, chunked", b"cow, chunked", 501),
    ] {
        cases.push((name, post(&[&te(value)], &chunked), status));
    }
    let raw_cases: Vec<Case> = vec![
        (
            "two TE lines",
            vec![
                b"Transfer-Encoding: chunked".to_vec(),
                b"Transfer-Encoding: chunked".to_vec(),
            ],
            chunked.clone(),
            400,
        ),
        (
            "TE then an unknown coding line",
            vec![
                b"Transfer-Encoding: chunked".to_vec(),
                b"Transfer-Encoding: cow".to_vec(),
            ],
            chunked.clone(),
            400,
        ),
        (
            "TE with CL",
            vec![
                b"Transfer-Encoding: chunked".to_vec(),
                len.clone().into_bytes(),
            ],
            chunked.clone(),
            400,
        ),
        (
            "CL with TE",
            vec![
                b"Content-Length: 4".to_vec(),
                b"Transfer-Encoding: chunked".to_vec(),
            ],
            chunked.clone(),
            400,
        ),
        (
            "control character in a field name",
            vec![b"Transfer-Encoding\x01: chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "space before the colon",
            vec![b"Transfer-Encoding : chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "tab before the colon",
            vec![b"Transfer-Encoding\t: chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "a parenthesis in a field name",
            vec![b"X(: 1".to_vec(), len.clone().into_bytes()],
            PING.as_bytes().to_vec(),
            400,
        ),
        (
            "control character then a header in a value",
            vec![b"X: X\x01Transfer-Encoding: chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "lone CR then a control character in a value",
            vec![b"X: X\r\x01Transfer-Encoding: chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "lone CR then a header in a value",
            vec![b"X: X\rTransfer-Encoding: chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "lone LF then a header in a value",
            vec![b"X: X\nTransfer-Encoding: chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "NUL in a value",
            vec![b"X: a\x00b".to_vec(), len.clone().into_bytes()],
            PING.as_bytes().to_vec(),
            400,
        ),
        (
            "obs-fold into TE",
            vec![b"X: a".to_vec(), b" Transfer-Encoding: chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "obs-fold of TE's value",
            vec![b"Transfer-Encoding:".to_vec(), b" chunked".to_vec()],
            chunked.clone(),
            400,
        ),
        (
            "CL with a plus sign",
            vec![format!("Content-Length: +{}", PING.len()).into_bytes()],
            PING.as_bytes().to_vec(),
            400,
        ),
        (
            "CL negative",
            vec![b"Content-Length: -1".to_vec()],
            PING.as_bytes().to_vec(),
            400,
        ),
        (
            "CL twice, equal",
            vec![len.clone().into_bytes(), len.clone().into_bytes()],
            PING.as_bytes().to_vec(),
            400,
        ),
        (
            "CL as a list",
            vec![format!("Content-Length: {0}, {0}", PING.len()).into_bytes()],
            PING.as_bytes().to_vec(),
            400,
        ),
        (
            "CL in hex",
            vec![format!("Content-Length: 0x{hex}").into_bytes()],
            PING.as_bytes().to_vec(),
            400,
        ),
        (
            "chunk size with a plus sign",
            vec![b"Transfer-Encoding: chunked".to_vec()],
            chunked_ping(&format!("+{hex}"), "\r\n"),
            400,
        ),
        (
            "chunk size with 0x",
            vec![b"Transfer-Encoding: chunked".to_vec()],
            chunked_ping(&format!("0x{hex}"), "\r\n"),
            400,
        ),
        (
            "chunk size of seventeen digits",
            vec![b"Transfer-Encoding: chunked".to_vec()],
            chunked_ping(&format!("{hex:0>17}"), "\r\n"),
            400,
        ),
        (
            "chunk lines ending in a lone LF",
            vec![b"Transfer-Encoding: chunked".to_vec()],
            chunked_ping(&hex, "\n"),
            400,
        ),
        (
            "lone LF in a chunk extension",
            vec![b"Transfer-Encoding: chunked".to_vec()],
            chunked_ping(&format!("{hex};a\nx"), "\r\n"),
            400,
        ),
    ];
    for (name, headers, body, status) in raw_cases {
        let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
        cases.push((name, post(&headers, &body), status));
    }
    let mut old = b"POST /rpc HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    old.extend_from_slice(&chunked);
    cases.push(("TE in HTTP/1.0", old, 400));
    let mut bare = format!("POST /rpc HTTP/1.1\nHost: t\n{len}\n\n").into_bytes();
    bare.extend_from_slice(PING.as_bytes());
    cases.push(("a head of lone LFs", bare, 400));
    cases
}

/// Sends `raw` then [`NEXT`]; what came back, and whether it was closed.
fn exchange(app: &TestApp, raw: &[u8]) -> (String, bool) {
    let mut s = connect(app);
    s.write_all(&[raw, NEXT].concat()).unwrap();
    read_to_close(&mut s)
}

fn answers(text: &str) -> usize {
    text.matches("HTTP/1.1 ").count()
}

#[test]
fn ambiguous_framing_is_refused_with_one_answer_and_the_connection_closed() {
    let app = spawn_app();
    let mut wrong = Vec::new();
    for (name, raw, status) in cases() {
        let (text, closed) = exchange(&app, &raw);
        let ok = text.starts_with(&format!("HTTP/1.1 {status} "))
            && answers(&text) == 1
            && text.contains("Connection: close")
            && closed;
        if !ok {
            wrong.push(format!("{name}: closed={closed}\n{text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n---\n"));
    assert_eq!(
        app.metric("profiteer_bad_requests_total"),
        cases().len() as f64
    );
}

#[test]
fn well_framed_requests_are_served_and_so_is_the_request_after_them() {
    let app = spawn_app();
    let hex = format!("{:x}", PING.len());
    let len = format!("Content-Length: {}", PING.len());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("Content-Length", post(&[len.as_bytes()], PING.as_bytes())),
        (
            "chunked",
            post(
                &[b"Transfer-Encoding: chunked"],
                &chunked_ping(&hex, "\r\n"),
            ),
        ),
        (
            "chunked in capitals, tab before it",
            post(
                &[b"Transfer-Encoding:\tCHUNKED"],
                &chunked_ping(&hex, "\r\n"),
            ),
        ),
        (
            "chunked with an extension and a trailer",
            post(
                &[b"Transfer-Encoding: chunked"],
                format!("{hex};x=\"y\"\r\n{PING}\r\n0\r\nX-T: 1\r\n\r\n").as_bytes(),
            ),
        ),
        (
            "an absolute-form target",
            [
                format!(
                    "POST http://{}/rpc HTTP/1.1\r\nHost: t\r\n{len}\r\n\r\n",
                    app.addr
                )
                .as_bytes(),
                PING.as_bytes(),
            ]
            .concat(),
        ),
    ];
    for (name, raw) in cases {
        let (text, closed) = exchange(&app, &raw);
        assert!(text.starts_with("HTTP/1.1 200 "), "{name}: {text}");
        assert!(text.contains("pong"), "{name}: {text}");
        assert_eq!(answers(&text), 2, "{name}: {text}");
        assert!(text.contains("HTTP/1.1 404 "), "{name}: {text}");
        assert!(closed, "{name}");
    }
}
