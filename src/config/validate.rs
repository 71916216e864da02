//! Validation: raw `section -> key -> text` into a typed [`Config`], taking
//! each key out as it is read so that whatever is left is unknown and refused.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{
    AuthConfig, ClientKey, Config, ConfigError, Effective, MfaKey, MongoConfig, PgConfig, Raw,
    RedisConfig, RetentionConfig, ServerConfig, ThriftConfig,
};

/// Takes keys out of the raw map as they are read, so whatever is left at the
/// end is unknown and refused.
/// It also notes every value in effect (given, or the default it fell back
/// to), which `profiteer check-config` prints.
struct Reader {
    raw: Raw,
    effective: Effective,
}

impl Reader {
    fn take(&mut self, section: &str, key: &str) -> Option<String> {
        let value = self.raw.get_mut(section)?.remove(key)?;
        if value.is_empty() {
            None
        } else {
            self.effective.note(section, key, &value);
            Some(value)
        }
    }

    /// A free-text value, or `default`.
    fn or(&mut self, section: &str, key: &str, default: &str) -> String {
        let value = self.take(section, key).unwrap_or_else(|| default.into());
        self.effective.note(section, key, &value);
        value
    }

    fn required(&mut self, section: &str, key: &str, expect: &str) -> Result<String, ConfigError> {
        self.take(section, key)
            .ok_or_else(|| ConfigError(format!("[{section}] {key} is missing: expected {expect}")))
    }

