//! `spawn_app`: the real binary on a free port (`-P 0`), with a fresh
//! PostgreSQL database, MongoDB database and Redis key prefix, all named
//! `profiteer_test_<random>` and removed when the [`TestApp`] drops.
//! Base addresses come from `scripts/services.sh` through the environment
//! (`PROFITEER_PG_BASE`, `PROFITEER_REDIS_BASE`, `PROFITEER_MONGO_BASE`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";
/// `[WEBAUTHN]` of every test server: the relying party passkeys are for,
/// and the one origin ceremonies may come from.
pub const RP_ID: &str = "profiteer.test";
pub const ORIGIN: &str = "https://app.profiteer.test";
/// `[AUTH] MFA_KEY` of every test server (TOTP secrets are sealed under it).
pub const MFA_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub fn pg_base() -> String {
    std::env::var("PROFITEER_PG_BASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}
pub fn redis_base() -> String {
    std::env::var("PROFITEER_REDIS_BASE").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
pub fn mongo_base() -> String {
    std::env::var("PROFITEER_MONGO_BASE").unwrap_or_else(|_| "mongodb://127.0.0.1:27117".into())
}
/// The query of a given MongoDB URI (`?replicaSet=...`), kept after the
/// database name (scripts/services.sh takes `PROFITEER_MONGO_URI` apart).
pub fn mongo_query() -> String {
    std::env::var("PROFITEER_MONGO_QUERY").unwrap_or_default()
}
/// The MongoDB URI of database `db`.
pub fn mongo_uri(db: &str) -> String {
    format!("{}/{db}{}", mongo_base(), mongo_query())
}

/// The server binary: cargo's, unless `PROFITEER_BIN` names a copy (several
/// worktrees sharing one target directory overwrite each other's binary).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("PROFITEER_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_profiteer").into())
}

/// How a test wants its server configured.
#[derive(Clone, Default)]
pub struct Options {
    /// Extra ini text, appended after the defaults (later keys win).
    pub ini: String,
    /// Replace the Redis or MongoDB URI (e.g. with a dead port).
    pub redis_uri: Option<String>,
    pub mongo_uri: Option<String>,
    /// Another PostgreSQL server (e.g. a private cluster's base URI).
    pub pg_base: Option<String>,
    /// Extra environment for the server process.
    pub env: Vec<(String, String)>,
    /// Start the server under `ulimit -n` of this many descriptors.
    pub fd_limit: Option<u32>,
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub name: String,
    pub prefix: String,
    /// The PostgreSQL server its database is on.
    pub pg_base: String,
    /// Whether it uses the shared Redis / MongoDB (cleaned up on drop).
    shared_redis: bool,
    shared_mongo: bool,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// Set when the server's stderr has ended.
    log_closed: Arc<AtomicBool>,
}

/// A parsed HTTP answer.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn random_name() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("profiteer_test_{suffix}")
}

/// The ini every test server starts from: fast bcrypt, a roomy hashing
/// queue, roles to grant, generous deadlines for slow machines.
pub fn base_ini(name: &str, opts: &Options) -> String {
    let redis = opts
        .redis_uri
        .clone()
        .unwrap_or_else(|| format!("{}/0", redis_base()));
    let mongo = opts.mongo_uri.clone().unwrap_or_else(|| mongo_uri(name));
    format!(
        "[ENV]\nCURRENT_ENV = Test\n\
         [SERVER]\nREQUEST_TIMEOUT_MS = 10000\nDRAIN_S = 0\n\
         [PG]\nPG_URI = {pg}/{name}\nPG_POOL_SIZE = 8\n\
         [MONGO]\nMONGO_MAIN_URI = {mongo}\nMONGO_TIMEOUT = 1500\nMONGO_CONNECT_TIMEOUT = 1500\n\
         [REDIS]\nREDIS_URI = {redis}\nREDIS_KEY_PREFIX = {name}:\n\
         [AUTH]\nBCRYPT_COST = 4\nHASH_QUEUE_DEPTH = 256\nMFA_KEY = {mfa_key}\n\
         [WEBAUTHN]\nRP_ID = {rp_id}\nRP_NAME = profiteer tests\nORIGINS = {origin}\n\
         [ROLES]\nadmin = *\neditor = post:*,user:read\nviewer = user:read\n\
         {extra}",
        pg = opts.pg_base.clone().unwrap_or_else(pg_base),
        mfa_key = MFA_KEY,
        rp_id = RP_ID,
        origin = ORIGIN,
        extra = opts.ini,
    )
}

pub fn create_database_on(base: &str, name: &str) {
    let mut admin = postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls)
        .expect("PostgreSQL must be running: run scripts/test.sh");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
}

