//! The answer to one HTTP body, written once, into one buffer, as each call
//! is answered, and never longer than `[SERVER] MAX_ANSWER_BYTES`.
//!
//! Each call's answer is serialized straight into the buffer (a cached User
//! is copied in as the text it is, once), within a cap. Room for a short
//! -32003 answer is held back for every call not answered yet, so a call
//! whose answer would not fit is cut back to where it began and answered
//! -32003 instead, and the calls after it still have room for theirs. One
//! request then costs about its answer's size once, never several copies.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Value};

use super::Output;
use crate::error::AppError;

/// A call's answer did not fit within its cap (nothing of it is kept).
#[derive(Debug)]
pub struct TooLarge;

/// The buffer grows to `cap` at most; a write past it fails.
struct Capped<'a> {
    out: &'a mut Vec<u8>,
    cap: usize,
}

impl Write for Capped<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.out.len() + bytes.len() > self.cap {
            return Err(io::Error::other("answer too large"));
        }
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn put(out: &mut Vec<u8>, cap: usize, bytes: &[u8]) -> Result<(), TooLarge> {
    Capped { out, cap }.write_all(bytes).map_err(|_| TooLarge)
}

fn put_json(out: &mut Vec<u8>, cap: usize, value: &impl Serialize) -> Result<(), TooLarge> {
    serde_json::to_writer(Capped { out, cap }, value).map_err(|_| TooLarge)
}

