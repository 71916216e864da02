//! Configuration: an ini file (the seed's `config.ini` keeps working) plus
//! `PROFITEER_<SECTION>__<KEY>` environment overrides, validated once into
//! [`Config`]. Every rejection names the section, the key and what was expected,
//! so a bad deploy stops at start-up instead of failing on the first request.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
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
    pub thrift: ThriftConfig,
    pub retention: RetentionConfig,
    /// role -> permission patterns (`*`, `post:*`, `user:read`).
    pub roles: BTreeMap<String, Vec<String>>,
    /// Callers allowed to use the service; empty means no caller key is asked.
    pub clients: Vec<ClientKey>,
    pub webhooks: WebhookConfig,
    /// Passkeys' relying party (`[WEBAUTHN]`); off while unset.
    pub webauthn: WebauthnConfig,
    /// Things accepted but worth telling the operator (ignored seed keys).
    pub warnings: Vec<String>,
    /// Every value in effect, for `profiteer check-config`.
    pub effective: Effective,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// SIGTERM to closing the listener: `/readyz` 503, requests still served.
    pub drain: Duration,
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub queue_depth: usize,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    /// All request bodies held at once at most this; beyond it, 503.
    pub max_inflight_body_bytes: usize,
    /// An answer must be written within this, else the connection closes.
    pub write_timeout: Duration,
    pub max_batch: usize,
    /// An answer never passes this: a call whose answer would is -32003.
    pub max_answer_bytes: usize,
    /// Open connections beyond this are closed at accept.
    pub max_connections: usize,
    /// Request line and headers must arrive within this (else 408).
    pub header_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub keepalive: Duration,
    pub access_log: bool,
}

#[derive(Debug, Clone)]
pub struct PgConfig {
    pub uri: String,
    /// Streaming replicas that carry the read-only work, if any.
    pub read_uri: Option<String>,
    pub read_pool_size: u32,
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
    /// Prepended to every key, so several
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
    /// Entries of each in-process login-limit table (Redis unreachable).
    pub local_limiter_entries: usize,
    /// The longest a session lives from its login, however often refreshed.
    pub session_max_s: i64,
    pub password_min_score: u8,
    pub hash_workers: usize,
    /// `None`: sized at start-up from the measured hash time and the deadline.
    pub hash_queue_depth: Option<usize>,
    /// Encrypts TOTP secrets at rest; required once any account has TOTP.
    pub mfa_key: Option<MfaKey>,
    /// A key being rotated out: still read, re-encrypted under `mfa_key`
    /// at start-up.
    pub mfa_key_previous: Option<MfaKey>,
    /// Roles whose permissions only a session with a second factor gets.
    pub mfa_required_roles: Vec<String>,
    /// The issuer authenticator apps show beside the account name.
    pub mfa_issuer: String,
    /// How long a `pev_` email verification token lives.
    pub verify_ttl_s: i64,
    /// Login of an account whose email is not verified answers -32014.
    pub require_verified_email: bool,
    /// How long a released username is held from others.
    pub username_hold_days: i64,
}

/// A 256-bit key from config. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaKey(pub [u8; 32]);

impl fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaKey(***)")
    }
}

/// The Python service's Thrift `UserService`, for callers not yet moved to
/// JSON-RPC (`[THRIFT]`).
#[derive(Debug, Clone)]
pub struct ThriftConfig {
    /// `None`: not served. 0 picks a free port.
    pub port: Option<u16>,
    /// The address it listens on (`[THRIFT] HOST`, default 127.0.0.1):
    /// not `[SERVER] HOST`, since Thrift callers present no caller key.
    pub host: String,
    /// Peers that may connect (`[THRIFT] ALLOW`, CIDRs; default loopback);
    /// others are closed at once.
    pub allow: Vec<ipnet::IpNet>,
    /// Open Thrift connections at most; each holds one reader thread.
    pub max_connections: usize,
    /// A connection quiet this long between calls is closed. Long, because
    /// thriftpy2's client does not reconnect by itself.
    pub idle: Duration,
}

/// `[RETENTION]`: how long dead rows are kept before the retention job
/// deletes them.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Expired or revoked sessions and tokens, spent or expired reset tokens.
    pub sessions: Duration,
    /// Login events (a MongoDB TTL index on `at`).
    pub login_events: Duration,
    /// The account event log (`events.read`, webhooks).
    pub events: Duration,
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
const KEYED_SECTIONS: &[&str] = &[
    "ENV",
    "SERVER",
    "PG",
    "MONGO",
    "REDIS",
    "AUTH",
    "THRIFT",
    "WEBAUTHN",
    "RETENTION",
    "GEVENT",
];
/// Sections whose keys are free names chosen by the operator.
const NAMED_SECTIONS: &[&str] = &["ROLES", "CLIENTS", "WEBHOOKS"];

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

