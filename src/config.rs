//! Configuration: an ini file (the seed's `config.ini` keeps working) plus
//! `PROFITEER_<SECTION>__<KEY>` environment overrides, validated once into
//! [`Config`]. Every rejection names the section, the key and what was expected,
//! so a bad deploy stops at start-up instead of failing on the first request.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// A validated configuration. Nothing downstream re-checks these values.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: String,
    pub server: ServerConfig,
    pub pg: PgConfig,
    pub mongo: MongoConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    /// role -> permission patterns (`*`, `post:*`, `user:read`).
    pub roles: BTreeMap<String, Vec<String>>,
    /// Callers allowed to use the service; empty means no caller key is asked.
    pub clients: Vec<ClientKey>,
    /// Things accepted but worth telling the operator (ignored seed keys).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub queue_depth: usize,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub access_log: bool,
}

#[derive(Debug, Clone)]
pub struct PgConfig {
    pub uri: String,
    pub pool_size: u32,
    pub pool_timeout: Duration,
    pub pool_recycle: Duration,
}

#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub uri: String,
    pub pool_size: u32,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub uri: String,
    pub pool_size: u32,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Prepended to every key and to the invalidation channel, so several
    /// deployments (or test runs) can share one Redis.
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub bcrypt_cost: u32,
    pub access_ttl_s: i64,
    pub refresh_ttl_s: i64,
    pub reset_ttl_s: i64,
    pub login_max_fails: u32,
    pub login_window_s: u64,
    pub password_min_score: u8,
    pub hash_workers: usize,
    /// `None`: sized at start-up from the measured hash time and the deadline.
    pub hash_queue_depth: Option<usize>,
}

/// One `[CLIENTS]` entry: a calling service, the SHA-256 of its key, and the
/// method patterns it may call.
#[derive(Clone)]
pub struct ClientKey {
    pub name: String,
    pub key_sha256: [u8; 32],
    pub methods: Vec<String>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("key_sha256", &"***")
            .field("methods", &self.methods)
            .finish()
    }
}

/// Why start-up was refused. The message always names the section and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

const ENV_PREFIX: &str = "PROFITEER_";

/// Sections whose keys are fixed names (upper case in the file).
const KEYED_SECTIONS: &[&str] = &["ENV", "SERVER", "PG", "MONGO", "REDIS", "AUTH", "GEVENT"];
/// Sections whose keys are free names chosen by the operator.
const NAMED_SECTIONS: &[&str] = &["ROLES", "CLIENTS"];

/// section -> key -> raw value, before validation.
type Raw = BTreeMap<String, BTreeMap<String, String>>;

impl Config {
    /// Reads `path`, applies the process environment's overrides, validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        Config::from_sources(&text, std::env::vars())
    }

    /// Builds a config from ini text and `(name, value)` environment pairs.
    pub fn from_sources(
        ini_text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut raw = parse_ini(ini_text)?;
        apply_env(&mut raw, env)?;
        validate(raw)
    }
}

fn section_name(name: &str) -> Result<String, ConfigError> {
    let upper = name.trim().to_ascii_uppercase();
    if KEYED_SECTIONS.contains(&upper.as_str()) || NAMED_SECTIONS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(ConfigError(format!(
            "unknown section [{name}]: expected one of {}",
            [KEYED_SECTIONS, NAMED_SECTIONS].concat().join(", ")
        )))
    }
}

fn key_name(section: &str, key: &str) -> String {
    if NAMED_SECTIONS.contains(&section) {
        key.trim().to_ascii_lowercase()
    } else {
        key.trim().to_ascii_uppercase()
    }
}

fn parse_ini(text: &str) -> Result<Raw, ConfigError> {
    let ini = ini::Ini::load_from_str(text)
        .map_err(|e| ConfigError(format!("config file is not valid ini: {e}")))?;
    let mut raw = Raw::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else {
            if let Some((key, _)) = props.iter().next() {
                return Err(ConfigError(format!(
                    "key {key} stands before any [SECTION]: move it under its section"
                )));
            }
            continue;
        };
        let section = section_name(section)?;
        let entries = raw.entry(section.clone()).or_default();
        for (key, value) in props.iter() {
            entries.insert(key_name(&section, key), value.trim().to_string());
        }
    }
    Ok(raw)
}

