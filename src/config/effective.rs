//! The values in effect after the file, the environment and the defaults
//! (noted by the validating reader as it takes each key), and their rendering
//! as ini text with every secret masked, for `profiteer check-config`.

use std::fmt;

use super::Config;

/// `(section, key, value)` in the order the keys were read.
#[derive(Clone, Default)]
pub struct Effective(Vec<(String, String, String)>);

/// Never prints values: some of them are secrets.
impl fmt::Debug for Effective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Effective({} values)", self.0.len())
    }
}

impl Effective {
    /// Records `value` as the one in effect (a later note replaces an earlier).
    pub fn note(&mut self, section: &str, key: &str, value: &str) {
        match self.0.iter_mut().find(|(s, k, _)| s == section && k == key) {
            Some(entry) => entry.2 = value.to_string(),
            None => self
                .0
                .push((section.to_string(), key.to_string(), value.to_string())),
        }
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
    }
}

/// A key whose whole value is a secret (`MFA_KEY_PREVIOUS` too).
fn is_secret_key(key: &str) -> bool {
    key.ends_with("_KEY")
        || key.starts_with("MFA_KEY")
        || key.contains("SECRET")
        || key.contains("PASSWORD")
}

/// A query parameter that carries a secret (`password=`, `authSource` is
/// not one, `authMechanismProperties=AWS_SESSION_TOKEN:…` is).
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "token", "secret", "key", "authmechanismproperties"]
        .iter()
        .any(|s| name.contains(s))
}

/// `scheme://user:password@host/path?password=x` with every secret as `***`:
/// the password however it is written (a `/`, `?`, `#` or `@` in it
/// unencoded too) and secret-bearing query parameters.
pub fn mask_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    // The userinfo ends at the last `@` before the query; a password with an
    // unencoded `?` has no `@` before its `?`, so the last `@` of all. Too
    // much masked is a host hidden; too little is a secret shown.
    let query_at = rest.find('?').unwrap_or(rest.len());
    let at = rest[..query_at].rfind('@').or_else(|| rest.rfind('@'));
    let (userinfo, rest) = match at {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let userinfo = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{u}@"),
        },
        None => String::new(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest.to_string(),
    };
    format!("{scheme}://{userinfo}{rest}")
}

/// Several comma-separated URIs (a Redis Cluster), each masked; a comma
/// not followed by a scheme is part of one URI (libpq's host lists).
fn mask_uris(value: &str) -> String {
    let mut uris: Vec<String> = Vec::new();
    for part in value.split(',') {
        match uris.last_mut() {
            Some(last) if !part.contains("://") => {
                last.push(',');
                last.push_str(part);
            }
            _ => uris.push(part.to_string()),
        }
    }
    uris.iter()
        .map(|u| mask_uri(u))
        .collect::<Vec<_>>()
        .join(",")
}

fn masked(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        "***".to_string()
    } else if key.ends_with("_URI") {
        mask_uris(value)
    } else {
        value.to_string()
    }
}

