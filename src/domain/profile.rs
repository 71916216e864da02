//! Profile documents: `{nickname?, avatar?, bio?, extra?}` with the contract's
//! size limits. A patch holds `Some(value)` to set and `None` to remove.

use serde_json::Value;

use super::Invalid;

/// Text fields and their limits in characters; shared with `rpc.discover`.
pub const TEXT_FIELDS: &[(&str, usize)] = &[("nickname", 64), ("avatar", 512), ("bio", 1024)];
/// `extra`, serialized as JSON.
pub const EXTRA_MAX_BYTES: usize = 4096;

/// A validated profile change: field -> new value (`None` removes it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfilePatch(pub Vec<(String, Option<Value>)>);

impl ProfilePatch {
    /// `field` prefixes the names in errors (`profile`, `users[3].profile`).
    pub fn parse(raw: &Value, field: &str) -> Result<ProfilePatch, Invalid> {
        let Value::Object(map) = raw else {
            return Err(Invalid::new(field, "not_an_object"));
        };
        let mut out = Vec::new();
        for (key, value) in map {
            let name = format!("{field}.{key}");
            if value.is_null() {
                if key != "extra" && !TEXT_FIELDS.iter().any(|(k, _)| k == key) {
                    return Err(Invalid::new(name, "unknown_field"));
                }
                out.push((key.clone(), None));
                continue;
            }
            if key == "extra" {
                if !value.is_object() {
                    return Err(Invalid::new(name, "not_an_object"));
                }
                if serde_json::to_vec(value).map_or(usize::MAX, |v| v.len()) > EXTRA_MAX_BYTES {
                    return Err(Invalid::new(name, "too_long"));
                }
                if !fits_bson(value) {
                    return Err(Invalid::new(name, "number_out_of_range"));
                }
            } else if let Some((_, max)) = TEXT_FIELDS.iter().find(|(k, _)| k == key) {
                let Value::String(s) = value else {
                    return Err(Invalid::new(name, "not_a_string"));
                };
                if s.chars().count() > *max {
                    return Err(Invalid::new(name, "too_long"));
                }
            } else {
                return Err(Invalid::new(name, "unknown_field"));
            }
            out.push((key.clone(), Some(value.clone())));
        }
        Ok(ProfilePatch(out))
    }
}

/// BSON has no unsigned 64-bit integer: a JSON integer above `i64::MAX`
/// cannot be stored as given, so it is refused here rather than lost later.
/// (serde_json bounds nesting at 128 levels, so the recursion is bounded.)
fn fits_bson(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_i64() || n.is_f64(),
        Value::Array(items) => items.iter().all(fits_bson),
        Value::Object(map) => map.values().all(fits_bson),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profile_limits_are_enforced_per_field() {
        let ok = json!({"nickname": "n".repeat(64), "bio": null, "extra": {"a": 1}});
        assert_eq!(ProfilePatch::parse(&ok, "profile").unwrap().0.len(), 3);
        let cases = [
            (
                json!({"nickname": "n".repeat(65)}),
                "profile.nickname",
                "too_long",
            ),
            (
                json!({"avatar": "a".repeat(513)}),
                "profile.avatar",
                "too_long",
            ),
            (json!({"bio": "b".repeat(1025)}), "profile.bio", "too_long"),
            (
                json!({"extra": {"k": "x".repeat(4100)}}),
                "profile.extra",
                "too_long",
            ),
            (json!({"extra": [1]}), "profile.extra", "not_an_object"),
            (
                json!({"extra": {"n": [u64::MAX]}}),
                "profile.extra",
                "number_out_of_range",
            ),
            (json!({"nickname": 5}), "profile.nickname", "not_a_string"),
            (json!({"age": 5}), "profile.age", "unknown_field"),
        ];
        for (value, field, reason) in cases {
            assert_eq!(
                ProfilePatch::parse(&value, "profile").unwrap_err(),
                Invalid::new(field, reason)
            );
        }
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(ProfilePatch::parse(&json!({"nickname": "é".repeat(64)}), "profile").is_ok());
    }
}