fn apply_env(
    raw: &mut Raw,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue; // e.g. PROFITEER_CONFIG_PATH
        };
        let section = section_name(section)
            .map_err(|e| ConfigError(format!("environment variable {name}: {e}")))?;
        let key = key_name(&section, key);
        raw.entry(section).or_default().insert(key, value);
    }
    Ok(())
}

/// Takes keys out of the raw map as they are read, so whatever is left at the
/// end is unknown and refused.
struct Reader {
    raw: Raw,
}

impl Reader {
    fn take(&mut self, section: &str, key: &str) -> Option<String> {
        let value = self.raw.get_mut(section)?.remove(key)?;
        if value.is_empty() {
            None
        } else {
            Some(value)
        }
    }

    fn required(&mut self, section: &str, key: &str, expect: &str) -> Result<String, ConfigError> {
        self.take(section, key)
            .ok_or_else(|| ConfigError(format!("[{section}] {key} is missing: expected {expect}")))
    }

    fn parsed<T: FromStr>(
        &mut self,
        section: &str,
        key: &str,
        default: T,
        expect: &str,
    ) -> Result<T, ConfigError> {
        match self.take(section, key) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|_| {
                ConfigError(format!("[{section}] {key} = {value:?}: expected {expect}"))
            }),
        }
    }

    fn ranged<T: FromStr + PartialOrd + fmt::Display + Copy>(
        &mut self,
        section: &str,
        key: &str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError> {
        let expect = format!("a whole number from {min} to {max}");
        let value = self.parsed(section, key, default, &expect)?;
        if value < min || value > max {
            return Err(ConfigError(format!(
                "[{section}] {key} = {value}: expected {expect}"
            )));
        }
        Ok(value)
    }

    fn section(&mut self, section: &str) -> BTreeMap<String, String> {
        self.raw.remove(section).unwrap_or_default()
    }

    fn finish(self) -> Result<(), ConfigError> {
        for (section, keys) in self.raw {
            if let Some(key) = keys.keys().next() {
                return Err(ConfigError(format!(
                    "[{section}] {key} is not a known key: remove it or check its spelling \
                     (config.ini.example lists every key)"
                )));
            }
        }
        Ok(())
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn uri(r: &mut Reader, section: &str, key: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let expect = format!("a URI starting with {}", schemes.join(" or "));
    let value = r.required(section, key, &expect)?;
    if schemes.iter().any(|s| value.starts_with(s)) {
        Ok(value)
    } else {
        Err(ConfigError(format!(
            "[{section}] {key} does not start with {}: expected {expect}",
            schemes.join(" or ")
        )))
    }
}

fn validate(raw: Raw) -> Result<Config, ConfigError> {
    let mut r = Reader { raw };
    let mut warnings = Vec::new();

    let env = r
        .take("ENV", "CURRENT_ENV")
        .unwrap_or_else(|| "Local".into());
    if !["Local", "Test", "Product"].contains(&env.as_str()) {
        return Err(ConfigError(format!(
            "[ENV] CURRENT_ENV = {env:?}: expected Local, Test or Product"
        )));
    }

    let pg = PgConfig {
        uri: uri(&mut r, "PG", "PG_URI", &["postgres://", "postgresql://"])?,
        pool_size: r.ranged("PG", "PG_POOL_SIZE", 20, 1, 1000)?,
        pool_timeout: secs(r.ranged("PG", "PG_POOL_TIMEOUT", 3, 1, 3600)?),
        pool_recycle: secs(r.ranged("PG", "PG_POOL_RECYCLE", 3600, 1, 86400 * 7)?),
    };
    if r.take("PG", "PG_MAX_OVER").is_some() {
        warnings.push(
            "[PG] PG_MAX_OVER is ignored: the pool never grows past PG_POOL_SIZE".to_string(),
        );
    }

    let mongo = MongoConfig {
        uri: uri(
            &mut r,
            "MONGO",
            "MONGO_MAIN_URI",
            &["mongodb://", "mongodb+srv://"],
        )?,
        pool_size: r.ranged("MONGO", "MONGO_POOL_SIZE", 20, 1, 1000)?,
        timeout: millis(r.ranged("MONGO", "MONGO_TIMEOUT", 2000, 1, 600_000)?),
        connect_timeout: millis(r.ranged("MONGO", "MONGO_CONNECT_TIMEOUT", 2000, 1, 600_000)?),
    };

    let redis = RedisConfig {
        uri: uri(
            &mut r,
            "REDIS",
            "REDIS_URI",
            &["redis://", "rediss://", "unix://"],
        )?,
        pool_size: r.ranged("REDIS", "REDIS_POOL_SIZE", 20, 1, 1000)?,
        timeout: secs(r.ranged("REDIS", "REDIS_TIMEOUT", 1, 1, 600)?),
        connect_timeout: secs(r.ranged("REDIS", "REDIS_CONNECT_TIMEOUT", 1, 1, 600)?),
        key_prefix: r
            .take("REDIS", "REDIS_KEY_PREFIX")
            .unwrap_or_else(|| "profiteer:".into()),
    };

    let gevent_workers = r.take("GEVENT", "GEVENT_POOL_SIZE");
    let default_workers = match gevent_workers {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| {
                ConfigError(format!(
                    "[GEVENT] GEVENT_POOL_SIZE = {v:?}: expected a whole number from 1 to 1024"
                ))
            })?,
        None => pg.pool_size as usize,
    };
    let host = r
        .take("SERVER", "HOST")
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = r.ranged("SERVER", "PORT", 8080u16, 0, 65535)?;
    let workers = r.ranged("SERVER", "WORKERS", default_workers, 1, 1024)?;
    let server = ServerConfig {
        host,
        port,
        workers,
        queue_depth: r.ranged("SERVER", "QUEUE_DEPTH", workers * 8, 1, 1_000_000)?,
        request_timeout: millis(r.ranged("SERVER", "REQUEST_TIMEOUT_MS", 3000, 1, 600_000)?),
        max_body_bytes: r.ranged("SERVER", "MAX_BODY_BYTES", 1 << 20, 64, 64 << 20)?,
        max_batch: r.ranged("SERVER", "MAX_BATCH", 100, 1, 10_000)?,
        access_log: r.parsed("SERVER", "ACCESS_LOG", true, "true or false")?,
    };

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hash_workers = r.ranged("AUTH", "HASH_WORKERS", cores, 1, 256)?;
    let auth = AuthConfig {
        bcrypt_cost: r.ranged("AUTH", "BCRYPT_COST", 12, 4, 31)?,
        access_ttl_s: r.ranged("AUTH", "ACCESS_TTL_S", 900, 1, 86400 * 365)?,
        refresh_ttl_s: r.ranged("AUTH", "REFRESH_TTL_S", 2_592_000, 1, 86400 * 3650)?,
        reset_ttl_s: r.ranged("AUTH", "RESET_TTL_S", 900, 1, 86400 * 7)?,
        login_max_fails: r.ranged("AUTH", "LOGIN_MAX_FAILS", 5, 1, 1_000_000)?,
        login_window_s: r.ranged("AUTH", "LOGIN_WINDOW_S", 900, 1, 86400 * 30)?,
        password_min_score: r.ranged("AUTH", "PASSWORD_MIN_SCORE", 2, 0, 4)?,
        hash_workers,
        hash_queue_depth: match r.take("AUTH", "HASH_QUEUE_DEPTH") {
            None => None,
            Some(v) => Some(v.parse().ok().filter(|n| *n <= 100_000).ok_or_else(|| {
                ConfigError(format!(
                    "[AUTH] HASH_QUEUE_DEPTH = {v:?}: expected a whole number from 0 to 100000"
                ))
            })?),
        },
    };
    if auth.access_ttl_s > auth.refresh_ttl_s {
        return Err(ConfigError(
            "[AUTH] ACCESS_TTL_S must be <= [AUTH] REFRESH_TTL_S".to_string(),
        ));
    }

    let roles = parse_roles(r.section("ROLES"))?;
    let clients = parse_clients(r.section("CLIENTS"))?;
    r.finish()?;

    Ok(Config {
        env,
        server,
        pg,
        mongo,
        redis,
        auth,
        roles,
        clients,
        warnings,
    })
}

fn valid_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 128
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-*".contains(c))
        && !p[..p.len() - 1].contains('*')
}