impl Config {
    /// The effective configuration as ini text, secrets masked: URI
    /// passwords, `*_KEY`/`*SECRET*`/`*PASSWORD*` values, and client key hashes.
    pub fn render_masked(&self) -> String {
        let mut out = String::new();
        let mut current = "";
        for (section, key, value) in &self.effective.0 {
            if section != current {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&format!("[{section}]\n"));
                current = section;
            }
            out.push_str(&format!("{key} = {}\n", masked(key, value)));
        }
        if !self.roles.is_empty() {
            out.push_str("\n[ROLES]\n");
            for (role, permissions) in &self.roles {
                out.push_str(&format!("{role} = {}\n", permissions.join(",")));
            }
        }
        if !self.webhooks.endpoints.is_empty() {
            out.push_str("\n[WEBHOOKS]\n");
            out.push_str(&format!(
                "RETRY_HOURS = {}\n",
                self.webhooks.retry.as_secs_f64() / 3600.0
            ));
            for e in &self.webhooks.endpoints {
                out.push_str(&format!(
                    "{} = {}\n{}.SECRET = ***\n",
                    e.name, e.url, e.name
                ));
                if let Some(types) = &e.types {
                    out.push_str(&format!("{}.TYPES = {}\n", e.name, types.join(",")));
                }
            }
        }
        if !self.clients.is_empty() {
            out.push_str("\n[CLIENTS]\n");
            for client in &self.clients {
                out.push_str(&format!(
                    "{} = *** {}\n",
                    client.name,
                    client.methods.join(",")
                ));
            }
        }
        out
    }

    /// `-H`/`-P` from the command line win over `[SERVER] HOST`/`PORT`.
    pub fn override_listen(&mut self, host: Option<String>, port: Option<u16>) {
        if let Some(host) = host {
            self.effective.note("SERVER", "HOST", &host);
            self.server.host = host;
        }
        if let Some(port) = port {
            self.effective.note("SERVER", "PORT", &port.to_string());
            self.server.port = port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_passwords_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_uri("postgres://app:s3cret@db:5432/profiteer?sslmode=require&password=x"),
            "postgres://app:***@db:5432/profiteer?sslmode=require&password=***"
        );
        assert_eq!(
            mask_uri("mongodb://u:p@a:1,b:2/db?authSource=admin"),
            "mongodb://u:***@a:1,b:2/db?authSource=admin"
        );
        assert_eq!(
            mask_uri("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            mask_uri("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(mask_uri("postgres://me@h/db"), "postgres://me@h/db");
    }

    #[test]
    fn each_uri_of_a_list_is_masked() {
        assert_eq!(
            masked("REDIS_URI", "redis://:p1@a:7000,redis://:p/2@b:7001"),
            "redis://:***@a:7000,redis://:***@b:7001"
        );
        assert_eq!(
            masked("PG_URI", "postgres://u:p@h1,h2/db"),
            "postgres://u:***@h1,h2/db"
        );
        assert_eq!(
            masked("PG_READ_URI", "postgresql://u:p@r1:5432,r2:5432/db"),
            "postgresql://u:***@r1:5432,r2:5432/db"
        );
    }

    /// Issue 28: `check-config` showed these.
    #[test]
    fn passwords_with_unencoded_delimiters_and_secret_query_parameters_are_masked() {
        assert_eq!(
            mask_uri("redis://:s3cr/et-rest-of-it@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            mask_uri("redis://u:a?b#c/d@cache:6379/0"),
            "redis://u:***@cache:6379/0"
        );
        assert_eq!(
            mask_uri("mongodb://u:p%40ss@m:27017/db?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:FwoGZXIvYXdz"),
            "mongodb://u:***@m:27017/db?authMechanism=MONGODB-AWS&authMechanismProperties=***"
        );
        assert_eq!(
            mask_uri("mongodb://m/db?authSource=admin&tlsCertificateKeyFilePassword=x&token=t&client_secret=s&apiKey=k"),
            "mongodb://m/db?authSource=admin&tlsCertificateKeyFilePassword=***&token=***&client_secret=***&apiKey=***"
        );
        assert_eq!(
            mask_uri("postgres://a:b@h1:5432,h2:5432/db?target_session_attrs=read-write"),
            "postgres://a:***@h1:5432,h2:5432/db?target_session_attrs=read-write"
        );
    }

    #[test]
    fn secret_keys_are_masked_whole() {
        assert_eq!(masked("MFA_KEY", "ab".repeat(32).as_str()), "***");
        assert_eq!(masked("MFA_KEY_PREVIOUS", "ab".repeat(32).as_str()), "***");
        assert_eq!(masked("REDIS_KEY_PREFIX", "p:"), "p:");
        assert_eq!(masked("BCRYPT_COST", "12"), "12");
    }
}