pub fn spawn_app() -> TestApp {
    spawn_with(Options::default())
}

/// A fresh database and a config file naming it, nothing started: the
/// name and the config's path.
pub fn prepare(opts: &Options) -> (String, std::path::PathBuf) {
    let name = random_name();
    create_database_on(&opts.pg_base.clone().unwrap_or_else(pg_base), &name);
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.ini");
    std::fs::write(&config, base_ini(&name, opts)).unwrap();
    (name, config)
}

pub fn spawn_with(opts: Options) -> TestApp {
    let (name, config) = prepare(&opts);
    let mut app = match opts.fd_limit {
        None => start(&config, &opts.env),
        Some(limit) => {
            // The shell sets the limit, then becomes the server (same pid).
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(binary());
            launch(sh, &config, &opts.env)
        }
    };
    app.name = name.clone();
    app.prefix = format!("{name}:");
    app.pg_base = opts.pg_base.clone().unwrap_or_else(pg_base);
    app.shared_redis = opts.redis_uri.is_none();
    app.shared_mongo = opts.mongo_uri.is_none();
    app
}

/// Starts the binary with `config`; waits for its "listening on" line.
pub fn start(config: &std::path::Path, env: &[(String, String)]) -> TestApp {
    launch(Command::new(binary()), config, env)
}

fn launch(mut command: Command, config: &std::path::Path, env: &[(String, String)]) -> TestApp {
    let mut child = command
        .args(["-H", "127.0.0.1", "-P", "0", "-c"])
        .arg(config)
        .envs(env.iter().cloned())
        .env("PROFITEER_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    let log_closed = Arc::new(AtomicBool::new(false));
    let closed = log_closed.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
        closed.store(true, Ordering::Release);
    });
    let addr = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => addr.parse().unwrap(),
        Err(_) => {
            let _ = child.kill();
            panic!("server did not start:\n{}", log.lock().unwrap());
        }
    };
    TestApp {
        addr,
        name: String::new(),
        prefix: String::new(),
        pg_base: pg_base(),
        shared_redis: true,
        shared_mongo: true,
        child: Some(child),
        log,
        log_closed,
    }
}

