//! Typed access to a call's named params. Every failure is a -32602 that
//! names the param and the reason, and a param the method does not take is
//! refused rather than silently ignored (it is usually a caller's typo).
//! A NUL character anywhere in a param is refused here, before any work:
//! PostgreSQL cannot store it, and no name, password or address holds one.

use serde_json::{Map, Value};

use crate::domain::{Email, Username};
use crate::error::AppError;

pub struct Params<'a> {
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Params<'a> {
    /// `params` may be absent, an object, or an empty array (no params).
    pub fn new(raw: Option<&'a Value>, allowed: &[&str]) -> Result<Params<'a>, AppError> {
        let map = match raw {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(_) => return Err(AppError::invalid("params", "must_be_named")),
        };
        if let Some(unknown) = map.and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str()))) {
            return Err(AppError::invalid(unknown.clone(), "unknown_param"));
        }
        if let Some((name, _)) = map.and_then(|m| m.iter().find(|(_, v)| has_nul(v))) {
            return Err(AppError::invalid(name.clone(), "contains_nul"));
        }
        Ok(Params { map })
    }

    /// All the params as given (`None`: no params).
    pub fn all(&self) -> Option<&'a Map<String, Value>> {
        self.map
    }

    /// The raw value; JSON `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map?.get(key).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, AppError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(AppError::invalid(key, "not_a_string")),
        }
    }

    pub fn str(&self, key: &str) -> Result<&'a str, AppError> {
        self.opt_str(key)?
            .ok_or_else(|| AppError::invalid(key, "missing"))
    }

    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, AppError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| AppError::invalid(key, "not_an_integer")),
        }
    }

    pub fn i64(&self, key: &str) -> Result<i64, AppError> {
        self.opt_i64(key)?
            .ok_or_else(|| AppError::invalid(key, "missing"))
    }

    /// An optional integer in `1..=max`, `default` when absent.
    pub fn limit(&self, key: &str, default: i64, max: i64) -> Result<i64, AppError> {
        match self.opt_i64(key)? {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(_) => Err(AppError::invalid(key, "out_of_range")),
        }
    }

    /// A login string under `key`: a username, or an email (recognised by
    /// '@'), lower-cased. A malformed email is `invalid` under `key`.
    pub fn login_name(&self, key: &str) -> Result<String, AppError> {
        let raw = self.str(key)?;
        if raw.contains('@') {
            Ok(Email::parse(raw)
                .map_err(|_| AppError::invalid(key, "invalid"))?
                .as_str()
                .to_string())
        } else {
            Ok(Username::parse(raw)?.as_str().to_string())
        }
    }

    /// Exactly one of `username` and `email`, parsed and lower-cased: the
    /// account name to look up.
    pub fn username_or_email(&self) -> Result<String, AppError> {
        match (self.opt_str("username")?, self.opt_str("email")?) {
            (Some(u), None) => Ok(Username::parse(u)?.as_str().to_string()),
            (None, Some(e)) => Ok(Email::parse(e)?.as_str().to_string()),
            (Some(_), Some(_)) => Err(AppError::invalid("email", "give_username_or_email")),
            (None, None) => Err(AppError::invalid("username", "missing")),
        }
    }

    pub fn array(&self, key: &str) -> Result<&'a Vec<Value>, AppError> {
        match self.get(key) {
            None => Err(AppError::invalid(key, "missing")),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(AppError::invalid(key, "not_an_array")),
        }
    }
}

/// Whether a NUL is in any string (or object key) of `v`. Recursion is
/// bounded: serde_json refuses documents nested deeper than 128.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn positional_params_and_unknown_names_are_refused() {
        let arr = json!([1]);
        assert!(Params::new(Some(&arr), &[]).is_err());
        assert!(Params::new(Some(&json!([])), &[]).is_ok());
        let obj = json!({"user_id": 1, "usr": 2});
        match Params::new(Some(&obj), &["user_id"]) {
            Err(AppError::InvalidParams(i)) => {
                assert_eq!((i.field.as_str(), i.reason), ("usr", "unknown_param"))
            }
            _ => panic!("expected invalid params"),
        }
    }

    #[test]
    fn typed_getters_name_the_field() {
        let obj = json!({"a": "x", "n": 1.5, "z": null});
        let p = Params::new(Some(&obj), &["a", "n", "z"]).unwrap();
        assert_eq!(p.str("a").unwrap(), "x");
        assert!(p.opt_str("z").unwrap().is_none());
        assert!(
            matches!(p.i64("n"), Err(AppError::InvalidParams(i)) if i.reason == "not_an_integer")
        );
        assert!(
            matches!(p.i64("missing"), Err(AppError::InvalidParams(i)) if i.reason == "missing")
        );
    }

    #[test]
    fn a_nul_anywhere_in_a_param_is_refused_naming_the_param() {
        for raw in [
            json!({"ip": "1.2.3.4\0"}),
            json!({"ip": ["a", {"b": "\0"}]}),
            json!({"ip": {"k\0": 1}}),
        ] {
            match Params::new(Some(&raw), &["ip"]) {
                Err(AppError::InvalidParams(i)) => {
                    assert_eq!((i.field.as_str(), i.reason), ("ip", "contains_nul"))
                }
                _ => panic!("{raw} was accepted"),
            }
        }
        assert!(Params::new(Some(&json!({"ip": "1.2.3.4"})), &["ip"]).is_ok());
    }
}