mod effective;
mod validate;
pub mod webauthn;
pub mod webhooks;

pub use effective::{mask_uri, Effective};
use validate::validate;
pub use webauthn::WebauthnConfig;
pub use webhooks::WebhookConfig;

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
        assert_eq!(c.server.max_answer_bytes, 16 << 20);
        assert_eq!(c.server.max_connections, 4096);
        assert_eq!(c.server.header_timeout, Duration::from_millis(5000));
        assert_eq!(c.server.keepalive, Duration::from_secs(30));
        assert_eq!(c.auth.bcrypt_cost, 12);
        assert_eq!(c.auth.password_min_score, 2);
    }

    #[test]
    fn a_redis_cluster_is_several_redis_uris_and_nothing_else() {
        let cluster = "redis://:pw@127.0.0.1:7000, redis://127.0.0.1:7001,rediss://h:7002";
        let text = MINIMAL.replace("redis://127.0.0.1:6379/0", cluster);
        assert_eq!(load(&text, &[]).unwrap().redis.uri, cluster);
        let text = MINIMAL.replace("redis://127.0.0.1:6379/0", "redis://a:1,unix:///tmp/r.sock");
        let err = load(&text, &[]).unwrap_err();
        assert!(err.0.contains("[REDIS] REDIS_URI"), "{err}");
        assert!(!err.0.contains("r.sock"), "{err}");
    }

    #[test]
    fn gevent_pool_size_is_read_as_workers_and_pg_max_over_only_warns() {
        let text = format!("{MINIMAL}[GEVENT]\nGEVENT_POOL_SIZE = 7\n[PG]\nPG_MAX_OVER = 3\n");
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.server.workers, 7);
        let seed: Vec<_> = c.warnings.iter().filter(|w| w.contains("[PG]")).collect();
        assert_eq!(seed.len(), 1);
        assert!(seed[0].contains("PG_MAX_OVER"));
    }

    #[test]
    fn replicas_are_optional_and_their_pool_defaults_to_the_primarys() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.pg.read_uri, None);
        let text = format!(
            "{MINIMAL}[PG]\nPG_POOL_SIZE = 9\n\
             PG_URI = postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write\n\
             PG_READ_URI = postgresql://u@h2:5433,h3/db?load_balance_hosts=random\n"
        );
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.pg.read_pool_size, 9);
        assert!(c.pg.read_uri.as_deref().unwrap().contains("h3"));
        for (bad, key) in [
            ("PG_READ_URI = mysql://h/db", "[PG] PG_READ_URI"),
            (
                "PG_READ_URI = postgresql://h/db?target_session_attrs=nope",
                "[PG] PG_READ_URI",
            ),
            ("PG_READ_POOL_SIZE = 0", "[PG] PG_READ_POOL_SIZE"),
            ("PG_URI = postgresql://h:notaport/db", "[PG] PG_URI"),
        ] {
            let err = load(&format!("{MINIMAL}[PG]\n{bad}\n"), &[]).unwrap_err();
            assert!(err.0.starts_with(key), "{bad}: {}", err.0);
        }
    }

    #[test]
    fn the_thrift_port_is_off_unless_set_and_checked_when_set() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.thrift.port, None);
        let c = load(&format!("{MINIMAL}[THRIFT]\nPORT = 6000\n"), &[]).unwrap();
        assert_eq!(c.thrift.port, Some(6000));
        assert_eq!(c.thrift.max_connections, 256);
        let err = load(&format!("{MINIMAL}[THRIFT]\nPORT = 70000\n"), &[]).unwrap_err();
        assert!(err.0.contains("[THRIFT] PORT = \"70000\""), "{err}");
    }

    /// The attacker's review: the Thrift port bound to `[SERVER] HOST` and
    /// let anyone connect. It has its own HOST (loopback by default) and
    /// ALLOW (loopback by default, required in Product).
    #[test]
    fn the_thrift_port_listens_on_loopback_for_loopback_unless_told_and_product_names_allow() {
        let c = load(
            &format!("{MINIMAL}[SERVER]\nHOST = 0.0.0.0\n[THRIFT]\nPORT = 6000\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.thrift.host, "127.0.0.1");
        let allowed = |c: &Config, ip: &str| {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            c.thrift.allow.iter().any(|n| n.contains(&ip))
        };
        assert!(allowed(&c, "127.0.0.1") && allowed(&c, "::1"));
        assert!(!allowed(&c, "10.1.2.3"));
        let c = load(
            &format!("{MINIMAL}[THRIFT]\nPORT = 6000\nHOST = 10.0.0.5\nALLOW = 10.0.0.0/8, 192.168.1.7\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.thrift.host, "10.0.0.5");
        assert!(allowed(&c, "10.200.0.1") && allowed(&c, "192.168.1.7"));
        assert!(!allowed(&c, "127.0.0.1") && !allowed(&c, "192.168.1.8"));
        let err = load(
            &format!("{MINIMAL}[THRIFT]\nPORT = 6000\nALLOW = 10.0.0.0/33\n"),
            &[],
        )
        .unwrap_err();
        assert!(err.0.contains("[THRIFT] ALLOW"), "{err}");
        let product = format!(
            "{MINIMAL}[ENV]\nCURRENT_ENV = Product\n[CLIENTS]\nweb = {} auth.login,@ip\n\
             [THRIFT]\nPORT = 6000\n",
            "ab".repeat(32)
        );
        let err = load(&product, &[]).unwrap_err();
        assert!(err.0.contains("[THRIFT] ALLOW is required"), "{err}");
        let c = load(&format!("{product}ALLOW = 10.0.0.0/8\n"), &[]).unwrap();
        assert_eq!(c.clients[0].methods, vec!["auth.login", "@ip"]);
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
    fn the_edge_limits_are_read_and_a_zero_is_refused_by_name() {
        let text = format!(
            "{MINIMAL}[SERVER]\nMAX_CONNECTIONS = 20\nHEADER_TIMEOUT_MS = 800\nKEEPALIVE_S = 2\n"
        );
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.server.max_connections, 20);
        assert_eq!(c.server.header_timeout, Duration::from_millis(800));
        assert_eq!(c.server.keepalive, Duration::from_secs(2));
        for key in ["MAX_CONNECTIONS", "HEADER_TIMEOUT_MS", "KEEPALIVE_S"] {
            let err = load(&format!("{MINIMAL}[SERVER]\n{key} = 0\n"), &[]).unwrap_err();
            assert!(err.0.contains(&format!("[SERVER] {key} = 0")), "{err}");
        }
    }

    #[test]
    fn the_body_budget_and_write_timeout_are_read_and_a_budget_under_one_body_is_refused() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.server.max_inflight_body_bytes, 256 << 20);
        assert_eq!(c.server.write_timeout, Duration::from_secs(10));
        let text = format!(
            "{MINIMAL}[SERVER]\nMAX_INFLIGHT_BODY_BYTES = 2000000\nWRITE_TIMEOUT_MS = 700\n"
        );
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.server.max_inflight_body_bytes, 2_000_000);
        assert_eq!(c.server.write_timeout, Duration::from_millis(700));
        let text = format!("{MINIMAL}[SERVER]\nMAX_INFLIGHT_BODY_BYTES = 1000\n");
        let err = load(&text, &[]).unwrap_err();
        assert!(err.0.contains("MAX_INFLIGHT_BODY_BYTES"), "{err}");
        assert!(err.0.contains("MAX_BODY_BYTES"), "{err}");
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
    fn mfa_keys_are_64_hex_digits_and_never_printed() {
        let key = "0f".repeat(32);
        let c = load(&format!("{MINIMAL}[AUTH]\nMFA_KEY = {key}\n"), &[]).unwrap();
        assert_eq!(c.auth.mfa_key, Some(MfaKey([0x0f; 32])));
        assert!(!format!("{c:?}").contains(&key[..8]));
        assert!(c.auth.mfa_required_roles.is_empty());
        assert_eq!(c.auth.mfa_issuer, "profiteer");
        for bad in ["0f", "zz".repeat(32).as_str(), &"0f".repeat(33)] {
            let err = load(&format!("{MINIMAL}[AUTH]\nMFA_KEY = {bad}\n"), &[]).unwrap_err();
            assert!(err.0.contains("[AUTH] MFA_KEY is malformed"), "{err}");
            assert!(!err.0.contains(bad), "the key is echoed: {err}");
        }
        let err = load(&format!("{MINIMAL}[AUTH]\nMFA_KEY_PREVIOUS = {key}\n"), &[]).unwrap_err();
        assert!(err.0.contains("[AUTH] MFA_KEY_PREVIOUS"), "{err}");
    }

    #[test]
    fn mfa_required_roles_must_be_roles_of_the_config() {
        let roles = "[ROLES]\nadmin = *\neditor = post:*\n";
        let c = load(
            &format!("{MINIMAL}{roles}[AUTH]\nMFA_REQUIRED_ROLES = admin, editor\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.auth.mfa_required_roles, vec!["admin", "editor"]);
        let err = load(
            &format!("{MINIMAL}{roles}[AUTH]\nMFA_REQUIRED_ROLES = admni\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            err.0.contains("[AUTH] MFA_REQUIRED_ROLES") && err.0.contains("admni"),
            "{err}"
        );
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

    #[test]
    fn product_without_clients_is_refused_naming_clients_and_others_warn() {
        let product = format!("{MINIMAL}[ENV]\nCURRENT_ENV = Product\n");
        let err = load(&product, &[]).unwrap_err();
        assert!(err.0.starts_with("[CLIENTS]"), "{err}");
        let with_clients = format!("{product}[CLIENTS]\ngateway = {} auth.*\n", "ab".repeat(32));
        assert!(load(&with_clients, &[]).unwrap().warnings.is_empty());
        for env in ["Local", "Test"] {
            let c = load(&format!("{MINIMAL}[ENV]\nCURRENT_ENV = {env}\n"), &[]).unwrap();
            assert!(c.warnings.iter().any(|w| w.starts_with("[CLIENTS]")));
        }
    }

    #[test]
    fn session_max_s_defaults_to_90_days_and_bounds_refresh_ttl() {
        assert_eq!(load(MINIMAL, &[]).unwrap().auth.session_max_s, 7_776_000);
        let err = load(&format!("{MINIMAL}[AUTH]\nSESSION_MAX_S = 3600\n"), &[]).unwrap_err();
        assert!(err.0.contains("[AUTH] SESSION_MAX_S"), "{err}");
        let err = load(&format!("{MINIMAL}[AUTH]\nSESSION_MAX_S = 0\n"), &[]).unwrap_err();
        assert!(err.0.contains("[AUTH] SESSION_MAX_S = 0"), "{err}");
    }

    #[test]
    fn the_example_config_is_valid_and_names_every_key() {
        let text = include_str!("../../config.ini.example");
        let c = load(text, &[]).unwrap();
        assert_eq!(c.auth.bcrypt_cost, 12);
        let keys = [
            "CURRENT_ENV",
            "HOST",
            "PORT",
            "WORKERS",
            "QUEUE_DEPTH",
            "REQUEST_TIMEOUT_MS",
            "MAX_BODY_BYTES",
            "MAX_INFLIGHT_BODY_BYTES",
            "WRITE_TIMEOUT_MS",
            "MAX_BATCH",
            "MAX_ANSWER_BYTES",
            "MAX_CONNECTIONS",
            "HEADER_TIMEOUT_MS",
            "KEEPALIVE_S",
            "ACCESS_LOG",
            "DRAIN_S",
            "SESSIONS_DAYS",
            "LOGIN_EVENTS_DAYS",
            "EVENTS_DAYS",
            "PG_URI",
            "PG_READ_URI",
            "PG_READ_POOL_SIZE",
            "PG_POOL_SIZE",
            "PG_POOL_TIMEOUT",
            "PG_POOL_RECYCLE",
            "PG_MAX_OVER",
            "MONGO_MAIN_URI",
            "MONGO_POOL_SIZE",
            "MONGO_TIMEOUT",
            "MONGO_CONNECT_TIMEOUT",
            "REDIS_URI",
            "REDIS_POOL_SIZE",
            "REDIS_TIMEOUT",
            "REDIS_CONNECT_TIMEOUT",
            "REDIS_KEY_PREFIX",
            "BCRYPT_COST",
            "ACCESS_TTL_S",
            "REFRESH_TTL_S",
            "RESET_TTL_S",
            "LOGIN_MAX_FAILS",
            "LOGIN_WINDOW_S",
            "LOCAL_LIMITER_ENTRIES",
            "SESSION_MAX_S",
            "PASSWORD_MIN_SCORE",
            "HASH_WORKERS",
            "HASH_QUEUE_DEPTH",
            "MFA_KEY",
            "MFA_KEY_PREVIOUS",
            "MFA_REQUIRED_ROLES",
            "MFA_ISSUER",
            "VERIFY_TTL_S",
            "REQUIRE_VERIFIED_EMAIL",
            "USERNAME_HOLD_DAYS",
            "GEVENT_POOL_SIZE",
            "[THRIFT]",
            "MAX_CONNECTIONS",
            "IDLE_S",
            "[ROLES]",
            "[CLIENTS]",
        ];
        for key in keys {
            assert!(
                text.contains(key),
                "config.ini.example does not mention {key}"
            );
        }
    }
}