impl Output {
    fn write_to(&self, out: &mut Vec<u8>, cap: usize) -> Result<(), TooLarge> {
        match self {
            Output::Value(v) => put_json(out, cap, v),
            Output::Raw(text) => put(out, cap, text.as_bytes()),
            Output::User(user) => put(out, cap, user.json.as_bytes()),
            Output::Users {
                users,
                rest_key,
                rest,
            } => {
                let rest = json!({ *rest_key: rest }).to_string();
                // Measured before anything is written: a list that cannot
                // fit costs nothing more.
                let len = r#"{"users":[],"#.len()
                    + users.iter().map(|u| u.json.len() + 1).sum::<usize>()
                    + rest.len();
                if out.len() + len > cap {
                    return Err(TooLarge);
                }
                put(out, cap, br#"{"users":["#)?;
                for (i, u) in users.iter().enumerate() {
                    if i > 0 {
                        put(out, cap, b",")?;
                    }
                    put(out, cap, u.json.as_bytes())?;
                }
                put(out, cap, b"],")?;
                // `rest` is `{"<key>":<value>}`: its fields close ours.
                put(out, cap, rest.get(1..).unwrap_or("}").as_bytes())
            }
        }
    }
}

fn write_result(
    out: &mut Vec<u8>,
    cap: usize,
    id: &Value,
    result: &Output,
) -> Result<(), TooLarge> {
    put(out, cap, br#"{"jsonrpc":"2.0","result":"#)?;
    result.write_to(out, cap)?;
    put(out, cap, br#","id":"#)?;
    put_json(out, cap, id)?;
    put(out, cap, b"}")
}

fn write_error(
    out: &mut Vec<u8>,
    cap: usize,
    id: &Value,
    e: &AppError,
    rid: u64,
) -> Result<(), TooLarge> {
    put_json(
        out,
        cap,
        &json!({"jsonrpc": "2.0", "error": e.to_json(rid), "id": id}),
    )
}

/// The -32003 answer around its id, as text: written per call without
/// building a JSON tree (a unit test holds it to `AppError`'s own).
const TOO_LARGE_HEAD: &[u8] =
    br#"{"jsonrpc":"2.0","error":{"code":-32003,"message":"Answer too large","data":{"limit":"#;
const TOO_LARGE_ID: &[u8] = br#"}},"id":"#;

/// Counts what is written.
struct Count(usize);

impl Write for Count {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the -32003 answer of a call with this id.
fn too_large_into(out: &mut Vec<u8>, id: &Value, limit: usize) {
    out.extend_from_slice(TOO_LARGE_HEAD);
    out.extend_from_slice(limit.to_string().as_bytes());
    out.extend_from_slice(TOO_LARGE_ID);
    if serde_json::to_writer(&mut *out, id).is_err() {
        out.extend_from_slice(b"null");
    }
    out.push(b'}');
}

fn too_large(id: &Value, limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(held_for(id, limit));
    too_large_into(&mut out, id, limit);
    out
}

/// What is held back for a call until it is answered: its -32003 answer
/// and the comma before it.
fn held_for(id: &Value, limit: usize) -> usize {
    let mut id_len = Count(0);
    if serde_json::to_writer(&mut id_len, id).is_err() {
        id_len.0 = "null".len();
    }
    let limit_digits = limit.checked_ilog10().map_or(1, |d| d as usize + 1);
    TOO_LARGE_HEAD.len() + limit_digits + TOO_LARGE_ID.len() + id_len.0 + 1 + 1
}

pub struct AnswerBuf {
    buf: Vec<u8>,
    limit: usize,
    batch: bool,
    /// Bytes held back for the calls not answered yet (and the `]`).
    held: usize,
    answered: usize,
}

impl AnswerBuf {
    /// A buffer for answers to calls with these ids (`None`: a
    /// notification, not answered). `None` when not even a -32003 answer
    /// to each would fit (ids of many kilobytes).
    pub fn new<'a>(
        limit: usize,
        batch: bool,
        ids: impl Iterator<Item = Option<&'a Value>>,
    ) -> Option<AnswerBuf> {
        let held = usize::from(batch) + ids.flatten().map(|id| held_for(id, limit)).sum::<usize>();
        // Most answers are short: one allocation for them, no regrowth.
        let mut buf = Vec::with_capacity(256);
        if batch {
            buf.push(b'[');
        }
        (buf.len() + held <= limit).then_some(AnswerBuf {
            buf,
            limit,
            batch,
            held,
            answered: 0,
        })
    }

    /// The answer of a whole body none of whose calls could be answered
    /// within the limit: one -32003 error.
    pub fn refused(limit: usize) -> Vec<u8> {
        too_large(&Value::Null, limit)
    }

    /// Writes this call's answer; `false` when it did not fit and the call
    /// was answered -32003 instead.
    pub fn answer(&mut self, id: &Value, result: &Result<Output, AppError>, rid: u64) -> bool {
        self.held -= held_for(id, self.limit);
        let start = self.buf.len();
        if self.batch && self.answered > 0 {
            self.buf.push(b',');
        }
        let cap = self.limit - self.held;
        let written = match result {
            Ok(output) => write_result(&mut self.buf, cap, id, output),
            Err(e) => write_error(&mut self.buf, cap, id, e, rid),
        };
        self.answered += 1;
        if written.is_ok() {
            return true;
        }
        // Within what was held back for this call, by construction.
        self.buf.truncate(start);
        if self.batch && self.answered > 1 {
            self.buf.push(b',');
        }
        too_large_into(&mut self.buf, id, self.limit);
        false
    }

    /// The answer's bytes; `None` when no call was answered (a batch of
    /// notifications: HTTP 204).
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if self.answered == 0 {
            return None;
        }
        if self.batch {
            self.buf.push(b']');
        }
        Some(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(out: AnswerBuf) -> Vec<Value> {
        let bytes = out.finish().unwrap();
        match serde_json::from_slice(&bytes).unwrap() {
            Value::Array(items) => items,
            single => vec![single],
        }
    }

    fn big(bytes: usize) -> Result<Output, AppError> {
        Ok(Output::Value(json!("x".repeat(bytes))))
    }

    #[test]
    fn a_call_whose_answer_would_pass_the_limit_is_answered_32003_and_the_rest_go_on() {
        let limit = 4096;
        let ids = [json!(1), json!(2), json!("three")];
        let mut out = AnswerBuf::new(limit, true, ids.iter().map(Some)).unwrap();
        assert!(out.answer(&ids[0], &big(1000), 1));
        assert!(!out.answer(&ids[1], &big(5000), 1));
        assert!(out.answer(&ids[2], &Ok(json!("pong").into()), 1));
        let bytes = out.finish().unwrap();
        assert!(bytes.len() <= limit, "{}", bytes.len());
        let items: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(items[0]["result"].as_str().map(str::len), Some(1000));
        assert_eq!(items[1]["error"]["code"], -32003);
        assert_eq!(items[1]["error"]["data"]["limit"], limit);
        assert_eq!(items[1]["id"], 2);
        assert_eq!(items[2]["result"], "pong");
        assert_eq!(items[2]["id"], "three");
    }

    /// The -32003 answer written as text is the one `AppError` makes, and
    /// what is held back for it is its length and a comma.
    #[test]
    fn the_too_large_answer_is_apperrors_own_and_held_back_exactly() {
        let ids = [json!(1), json!("a \"quoted\" id"), json!(null), json!(-2.5)];
        for (id, limit) in ids
            .iter()
            .flat_map(|id| [0, 9, 10, 99, 100, 65536, usize::MAX].map(|limit| (id, limit)))
        {
            let e = AppError::AnswerTooLarge { limit };
            let expected = json!({"jsonrpc": "2.0", "error": e.public_json(), "id": id});
            let text = too_large(id, limit);
            assert_eq!(serde_json::from_slice::<Value>(&text).unwrap(), expected);
            assert_eq!(
                String::from_utf8(text.clone()).unwrap(),
                expected.to_string()
            );
            assert_eq!(held_for(id, limit), text.len() + 1, "limit {limit}");
        }
    }

    #[test]
    fn the_limit_holds_however_the_calls_fill_it() {
        let limit = 2048;
        let ids: Vec<Value> = (0..12).map(|i| json!(i)).collect();
        for size in [0, 1, 50, 100, 300, 700, 1500, 3000] {
            let mut out = AnswerBuf::new(limit, true, ids.iter().map(Some)).unwrap();
            for id in &ids {
                out.answer(id, &big(size), 1);
            }
            let bytes = out.finish().unwrap();
            assert!(bytes.len() <= limit, "{size}: {}", bytes.len());
            let items: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(items.len(), ids.len());
            for (item, id) in items.iter().zip(&ids) {
                assert_eq!(&item["id"], id);
            }
        }
    }

    #[test]
    fn a_single_call_too_large_is_answered_32003_with_its_id() {
        let id = json!(7);
        let mut out = AnswerBuf::new(1024, false, [Some(&id)].into_iter()).unwrap();
        assert!(!out.answer(&id, &big(2000), 1));
        let items = answers(out);
        assert_eq!(items[0]["error"]["code"], -32003);
        assert_eq!(items[0]["id"], 7);
    }

    #[test]
    fn ids_too_long_for_even_a_refusal_each_refuse_the_whole_body() {
        let id = json!("i".repeat(600));
        assert!(AnswerBuf::new(1024, true, [Some(&id), Some(&id)].into_iter()).is_none());
        let refused: Value = serde_json::from_slice(&AnswerBuf::refused(1024)).unwrap();
        assert_eq!(refused["error"]["code"], -32003);
        assert_eq!(refused["id"], Value::Null);
    }

    #[test]
    fn a_batch_of_notifications_has_no_answer() {
        let out = AnswerBuf::new(1024, true, [None, None].into_iter()).unwrap();
        assert!(out.finish().is_none());
    }
}