/// Runs the binary to completion (for start-up failures): exit code, stderr.
pub fn run_to_exit(config_text: &str) -> (Option<i32>, String) {
    let path = std::env::temp_dir().join(format!("{}.ini", random_name()));
    std::fs::write(&path, config_text).unwrap();
    let out = Command::new(binary())
        .args(["-P", "0", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a run of the binary to completion gave.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with `stdin` written to it, to completion.
pub fn run_with_stdin(command: &mut Command, stdin: &[u8]) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs the binary with `args` and `stdin`, to completion.
pub fn run_cli(args: &[&str], stdin: &str) -> Run {
    let out = run_with_stdin(
        Command::new(binary())
            .args(args)
            .env_remove("PROFITEER_CONFIG_PATH"),
        stdin.as_bytes(),
    );
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One HTTP/1.1 exchange on a fresh connection.
pub fn http(addr: SocketAddr, head: &str, body: &[u8]) -> Http {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

/// Reads one response: up to the end of its Content-Length body (not to
/// EOF: the server may keep the connection open), or to EOF without one.
pub fn read_response(s: &mut TcpStream) -> Http {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| raw.len() >= split + 4 + len) {
                break;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Http {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        // tiny_http sends bodies of 32 KiB and more chunked.
        body = dechunk(&body);
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Http {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&raw[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

impl TestApp {
    pub fn post_with(&self, body: &str, extra_headers: &str) -> Http {
        let head = format!(
            "POST /rpc HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
            body.len()
        );
        http(self.addr, &head, body.as_bytes())
    }

    pub fn post(&self, body: &str) -> Http {
        self.post_with(body, "")
    }

    /// The value of an unlabelled metric on `/metrics` (panics if absent).
    pub fn metric(&self, name: &str) -> f64 {
        self.get("/metrics")
            .text()
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name} "))
                    .map(|v| v.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    pub fn get(&self, path: &str) -> Http {
        http(
            self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
            b"",
        )
    }

    /// The whole JSON-RPC response object of one call.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        let answer = self.post(&body.to_string());
        assert_eq!(answer.status, 200, "{method}: {}", answer.text());
        answer.json()
    }

    /// The result of a call that must succeed.
    pub fn ok(&self, method: &str, params: Value) -> Value {
        let r = self.rpc(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// The error object of a call that must fail with `code`.
    pub fn err(&self, method: &str, params: Value, code: i64) -> Value {
        let r = self.rpc(method, params);
        assert_eq!(
            r["error"]["code"], code,
            "{method}: expected {code}, got {r}"
        );
        r["error"].clone()
    }

    pub fn register(&self, username: &str) -> i64 {
        self.ok(
            "auth.register",
            json!({"username": username, "password": PASSWORD}),
        )["user_id"]
            .as_i64()
            .unwrap()
    }

    /// Registers and logs in; returns (user_id, login result).
    pub fn register_and_login(&self, username: &str) -> (i64, Value) {
        let id = self.register(username);
        let tokens = self.ok(
            "auth.login",
            json!({"username": username, "password": PASSWORD}),
        );
        (id, tokens)
    }

    pub fn pg(&self) -> postgres::Client {
        postgres::Client::connect(&format!("{}/{}", self.pg_base, self.name), postgres::NoTls)
            .unwrap()
    }

    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("{}/0", redis_base()))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn mongo(&self) -> mongodb::sync::Database {
        mongodb::sync::Client::with_uri_str(mongo_uri(""))
            .unwrap()
            .database(&self.name)
    }

    /// Removes this app's Redis keys (as a flush would, without touching
    /// other tests' keys).
    pub fn flush_redis(&self) {
        let mut r = self.redis();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut r)
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(keys).query(&mut r).unwrap();
        }
    }

    /// Another instance of the same service: same config file, same
    /// databases (not removed when it drops: this one owns them).
    pub fn another(&self) -> TestApp {
        let mut other = start(
            &std::env::temp_dir().join(&self.name).join("config.ini"),
            &[],
        );
        other.pg_base = self.pg_base.clone();
        other
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// How many threads the server's process runs now.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Everything the server logged before this call. The server writes
    /// its log from a queue, in order, a few milliseconds late: so this asks
    /// `/healthz` and waits for that request's access line, after which
    /// every earlier line is in. A server that no longer answers: what it
    /// wrote until its stderr ended (or a second passed).
    pub fn logs(&self) -> String {
        let marker = self.child.as_ref().and_then(|_| {
            let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .ok()?;
            let rid = read_response(&mut s).header("X-Request-Id")?.to_string();
            Some(format!("rid={rid} "))
        });
        let until = Instant::now() + Duration::from_secs(if marker.is_some() { 10 } else { 1 });
        loop {
            {
                let log = self.log.lock().unwrap();
                let done = match &marker {
                    Some(needle) => log.contains(needle.as_str()),
                    None => self.log_closed.load(Ordering::Acquire),
                };
                if done || Instant::now() >= until {
                    return log.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its log as it grows, for a thread that must wait for a line while
    /// the `TestApp` is busy elsewhere (stopping, say).
    pub fn log_handle(&self) -> Arc<Mutex<String>> {
        self.log.clone()
    }

    /// Polls `check` until it holds or `within` passes.
    pub fn eventually(&self, within: Duration, mut check: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        check()
    }

    /// SIGKILL, as a crash would: no drain, nothing flushed. The databases
    /// stay (they go when this drops).
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns at once (see [`TestApp::stop`] to wait).
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
    }

    /// SIGTERM, then waits: the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
        if self.name.is_empty() {
            return;
        }
        if self.shared_redis {
            self.flush_redis();
        }
        if self.shared_mongo {
            let _ = self.mongo().drop().run();
        }
        remove_database_on(&self.pg_base, &self.name);
    }
}

/// Drops the PostgreSQL database and the config directory of `name`.
pub fn remove_database(name: &str) {
    remove_database_on(&pg_base(), name)
}

pub fn remove_database_on(base: &str, name: &str) {
    if let Ok(mut admin) = postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls) {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(name));
}
