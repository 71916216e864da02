//! Profile documents as JSON text, written straight from the BSON bytes
//! MongoDB sent: relaxed Extended JSON, byte for byte what
//! `Bson::into_relaxed_extjson` and `serde_json` would write, without
//! building a `Document`, a `serde_json::Map` and then the text from them.
//! A `user.gets` of 100 ids spent a quarter of profiteer's time in those
//! two trees (perf, `wiki/performance.md`).
//!
//! The types JSON itself has (strings, numbers, booleans, null, arrays and
//! documents) are written here; any other BSON type goes through the `bson`
//! crate's own conversion, one value at a time. A document with a repeated
//! key (which no write of ours makes) goes through that conversion whole,
//! since it keeps one entry per key.
//!
//! `extra` is stored as its JSON text (a BSON string, see
//! `Mongo::update_profile`) and written back as that text: stored as a
//! document, keys such as `$numberLong` or `$date` were read as Extended
//! JSON (`{"$numberLong":"5"}` came back as `5`). A profile stored as a
//! document by an older build is still read as before.

use std::collections::HashSet;

use mongodb::bson::{Bson, Document, RawArray, RawBsonRef, RawDocument};
use serde_json::{Map, Value};

/// `doc` as a JSON object, without its top-level `_id`.
pub fn profile_json(doc: &RawDocument) -> Result<String, mongodb::error::Error> {
    let mut out = Vec::with_capacity(doc.as_bytes().len() + 16);
    if write_document(doc, true, &mut out).is_some() {
        // Only `str`s and ASCII went in, so this never falls through.
        if let Ok(text) = String::from_utf8(out) {
            return Ok(text);
        }
    }
    let document = Document::try_from(doc)?;
    Ok(Value::Object(document_to_json(document)).to_string())
}

/// The profile field kept as JSON text.
pub const EXTRA: &str = "extra";

/// `text` if it is a JSON object, as `extra`'s stored text always is.
fn json_object(text: &str) -> Option<Map<String, Value>> {
    serde_json::from_str(text).ok()
}

/// The slow path, and the definition: relaxed Extended JSON, `_id` dropped,
/// `extra`'s text read back as the object it is.
pub fn document_to_json(mut d: Document) -> Map<String, Value> {
    d.remove("_id");
    let mut map = match Bson::Document(d).into_relaxed_extjson() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(extra) = map.get(EXTRA).and_then(Value::as_str).and_then(json_object) {
        map.insert(EXTRA.to_string(), Value::Object(extra));
    }
    map
}

/// `None`: not written here (malformed bytes or a repeated key).
fn write_document(doc: &RawDocument, skip_id: bool, out: &mut Vec<u8>) -> Option<()> {
    let mut keys = Keys::default();
    out.push(b'{');
    let mut first = true;
    for element in doc.iter() {
        let (key, value) = element.ok()?;
        if skip_id && key == "_id" {
            continue;
        }
        if !keys.insert(key) {
            return None;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, key).ok()?;
        out.push(b':');
        match value {
            // Checked to be one JSON object (`extra` is 4 KiB at most),
            // without building it.
            RawBsonRef::String(text) if skip_id && key == EXTRA => {
                if !text.starts_with('{') {
                    return None;
                }
                serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
                out.extend_from_slice(text.as_bytes());
            }
            value => write_value(value, out)?,
        }
    }
    out.push(b'}');
    Some(())
}

fn write_array(array: &RawArray, out: &mut Vec<u8>) -> Option<()> {
    out.push(b'[');
    for (i, value) in array.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(value.ok()?, out)?;
    }
    out.push(b']');
    Some(())
}

fn write_value(value: RawBsonRef<'_>, out: &mut Vec<u8>) -> Option<()> {
    match value {
        RawBsonRef::String(s) => serde_json::to_writer(&mut *out, s).ok(),
        RawBsonRef::Int32(n) => serde_json::to_writer(&mut *out, &n).ok(),
        RawBsonRef::Int64(n) => serde_json::to_writer(&mut *out, &n).ok(),
        RawBsonRef::Double(f) if f.is_finite() => serde_json::to_writer(&mut *out, &f).ok(),
        RawBsonRef::Boolean(b) => {
            out.extend_from_slice(if b { b"true" } else { b"false" });
            Some(())
        }
        RawBsonRef::Null => {
            out.extend_from_slice(b"null");
            Some(())
        }
        RawBsonRef::Document(d) => write_document(d, false, out),
        RawBsonRef::Array(a) => write_array(a, out),
        other => {
            let bson = Bson::try_from(other).ok()?;
            serde_json::to_writer(&mut *out, &bson.into_relaxed_extjson()).ok()
        }
    }
}

/// The keys of one document so far: a short list, a set past that.
#[derive(Default)]
struct Keys<'a> {
    few: Vec<&'a str>,
    many: HashSet<&'a str>,
}

