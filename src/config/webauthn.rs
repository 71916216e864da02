//! `[WEBAUTHN]`: the relying party passkeys are bound to. Off until
//! `RP_ID` and `ORIGINS` are set; then every value is checked here, by
//! building the relying party the passkey methods will use, so a typo stops
//! start-up (and `check-config`) instead of the first passkey login.

use webauthn_rs::prelude::{Url, WebauthnBuilder};

use super::ConfigError;

#[derive(Debug, Clone, Default)]
pub struct WebauthnConfig {
    /// The relying party's id: the domain passkeys are scoped to
    /// (`example.com`). `None`: passkeys are not configured.
    pub rp_id: Option<String>,
    /// Shown by the authenticator; defaults to `rp_id`.
    pub rp_name: String,
    /// The origins a ceremony may come from (`https://app.example.com`):
    /// each the RP id or a subdomain of it.
    pub origins: Vec<Url>,
}

impl WebauthnConfig {
    pub fn enabled(&self) -> bool {
        self.rp_id.is_some()
    }
}

/// From the raw `RP_ID`, `RP_NAME`, `ORIGINS` values (absent or empty: `None`).
pub fn parse(
    rp_id: Option<String>,
    rp_name: Option<String>,
    origins: Option<String>,
) -> Result<WebauthnConfig, ConfigError> {
    let (rp_id, origins) = match (rp_id, origins) {
        (None, None) => {
            if rp_name.is_some() {
                return Err(ConfigError(
                    "[WEBAUTHN] RP_NAME is set without RP_ID and ORIGINS: set all three to \
                     offer passkeys, or none"
                        .to_string(),
                ));
            }
            return Ok(WebauthnConfig::default());
        }
        (Some(_), None) => {
            return Err(ConfigError(
                "[WEBAUTHN] ORIGINS is required with RP_ID: the comma-separated origins \
                 (https://app.example.com) passkey ceremonies may come from"
                    .to_string(),
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError(
                "[WEBAUTHN] RP_ID is required with ORIGINS: the domain passkeys are bound to \
                 (example.com)"
                    .to_string(),
            ))
        }
        (Some(id), Some(origins)) => (id, origins),
    };
    if rp_id.contains(['/', ':']) || rp_id.trim() != rp_id || rp_id.is_empty() {
        return Err(ConfigError(format!(
            "[WEBAUTHN] RP_ID = {rp_id:?}: expected a bare domain (example.com), no scheme \
             or port"
        )));
    }
    let origins = origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            Url::parse(o).map_err(|_| {
                ConfigError(format!(
                    "[WEBAUTHN] ORIGINS: {o:?} is not an origin (expected \
                     https://host[:port])"
                ))
            })
        })
        .collect::<Result<Vec<Url>, ConfigError>>()?;
    let Some(first) = origins.first() else {
        return Err(ConfigError(
            "[WEBAUTHN] ORIGINS is empty: expected one or more comma-separated origins".to_string(),
        ));
    };
    let mut builder = WebauthnBuilder::new(&rp_id, first).map_err(|_| {
        ConfigError(format!(
            "[WEBAUTHN] ORIGINS: {first} is not within RP_ID {rp_id:?} (an origin must be \
             the RP id or one of its subdomains)"
        ))
    })?;
    for origin in &origins[1..] {
        if !within(origin, &rp_id) {
            return Err(ConfigError(format!(
                "[WEBAUTHN] ORIGINS: {origin} is not within RP_ID {rp_id:?} (an origin must \
                 be the RP id or one of its subdomains)"
            )));
        }
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map_err(|e| {
        ConfigError(format!(
            "[WEBAUTHN] RP_ID {rp_id:?} with ORIGINS refused: {e}"
        ))
    })?;
    Ok(WebauthnConfig {
        rp_name: rp_name.unwrap_or_else(|| rp_id.clone()),
        rp_id: Some(rp_id),
        origins,
    })
}

/// Whether `origin`'s host is `rp_id` or a subdomain of it.
fn within(origin: &Url, rp_id: &str) -> bool {
    origin
        .host_str()
        .is_some_and(|h| h == rp_id || h.ends_with(&format!(".{rp_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn passkeys_are_off_until_rp_id_and_origins_are_set() {
        assert!(!parse(None, None, None).unwrap().enabled());
        let c = parse(
            s("example.com"),
            None,
            s("https://app.example.com, https://example.com:8443"),
        )
        .unwrap();
        assert_eq!(c.rp_name, "example.com");
        assert_eq!(c.origins.len(), 2);
    }

    #[test]
    fn a_half_set_or_foreign_configuration_is_refused_naming_the_key() {
        for (id, name, origins, key) in [
            (s("example.com"), None, None, "ORIGINS"),
            (None, None, s("https://example.com"), "RP_ID"),
            (None, s("Shop"), None, "RP_NAME"),
            (
                s("https://example.com"),
                None,
                s("https://example.com"),
                "RP_ID",
            ),
            (s("example.com"), None, s("https://evil.test"), "ORIGINS"),
            (
                s("example.com"),
                None,
                s("https://example.com,https://evil.test"),
                "ORIGINS",
            ),
            (s("example.com"), None, s("not a url"), "ORIGINS"),
        ] {
            let err = parse(id, name, origins).unwrap_err();
            assert!(err.0.contains(&format!("[WEBAUTHN] {key}")), "{err}");
        }
    }
}
