//! One test per framing rule of `head::framing` (RFC 9112 §6) and per
//! refusal of `head::parse`; the names say the rule.

use super::{framing, parse, Framing};
use crate::common::{HTTPVersion, Header};

fn frame(version: (u8, u8), lines: &[&str]) -> Result<Framing, u16> {
    let headers: Vec<Header> = lines.iter().map(|l| l.parse().unwrap()).collect();
    framing(&HTTPVersion::from(version), &headers)
}

fn frame11(lines: &[&str]) -> Result<Framing, u16> {
    frame((1, 1), lines)
}

/// `parse` of a head whose header lines are `lines` (CRLF added).
fn parse_with(lines: &str) -> Result<super::Head, u16> {
    parse(format!("POST /rpc HTTP/1.1\r\n{lines}\r\n").as_bytes())
}

fn refused(raw: &[u8]) -> u16 {
    match parse(raw) {
        Ok(_) => 0,
        Err(code) => code,
    }
}

#[test]
fn no_framing_header_means_no_body() {
    assert_eq!(frame11(&["Host: t"]), Ok(Framing::None));
}

#[test]
fn a_content_length_of_digits_is_the_body_length() {
    assert_eq!(frame11(&["Content-Length: 42"]), Ok(Framing::Length(42)));
    assert_eq!(frame11(&["Content-Length: 007"]), Ok(Framing::Length(7)));
    assert_eq!(frame11(&["Content-Length: 0"]), Ok(Framing::None));
}

#[test]
fn a_content_length_too_big_to_hold_is_over_any_limit_not_wrapped() {
    let huge = "Content-Length: 99999999999999999999999999999";
    assert_eq!(frame11(&[huge]), Ok(Framing::Length(usize::MAX)));
}

#[test]
fn a_content_length_that_is_not_only_digits_is_400() {
    for v in ["+41", "-1", "4 2", "0x10", "1e3", "", "42,42", "4\t2"] {
        assert_eq!(
            frame11(&[&format!("Content-Length: {v}")]),
            Err(400),
            "{v:?}"
        );
    }
}

#[test]
fn several_content_lengths_are_400_even_when_equal() {
    assert_eq!(
        frame11(&["Content-Length: 5", "Content-Length: 5"]),
        Err(400)
    );
    assert_eq!(
        frame11(&["Content-Length: 5", "content-length: 6"]),
        Err(400)
    );
}

#[test]
fn a_final_chunked_coding_is_chunked_in_any_case() {
    assert_eq!(
        frame11(&["Transfer-Encoding: chunked"]),
        Ok(Framing::Chunked)
    );
    assert_eq!(
        frame11(&["transfer-encoding: CHUNKED"]),
        Ok(Framing::Chunked)
    );
    // RFC 9110 §5.6.1: empty list elements are ignored.
    assert_eq!(
        frame11(&["Transfer-Encoding: , chunked ,"]),
        Ok(Framing::Chunked)
    );
}

#[test]
fn transfer_encoding_with_content_length_is_400() {
    assert_eq!(
        frame11(&["Content-Length: 3", "Transfer-Encoding: chunked"]),
        Err(400)
    );
    assert_eq!(
        frame11(&["Transfer-Encoding: chunked", "Content-Length: 3"]),
        Err(400)
    );
}

#[test]
fn transfer_encoding_in_http_1_0_is_400() {
    assert_eq!(frame((1, 0), &["Transfer-Encoding: chunked"]), Err(400));
}

#[test]
fn a_final_coding_other_than_chunked_is_400() {
    for v in [
        "chunked, cow",
        "chunk",
        "gzip",
        "chunked, gzip",
        "chunked;x=1",
        "",
    ] {
        assert_eq!(
            frame11(&[&format!("Transfer-Encoding: {v}")]),
            Err(400),
            "{v:?}"
        );
    }
}

#[test]
fn a_transfer_coding_that_is_not_a_token_is_400() {
    for v in [
        "cow chunked bar",
        "\"chunked\"",
        "x y, chunked",
        "chunked chunked",
    ] {
        assert_eq!(
            frame11(&[&format!("Transfer-Encoding: {v}")]),
            Err(400),
            "{v:?}"
        );
    }
}