fn pattern_list(section: &str, key: &str, list: &str) -> Result<Vec<String>, ConfigError> {
    let patterns: Vec<String> = list
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if patterns.is_empty() {
        return Err(ConfigError(format!(
            "[{section}] {key} lists nothing: expected comma-separated patterns"
        )));
    }
    if let Some(bad) = patterns.iter().find(|p| !valid_pattern(p)) {
        return Err(ConfigError(format!(
            "[{section}] {key}: {bad:?} is not a pattern: expected names of \
             [A-Za-z0-9_.:-], optionally ending in *"
        )));
    }
    Ok(patterns)
}

fn parse_roles(
    section: BTreeMap<String, String>,
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let mut roles = BTreeMap::new();
    for (role, list) in section {
        if crate::domain::Role::parse(&role).is_err() {
            return Err(ConfigError(format!(
                "[ROLES] {role}: expected a role name of 1-64 of [a-z0-9_.:-]"
            )));
        }
        roles.insert(role.clone(), pattern_list("ROLES", &role, &list)?);
    }
    Ok(roles)
}

fn parse_clients(section: BTreeMap<String, String>) -> Result<Vec<ClientKey>, ConfigError> {
    let mut clients = Vec::new();
    for (name, value) in section {
        let (hex, methods) = value
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((&value, ""));
        let key_sha256 = decode_sha256_hex(hex).ok_or_else(|| {
            ConfigError(format!(
                "[CLIENTS] {name}: expected `<sha256 hex of the key> <method patterns>`; \
                 the first word is not 64 hex digits"
            ))
        })?;
        clients.push(ClientKey {
            methods: pattern_list("CLIENTS", &name, methods)?,
            name,
            key_sha256,
        });
    }
    Ok(clients)
}

