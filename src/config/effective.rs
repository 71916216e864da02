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

/// `scheme://user:password@host/path?password=x` with both passwords as `***`.
pub fn mask_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.to_ascii_lowercase().contains("pass") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn masked(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        "***".to_string()
    } else if key.ends_with("_URI") {
        mask_uri(value)
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
    fn secret_keys_are_masked_whole() {
        assert_eq!(masked("MFA_KEY", "ab".repeat(32).as_str()), "***");
        assert_eq!(masked("MFA_KEY_PREVIOUS", "ab".repeat(32).as_str()), "***");
        assert_eq!(masked("REDIS_KEY_PREFIX", "p:"), "p:");
        assert_eq!(masked("BCRYPT_COST", "12"), "12");
    }
}