    fn parsed<T: FromStr + fmt::Display>(
        &mut self,
        section: &str,
        key: &str,
        default: T,
        expect: &str,
    ) -> Result<T, ConfigError> {
        match self.take(section, key) {
            None => {
                self.effective.note(section, key, &default.to_string());
                Ok(default)
            }
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

    fn finish(&mut self) -> Result<(), ConfigError> {
        for (section, keys) in std::mem::take(&mut self.raw) {
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

/// A number of `unit`s, fractions allowed, from `min` to `max`, as a
/// duration of that many units (a unit of a second; callers scale days).
fn fractional(
    r: &mut Reader,
    section: &str,
    key: &str,
    default: f64,
    min: f64,
    max: f64,
    unit: &str,
) -> Result<Duration, ConfigError> {
    let expect = format!("{unit} from {min} to {max} (fractions allowed)");
    let value: f64 = r.parsed(section, key, default, &expect)?;
    if !(min..=max).contains(&value) {
        return Err(ConfigError(format!(
            "[{section}] {key} = {value}: expected {expect}"
        )));
    }
    Ok(Duration::from_secs_f64(value))
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

/// One Redis URI, or several comma-separated `redis://` (`rediss://`)
/// URIs: the seed nodes of a Redis Cluster.
fn redis_uri(r: &mut Reader) -> Result<String, ConfigError> {
    let value = uri(
        r,
        "REDIS",
        "REDIS_URI",
        &["redis://", "rediss://", "unix://"],
    )?;
    if !value.contains(',') {
        return Ok(value);
    }
    let nodes: Vec<&str> = value.split(',').map(str::trim).collect();
    let bad = nodes
        .iter()
        .any(|n| !(n.starts_with("redis://") || n.starts_with("rediss://")));
    if bad {
        return Err(ConfigError(
            "[REDIS] REDIS_URI has a comma: expected a Redis Cluster's nodes as \
             comma-separated URIs, each starting with redis:// or rediss://"
                .into(),
        ));
    }
    Ok(value)
}

pub(super) fn validate(raw: Raw) -> Result<Config, ConfigError> {
    let mut r = Reader {
        raw,
        effective: Effective::default(),
    };
    let mut warnings = Vec::new();

    let env = r.or("ENV", "CURRENT_ENV", "Local");
    if !["Local", "Test", "Product"].contains(&env.as_str()) {
        return Err(ConfigError(format!(
            "[ENV] CURRENT_ENV = {env:?}: expected Local, Test or Product"
        )));
    }

    let pg_uri = uri(&mut r, "PG", "PG_URI", &["postgres://", "postgresql://"])?;
    let read_uri = match r.take("PG", "PG_READ_URI") {
        None => None,
        Some(value) if value.starts_with("postgres://") || value.starts_with("postgresql://") => {
            Some(value)
        }
        Some(_) => {
            return Err(ConfigError(
                "[PG] PG_READ_URI does not start with postgres:// or postgresql://: expected \
                 the URI of one or several streaming replicas"
                    .into(),
            ))
        }
    };
    let pool_size = r.ranged("PG", "PG_POOL_SIZE", 20, 1, 1000)?;
    let pg = PgConfig {
        uri: pg_uri,
        read_pool_size: r.ranged("PG", "PG_READ_POOL_SIZE", pool_size, 1, 1000)?,
        read_uri,
        pool_size,
        pool_timeout: secs(r.ranged("PG", "PG_POOL_TIMEOUT", 3, 1, 3600)?),
        pool_recycle: secs(r.ranged("PG", "PG_POOL_RECYCLE", 3600, 1, 86400 * 7)?),
    };
    for (key, value) in [
        ("PG_URI", Some(&pg.uri)),
        ("PG_READ_URI", pg.read_uri.as_ref()),
    ] {
        if let Some(value) = value {
            value.parse::<postgres::Config>().map_err(|_| {
                ConfigError(format!(
                    "[PG] {key} is not a valid PostgreSQL URI: expected \
                     postgresql://user@host1:port1,host2:port2/db?options"
                ))
            })?;
        }
    }
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
        uri: redis_uri(&mut r)?,
        pool_size: r.ranged("REDIS", "REDIS_POOL_SIZE", 20, 1, 1000)?,
        timeout: secs(r.ranged("REDIS", "REDIS_TIMEOUT", 1, 1, 600)?),
        connect_timeout: secs(r.ranged("REDIS", "REDIS_CONNECT_TIMEOUT", 1, 1, 600)?),
        key_prefix: r.or("REDIS", "REDIS_KEY_PREFIX", "profiteer:"),
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
    let host = r.or("SERVER", "HOST", "127.0.0.1");
    let port = r.ranged("SERVER", "PORT", 8080u16, 0, 65535)?;
    let workers = r.ranged("SERVER", "WORKERS", default_workers, 1, 1024)?;
    let max_body_bytes = r.ranged("SERVER", "MAX_BODY_BYTES", 1 << 20, 64, 64 << 20)?;
    let max_inflight_body_bytes =
        r.ranged("SERVER", "MAX_INFLIGHT_BODY_BYTES", 256 << 20, 64, 1 << 40)?;
    if max_inflight_body_bytes < max_body_bytes {
        return Err(ConfigError(format!(
            "[SERVER] MAX_INFLIGHT_BODY_BYTES = {max_inflight_body_bytes} must be >= \
             MAX_BODY_BYTES = {max_body_bytes}: a largest body would always be refused"
        )));
    }
    let server = ServerConfig {
        host,
        port,
        workers,
        // Deep enough for a thousand connections each with a call in flight
        // (bench/run's -c1000): a fast call waits milliseconds in it, and one
        // that waited past its deadline is answered -32001 without running.
        queue_depth: r.ranged("SERVER", "QUEUE_DEPTH", workers * 64, 1, 1_000_000)?,
        request_timeout: millis(r.ranged("SERVER", "REQUEST_TIMEOUT_MS", 3000, 1, 600_000)?),
        max_body_bytes,
        max_inflight_body_bytes,
        write_timeout: millis(r.ranged("SERVER", "WRITE_TIMEOUT_MS", 10_000, 1, 600_000)?),
        max_batch: r.ranged("SERVER", "MAX_BATCH", 100, 1, 10_000)?,
        max_answer_bytes: r.ranged("SERVER", "MAX_ANSWER_BYTES", 16 << 20, 1024, 1 << 30)?,
        max_connections: r.ranged("SERVER", "MAX_CONNECTIONS", 4096, 1, 1_000_000)?,
        header_timeout: millis(r.ranged("SERVER", "HEADER_TIMEOUT_MS", 5000, 1, 600_000)?),
        keepalive: secs(r.ranged("SERVER", "KEEPALIVE_S", 30, 1, 86_400)?),
        access_log: r.parsed("SERVER", "ACCESS_LOG", true, "true or false")?,
        drain: fractional(&mut r, "SERVER", "DRAIN_S", 5.0, 0.0, 300.0, "seconds")?,
    };
    // Days may be fractional (0.00001 days is under a second): tests use that.
    let retention = RetentionConfig {
        sessions: fractional(
            &mut r,
            "RETENTION",
            "SESSIONS_DAYS",
            7.0,
            0.00001,
            36500.0,
            "days",
        )? * 86_400,
        login_events: fractional(
            &mut r,
            "RETENTION",
            "LOGIN_EVENTS_DAYS",
            90.0,
            0.00001,
            36500.0,
            "days",
        )? * 86_400,
        events: fractional(
            &mut r,
            "RETENTION",
            "EVENTS_DAYS",
            30.0,
            0.00001,
            36500.0,
            "days",
        )? * 86_400,
    };

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hash_workers = r.ranged("AUTH", "HASH_WORKERS", cores, 1, 256)?;
    let mut auth = AuthConfig {
        bcrypt_cost: r.ranged("AUTH", "BCRYPT_COST", 12, 4, 31)?,
        access_ttl_s: r.ranged("AUTH", "ACCESS_TTL_S", 900, 1, 86400 * 365)?,
        refresh_ttl_s: r.ranged("AUTH", "REFRESH_TTL_S", 2_592_000, 1, 86400 * 3650)?,
        reset_ttl_s: r.ranged("AUTH", "RESET_TTL_S", 900, 1, 86400 * 7)?,
        login_max_fails: r.ranged("AUTH", "LOGIN_MAX_FAILS", 5, 1, 1_000_000)?,
        login_window_s: r.ranged("AUTH", "LOGIN_WINDOW_S", 900, 1, 86400 * 30)?,
        local_limiter_entries: r.ranged(
            "AUTH",
            "LOCAL_LIMITER_ENTRIES",
            100_000,
            10,
            10_000_000,
        )?,
        session_max_s: r.ranged("AUTH", "SESSION_MAX_S", 7_776_000, 1, 86400 * 3650)?,
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
        mfa_key: mfa_key(&mut r, "MFA_KEY")?,
        mfa_key_previous: mfa_key(&mut r, "MFA_KEY_PREVIOUS")?,
        mfa_required_roles: Vec::new(),
        mfa_issuer: r
            .take("AUTH", "MFA_ISSUER")
            .unwrap_or_else(|| "profiteer".into()),
        verify_ttl_s: r.ranged("AUTH", "VERIFY_TTL_S", 86_400, 1, 86400 * 30)?,
        require_verified_email: r.parsed(
            "AUTH",
            "REQUIRE_VERIFIED_EMAIL",
            false,
            "true or false",
        )?,
        username_hold_days: r.ranged("AUTH", "USERNAME_HOLD_DAYS", 30, 0, 3650)?,
    };
    if auth.mfa_issuer.contains(':') || auth.mfa_issuer.len() > 64 {
        return Err(ConfigError(format!(
            "[AUTH] MFA_ISSUER = {:?}: expected at most 64 characters without ':'",
            auth.mfa_issuer
        )));
    }
    if auth.mfa_key_previous.is_some() && auth.mfa_key.is_none() {
        return Err(ConfigError(
            "[AUTH] MFA_KEY_PREVIOUS is set without [AUTH] MFA_KEY: set MFA_KEY to the new key"
                .to_string(),
        ));
    }
    if auth.access_ttl_s > auth.refresh_ttl_s {
        return Err(ConfigError(
            "[AUTH] ACCESS_TTL_S must be <= [AUTH] REFRESH_TTL_S".to_string(),
        ));
    }
    if auth.refresh_ttl_s > auth.session_max_s {
        return Err(ConfigError(
            "[AUTH] REFRESH_TTL_S must be <= [AUTH] SESSION_MAX_S (a session's longest life)"
                .to_string(),
        ));
    }

    let thrift = ThriftConfig {
        port: match r.take("THRIFT", "PORT") {
            None => None,
            Some(v) => Some(v.parse::<u16>().map_err(|_| {
                ConfigError(format!(
                    "[THRIFT] PORT = {v:?}: expected a port number from 0 to 65535 \
                     (leave it out to serve no Thrift)"
                ))
            })?),
        },
        host: r
            .take("THRIFT", "HOST")
            .unwrap_or_else(|| "127.0.0.1".to_string()),
        allow: Vec::new(),
        max_connections: r.ranged("THRIFT", "MAX_CONNECTIONS", 256, 1, 65_536)?,
        idle: secs(r.ranged("THRIFT", "IDLE_S", 600, 1, 86_400)?),
    };
    let thrift = ThriftConfig {
        allow: thrift_allow(r.take("THRIFT", "ALLOW"), &env, thrift.port.is_some())?,
        ..thrift
    };

    let roles = parse_roles(r.section("ROLES"))?;
    if let Some(list) = r.take("AUTH", "MFA_REQUIRED_ROLES") {
        auth.mfa_required_roles = mfa_roles(&list, &roles)?;
    }
    let clients = parse_clients(r.section("CLIENTS"))?;
    let webhooks = super::webhooks::parse(
        r.section("WEBHOOKS"),
        &env,
        crate::model::account_events::KINDS,
    )?;
    let webauthn = super::webauthn::parse(
        r.take("WEBAUTHN", "RP_ID"),
        r.take("WEBAUTHN", "RP_NAME"),
        r.take("WEBAUTHN", "ORIGINS"),
    )?;
    r.finish()?;
    if clients.is_empty() {
        if env == "Product" {
            return Err(ConfigError(
                "[CLIENTS] is empty with [ENV] CURRENT_ENV = Product: every method, the admin \
                 ones too, would be open to anyone who reaches the port; list each calling \
                 service as `name = <sha256 hex of its key> <method patterns>`"
                    .to_string(),
            ));
        }
        warnings.push(format!(
            "[CLIENTS] is empty: every method, the admin ones too, is open to anyone who \
             reaches the port (accepted with CURRENT_ENV = {env}, refused with Product)"
        ));
    }

    Ok(Config {
        env,
        server,
        pg,
        mongo,
        redis,
        auth,
        thrift,
        retention,
        roles,
        clients,
        webhooks,
        webauthn,
        warnings,
        effective: r.effective,
    })
}

/// 64 hex digits, or absent. A malformed key is always refused, whether or
/// not any account uses TOTP yet.
fn mfa_key(r: &mut Reader, key: &str) -> Result<Option<MfaKey>, ConfigError> {
    match r.take("AUTH", key) {
        None => Ok(None),
        Some(value) => decode_sha256_hex(&value)
            .map(|k| Some(MfaKey(k)))
            .ok_or_else(|| {
                ConfigError(format!(
                    "[AUTH] {key} is malformed: expected 64 hex digits (32 random bytes, \
                 e.g. `openssl rand -hex 32`)"
                ))
            }),
    }
}

/// A comma list of roles that `[ROLES]` defines (a typo must not silently
/// leave a role without its second-factor requirement).
fn mfa_roles(
    list: &str,
    roles: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let names: Vec<String> = list
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(bad) = names.iter().find(|n| !roles.contains_key(n.as_str())) {
        return Err(ConfigError(format!(
            "[AUTH] MFA_REQUIRED_ROLES: {bad:?} is not a role of [ROLES]: expected a comma \
             list of role names defined there"
        )));
    }
    Ok(names)
}

/// A method pattern, or the pseudo-pattern `@ip` (the client may state
/// the end user's address).
fn valid_pattern(p: &str) -> bool {
    if p == crate::domain::IP_PATTERN {
        return true;
    }
    !p.is_empty()
        && p.len() <= 128
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-*".contains(c))
        && !p[..p.len() - 1].contains('*')
}

/// `[THRIFT] ALLOW`: comma-separated CIDRs or single addresses. Without
/// it, loopback only; in `Product` a served port must name it.
fn thrift_allow(
    list: Option<String>,
    env: &str,
    served: bool,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(list) = list else {
        if served && env == "Product" {
            return Err(ConfigError(
                "[THRIFT] ALLOW is required with [THRIFT] PORT and [ENV] CURRENT_ENV = \
                 Product: Thrift callers present no caller key, so list the addresses \
                 (CIDRs) that may connect"
                    .to_string(),
            ));
        }
        return Ok(LOOPBACK.iter().filter_map(|n| n.parse().ok()).collect());
    };
    let nets = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError(format!(
                        "[THRIFT] ALLOW: {p:?} is not an address or CIDR \
                         (expected e.g. 10.0.0.0/8, 192.168.1.7 or ::1/128)"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if nets.is_empty() {
        return Err(ConfigError(
            "[THRIFT] ALLOW lists nothing: expected comma-separated CIDRs".to_string(),
        ));
    }
    Ok(nets)
}

const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1/128"];

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