fn decode_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[PG]\nPG_URI = postgres://root@127.0.0.1/x\n\
        [MONGO]\nMONGO_MAIN_URI = mongodb://127.0.0.1:27017/x\n\
        [REDIS]\nREDIS_URI = redis://127.0.0.1:6379/0\n";

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn a_minimal_config_takes_the_contract_defaults() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.server.host, "127.0.0.1");
        assert_eq!(c.pg.pool_size, 20);
        assert_eq!(c.server.workers, 20);
        assert_eq!(c.server.request_timeout, Duration::from_millis(3000));
        assert_eq!(c.server.max_body_bytes, 1 << 20);
        assert_eq!(c.server.max_batch, 100);
        assert_eq!(c.auth.bcrypt_cost, 12);
        assert_eq!(c.auth.password_min_score, 2);
    }

    #[test]
    fn gevent_pool_size_is_read_as_workers_and_pg_max_over_only_warns() {
        let text = format!("{MINIMAL}[GEVENT]\nGEVENT_POOL_SIZE = 7\n[PG]\nPG_MAX_OVER = 3\n");
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.server.workers, 7);
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("PG_MAX_OVER"));
    }

    #[test]
    fn an_unknown_key_is_refused_by_section_and_name() {
        let err = load(&format!("{MINIMAL}[AUTH]\nBCRYPT_COSTS = 4\n"), &[]).unwrap_err();
        assert!(err.0.contains("[AUTH] BCRYPT_COSTS"), "{err}");
    }

    #[test]
    fn a_missing_required_key_is_named() {
        let err = load("[PG]\nPG_URI = postgres://x/y\n", &[]).unwrap_err();
        assert!(err.0.contains("[MONGO] MONGO_MAIN_URI is missing"), "{err}");
    }

    #[test]
    fn a_bad_value_names_key_and_expectation() {
        let err = load(&format!("{MINIMAL}[AUTH]\nBCRYPT_COST = 40\n"), &[]).unwrap_err();
        assert!(err.0.contains("[AUTH] BCRYPT_COST = 40"), "{err}");
        assert!(err.0.contains("4 to 31"), "{err}");
    }

    #[test]
    fn environment_overrides_win_over_the_file() {
        let c = load(
            MINIMAL,
            &[
                ("PROFITEER_PG__PG_POOL_SIZE", "5"),
                ("PROFITEER_CONFIG_PATH", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.pg.pool_size, 5);
        let err = load(MINIMAL, &[("PROFITEER_NOPE__X", "1")]).unwrap_err();
        assert!(err.0.contains("PROFITEER_NOPE__X"), "{err}");
    }

    #[test]
    fn clients_and_roles_are_parsed() {
        let text = format!(
            "{MINIMAL}[ROLES]\nadmin = *\neditor = post:*, user:read\n\
             [CLIENTS]\ngateway = {} auth.*,user.get\n",
            "ab".repeat(32)
        );
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.roles["editor"], vec!["post:*", "user:read"]);
        assert_eq!(c.clients[0].methods, vec!["auth.*", "user.get"]);
        assert_eq!(c.clients[0].key_sha256, [0xab; 32]);
        let bad = format!("{MINIMAL}[CLIENTS]\ngateway = nothex auth.*\n");
        assert!(load(&bad, &[]).unwrap_err().0.contains("[CLIENTS] gateway"));
    }
}
