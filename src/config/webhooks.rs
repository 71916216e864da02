//! `[WEBHOOKS]`: endpoints that get every account event POSTed, signed per
//! the Standard Webhooks specification. `<name> = <url>`, `<name>.secret =
//! whsec_<base64>`, `<name>.types = <event types>` (default all), and
//! `retry_hours` (24): how long a failing delivery is retried.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;

use super::ConfigError;

#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    pub endpoints: Vec<Endpoint>,
    pub retry: Duration,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    pub secret: Secret,
    /// `None`: every event type.
    pub types: Option<Vec<String>>,
}

/// The signing key (the base64 after `whsec_`); never printed.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

pub fn parse(
    mut section: BTreeMap<String, String>,
    env: &str,
    kinds: &[&str],
) -> Result<WebhookConfig, ConfigError> {
    let retry_hours = match section.remove("retry_hours") {
        None => 24.0,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(h) if (0.001..=720.0).contains(&h) => h,
            _ => {
                return Err(ConfigError(format!(
                    "[WEBHOOKS] RETRY_HOURS = {v:?}: expected hours from 0.001 to 720"
                )))
            }
        },
    };
    let names: Vec<String> = section
        .keys()
        .filter(|k| !k.contains('.'))
        .cloned()
        .collect();
    let mut endpoints = Vec::new();
    for name in names {
        let url = section.remove(&name).unwrap_or_default();
        check_url(&name, url.trim(), env)?;
        let raw_secret = section.remove(&format!("{name}.secret")).ok_or_else(|| {
            ConfigError(format!(
                "[WEBHOOKS] {name}.SECRET is missing: the endpoint's signing secret, \
                 whsec_ followed by base64 (e.g. whsec_$(head -c24 /dev/urandom | base64))"
            ))
        })?;
        let secret = raw_secret
            .trim()
            .strip_prefix("whsec_")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|k| k.len() >= 16)
            .ok_or_else(|| {
                ConfigError(format!(
                    "[WEBHOOKS] {name}.SECRET: expected whsec_ followed by the base64 of at \
                     least 16 bytes"
                ))
            })?;
        let types = match section.remove(&format!("{name}.types")) {
            None => None,
            Some(list) => {
                let types: Vec<String> = list
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect();
                if let Some(bad) = types.iter().find(|t| !kinds.contains(&t.as_str())) {
                    return Err(ConfigError(format!(
                        "[WEBHOOKS] {name}.TYPES: {bad:?} is not an event type (expected some of {})",
                        kinds.join(", ")
                    )));
                }
                Some(types)
            }
        };
        endpoints.push(Endpoint {
            name,
            url: url.trim().to_string(),
            secret: Secret(secret),
            types,
        });
    }
    if let Some(key) = section.keys().next() {
        return Err(ConfigError(format!(
            "[WEBHOOKS] {key} names no endpoint: each <name> = <url> has <name>.SECRET and, \
             optionally, <name>.TYPES"
        )));
    }
    Ok(WebhookConfig {
        endpoints,
        retry: Duration::from_secs_f64(retry_hours * 3600.0),
    })
}

/// In `Product` only `https://`; elsewhere only `http://` to a loopback or
/// private address (a test receiver, a service next door).
fn check_url(name: &str, url: &str, env: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| Err(ConfigError(format!("[WEBHOOKS] {name} = {url:?}: {why}")));
    if env == "Product" {
        if url.starts_with("https://") && url.len() > "https://".len() {
            return Ok(());
        }
        return bad("with CURRENT_ENV = Product only https:// URLs are accepted");
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return bad("outside Product only http:// URLs to a loopback or private address");
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let near = host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| match ip.to_canonical() {
                IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
                IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
            });
    if near {
        Ok(())
    } else {
        bad("outside Product only http:// URLs to a loopback or private address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: &[&str] = &["user.created", "session.revoked"];
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn section(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn endpoints_need_a_secret_and_known_types_and_near_http_outside_product() {
        let ok = parse(
            section(&[
                ("crm", "http://127.0.0.1:9000/hooks"),
                ("crm.secret", SECRET),
                ("crm.types", "user.created"),
                ("retry_hours", "2"),
            ]),
            "Test",
            KINDS,
        )
        .unwrap();
        assert_eq!(
            ok.endpoints[0].types.as_deref(),
            Some(&["user.created".to_string()][..])
        );
        assert_eq!(ok.retry, Duration::from_secs(7200));
        assert!(!format!("{ok:?}").contains("MfKQ"));
        for (pairs, env, says) in [
            (
                vec![("crm", "http://127.0.0.1/")],
                "Test",
                "SECRET is missing",
            ),
            (
                vec![("crm", "http://8.8.8.8/"), ("crm.secret", SECRET)],
                "Test",
                "loopback",
            ),
            (
                vec![("crm", "http://10.0.0.1/"), ("crm.secret", SECRET)],
                "Product",
                "https",
            ),
            (
                vec![("crm", "http://[::1]:80/"), ("crm.secret", "nope")],
                "Test",
                "whsec_",
            ),
            (
                vec![
                    ("crm", "http://localhost/"),
                    ("crm.secret", SECRET),
                    ("crm.types", "x"),
                ],
                "Test",
                "not an event type",
            ),
            (vec![("other.secret", SECRET)], "Test", "names no endpoint"),
        ] {
            let e = parse(section(&pairs), env, KINDS).unwrap_err();
            assert!(e.0.contains(says), "{pairs:?}: {e}");
        }
        assert!(parse(
            section(&[
                ("crm", "https://hooks.example.com/p"),
                ("crm.secret", SECRET)
            ]),
            "Product",
            KINDS
        )
        .is_ok());
    }
}