impl<'a> Keys<'a> {
    const FEW: usize = 16;

    /// False if `key` was seen already.
    fn insert(&mut self, key: &'a str) -> bool {
        if self.few.len() < Self::FEW {
            if self.few.contains(&key) {
                return false;
            }
            self.few.push(key);
            return true;
        }
        if self.few.contains(&key) {
            return false;
        }
        self.many.insert(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;
    use mongodb::bson::spec::BinarySubtype;
    use mongodb::bson::{doc, Binary, DateTime, Decimal128, RawDocumentBuf, Regex, Timestamp};

    /// What the slow path writes for `d`.
    fn slow(d: &Document) -> String {
        Value::Object(document_to_json(d.clone())).to_string()
    }

    fn fast(d: &Document) -> String {
        let raw = RawDocumentBuf::from_document(d).expect("encodes");
        profile_json(&raw).expect("converts")
    }

    #[test]
    fn json_types_are_written_as_the_bson_crate_writes_them() {
        let d = doc! {
            "_id": 42_i64,
            "nickname": "Zoë \"z\" \\ \u{1}\n",
            "n32": -7_i32,
            "n64": i64::MIN,
            "f": 1.0,
            "g": -0.0,
            "h": 1e300,
            "i": 0.1,
            "yes": true,
            "no": false,
            "nothing": null,
            "extra": {"team": "a", "deep": {"list": [1_i32, "two", [3.5, null], {}]}},
            "empty": [],
            "": "empty key",
        };
        let text = fast(&d);
        assert_eq!(text, slow(&d));
        assert!(!text.contains("_id"), "{text}");
    }

    #[test]
    fn other_bson_types_go_through_the_bson_crate() {
        let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").expect("hex");
        let d = doc! {
            "_id": 1_i64,
            "oid": oid,
            "when": DateTime::from_millis(1_700_000_000_123),
            "before_1970": DateTime::from_millis(-5),
            "nan": f64::NAN,
            "inf": f64::NEG_INFINITY,
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
            "re": Regex { pattern: "^a".into(), options: "xi".into() },
            "ts": Timestamp { time: 5, increment: 6 },
            "dec": Decimal128::from_bytes([1; 16]),
            "nested": {"oid": oid, "list": [DateTime::from_millis(0)]},
        };
        assert_eq!(fast(&d), slow(&d));
    }

    #[test]
    fn a_repeated_key_is_answered_as_the_bson_crate_keeps_it() {
        // `doc!` cannot repeat a key: write the bytes by hand.
        let mut raw = RawDocumentBuf::new();
        raw.append("_id", 1_i64);
        raw.append("a", 1_i32);
        raw.append("b", "x");
        raw.append("a", 2_i32);
        let text = profile_json(&raw).expect("converts");
        let document = Document::try_from(raw.as_ref()).expect("decodes");
        assert_eq!(text, Value::Object(document_to_json(document)).to_string());
        assert_eq!(text.matches("\"a\"").count(), 1, "{text}");
    }

    #[test]
    fn many_keys_are_checked_for_repeats_too() {
        let mut raw = RawDocumentBuf::new();
        for i in 0..40 {
            raw.append(format!("k{i}"), i);
        }
        let d = Document::try_from(raw.as_ref()).expect("decodes");
        assert_eq!(profile_json(&raw).expect("converts"), slow(&d));
        raw.append("k30", "again");
        let text = profile_json(&raw).expect("converts");
        assert_eq!(text.matches("\"k30\"").count(), 1, "{text}");
    }

    /// The attacker's review: `{"$numberLong":"5"}` in `extra` read back
    /// as `5`, `{"$date":…}` as a date. Kept as text, it comes back as sent.
    #[test]
    fn extra_comes_back_exactly_as_stored_dollar_keys_included() {
        let sent = r#"{"$numberLong":"5","when":{"$date":"2020-01-01T00:00:00Z"},"$oid":1}"#;
        let d = doc! {"_id": 4_i64, "bio": "b", "extra": sent};
        let expected = format!(r#"{{"bio":"b","extra":{sent}}}"#);
        assert_eq!(fast(&d), expected);
        assert_eq!(slow(&d), expected);
        // A document stored by an older build still reads as before.
        let old = doc! {"_id": 4_i64, "extra": {"team": "a"}};
        assert_eq!(fast(&old), r#"{"extra":{"team":"a"}}"#);
    }

    #[test]
    fn only_the_top_level_id_is_dropped() {
        let d = doc! {"_id": 3_i64, "extra": {"_id": "kept"}};
        assert_eq!(fast(&d), r#"{"extra":{"_id":"kept"}}"#);
        assert_eq!(fast(&d), slow(&d));
    }
}