#[test]
fn chunked_applied_twice_is_400_in_one_line_or_two() {
    assert_eq!(frame11(&["Transfer-Encoding: chunked, chunked"]), Err(400));
    assert_eq!(
        frame11(&["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
        Err(400)
    );
}

#[test]
fn a_coding_we_do_not_implement_before_chunked_is_501() {
    assert_eq!(frame11(&["Transfer-Encoding: gzip, chunked"]), Err(501));
    assert_eq!(
        frame11(&["Transfer-Encoding: cow", "Transfer-Encoding: chunked"]),
        Err(501)
    );
}

#[test]
fn a_well_formed_head_parses() {
    let head = parse_with("Host: t\r\nContent-Length: 2\r\nX-Tab:\ta\tb \r\n").unwrap();
    assert_eq!(head.method, crate::Method::Post);
    assert_eq!(head.path, "/rpc");
    assert_eq!(head.version, HTTPVersion(1, 1));
    assert_eq!(head.headers.len(), 3);
    assert_eq!(head.headers[2].value.as_str(), "a\tb");
}

#[test]
fn empty_lines_before_the_request_line_are_ignored() {
    assert_eq!(refused(b"\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
}

#[test]
fn an_absolute_form_target_is_served_as_its_path() {
    for (target, path) in [
        ("http://h:1/rpc", "/rpc"),
        ("HTTP://h/rpc?x=1", "/rpc?x=1"),
        ("https://h", "/"),
        ("http://h?x", "/?x"),
        ("/rpc", "/rpc"),
    ] {
        let head = parse(format!("POST {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
        assert_eq!(head.path, path, "{target}");
    }
    assert_eq!(refused(b"GET http:///rpc HTTP/1.1\r\n\r\n"), 400);
}

#[test]
fn obs_fold_is_400() {
    assert!(matches!(parse_with("X: a\r\n b"), Err(400)));
    assert!(matches!(
        parse_with("X: a\r\n\tTransfer-Encoding: chunked"),
        Err(400)
    ));
}

#[test]
fn whitespace_before_a_colon_is_400() {
    assert!(matches!(
        parse_with("Transfer-Encoding : chunked"),
        Err(400)
    ));
    assert!(matches!(
        parse_with("Transfer-Encoding\t: chunked"),
        Err(400)
    ));
    assert!(matches!(
        parse_with(" Transfer-Encoding: chunked"),
        Err(400)
    ));
}

#[test]
fn a_control_character_or_separator_in_a_field_name_is_400() {
    for name in [
        "Transfer-Encoding\x01",
        "X(",
        "X\x00",
        "X\x7f",
        "X\"",
        "X/Y",
    ] {
        let r = parse_with(&format!("{name}: chunked"));
        assert!(matches!(r, Err(400)), "{:?}", name);
    }
}

#[test]
fn a_control_character_in_a_value_is_400() {
    for value in [
        "X\x01Transfer-Encoding: chunked",
        "a\x00b",
        "a\x7fb",
        "a\x0bb",
        "\u{a0}chunked",
        "chunked\u{85}",
    ] {
        let r = parse_with(&format!("X: {value}"));
        assert!(matches!(r, Err(400)), "{:?}", value);
    }
}

#[test]
fn a_lone_cr_or_lf_inside_the_head_is_400() {
    assert_eq!(
        refused(b"POST /rpc HTTP/1.1\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    assert_eq!(refused(b"POST /rpc HTTP/1.1\r\nX: a\r\x01b\r\n\r\n"), 400);
    assert_eq!(
        refused(b"POST /rpc HTTP/1.1\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    assert_eq!(refused(b"POST /rpc HTTP/1.1\nHost: t\n\n"), 400);
}

#[test]
fn a_malformed_request_line_is_400_and_an_unknown_version_505() {
    assert_eq!(refused(b"POST  /rpc HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(refused(b"POST /rpc\r\n\r\n"), 400);
    assert_eq!(refused(b"PO(ST /rpc HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(refused(b"POST /r pc HTTP/1.1\r\n\r\n"), 505);
    assert_eq!(refused(b"POST /rpc HTTP/2.0\r\n\r\n"), 505);
    assert_eq!(refused(b"POST /\xff HTTP/1.1\r\n\r\n"), 400);
}

#[test]
fn more_headers_than_the_parser_holds_are_431() {
    let lines: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    assert!(matches!(parse_with(&lines), Err(431)));
}
