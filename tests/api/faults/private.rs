//! Private instances of the real services for fault tests: a redis-server,
//! the MongoDB-compatible server and a PostgreSQL cluster, each started by
//! the test on a free port, stopped, stalled and started again at will, and
//! removed when dropped. Nothing here touches the shared services.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, up: bool) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        let open = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
        if open == up {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "port {port} did not become {}",
        if up { "open" } else { "closed" }
    );
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

fn scratch(kind: &str) -> PathBuf {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("profiteer_{kind}_{suffix}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A redis-server of our own, without persistence.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
        };
        r.up();
        r
    }

    /// Starts it again (on the same port) after [`PrivateRedis::down`].
    pub fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_port(self.port, true);
    }

    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_port(self.port, false);
    }

    pub fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs one command (e.g. `CLIENT PAUSE 4000 ALL`).
    pub fn command(&self, args: &[&str]) {
        let mut conn = redis::Client::open(self.uri())
            .unwrap()
            .get_connection()
            .unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = cmd.query(&mut conn).unwrap();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A Redis Cluster of our own: three masters, no replicas, no
/// persistence, a short node timeout; each master stopped and started
/// again at will (same port, same node id and slots from its nodes file).
pub struct PrivateRedisCluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    children: Vec<Option<Child>>,
}

impl PrivateRedisCluster {
    pub fn start() -> PrivateRedisCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut c = PrivateRedisCluster {
            children: ports.iter().map(|_| None).collect(),
            ports,
            dir: scratch("redis_cluster"),
        };
        for i in 0..3 {
            c.up(i);
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "redis-cli --cluster create failed");
        c.wait_ok();
        c
    }

    /// Starts master `i` (again).
    pub fn up(&mut self, i: usize) {
        let port = self.ports[i];
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
            .arg("--cluster-config-file")
            .arg(self.dir.join(format!("nodes-{port}.conf")))
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
        wait_port(port, true);
    }

    /// SIGKILL on master `i`: its slots answer nothing until it is back.
    pub fn down(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_port(self.ports[i], false);
    }

    /// Waits until every master that runs says `cluster_state:ok`.
    pub fn wait_ok(&self) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = (0..3).filter(|i| self.children[*i].is_some()).all(|i| {
                self.node_query::<String>(i, &["CLUSTER", "INFO"])
                    .map(|info| info.contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok {
                return;
            }
            assert!(Instant::now() < until, "the Redis Cluster never became ok");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `REDIS_URI` that names it: every master, comma-separated.
    pub fn uri(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        nodes.join(",")
    }

    fn node_query<T: redis::FromRedisValue>(
        &self,
        i: usize,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}", self.ports[i]))?
            .get_connection_with_timeout(Duration::from_secs(2))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    /// Which master holds `key`'s slot (the others answer MOVED).
    pub fn owner(&self, key: &str) -> usize {
        (0..3)
            .find(|i| {
                self.children[*i].is_some()
                    && self
                        .node_query::<redis::Value>(*i, &["EXISTS", key])
                        .is_ok()
            })
            .unwrap_or_else(|| panic!("no running master holds {key}"))
    }

    /// `GET key` on the master that holds it.
    pub fn get(&self, key: &str) -> Option<String> {
        self.node_query(self.owner(key), &["GET", key]).unwrap()
    }
}

impl Drop for PrivateRedisCluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().filter_map(Option::take) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub const SECANTUS: &str = ".cache/profiteer/secantus-0.5.3-beta.196/bin/secantusd-rs";

/// The MongoDB-compatible server, with its data in a scratch directory.
pub struct PrivateMongo {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateMongo {
    pub fn start() -> PrivateMongo {
        let mut m = PrivateMongo {
            port: free_port(),
            dir: scratch("mongo"),
            child: None,
        };
        m.up();
        m
    }

    pub fn up(&mut self) {
        let bin = PathBuf::from(std::env::var("HOME").unwrap()).join(SECANTUS);
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--storage-path")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_port(self.port, true);
    }

    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "TERM");
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until && c.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_port(self.port, false);
    }

    /// SIGSTOP: connections stay open, nothing answers. Returns once every
    /// thread of the server is stopped: `kill` returns when the signal is
    /// sent, and on a busy machine a running thread may still answer a
    /// query or two before it stops (seen once in a full run).
    pub fn stall(&self) {
        let child = self.child.as_ref().unwrap();
        signal(child, "STOP");
        let tasks = format!("/proc/{}/task", child.id());
        let stopped = || {
            std::fs::read_dir(&tasks).unwrap().all(|t| {
                let stat = std::fs::read_to_string(t.unwrap().path().join("stat"));
                // The state follows the command's closing parenthesis.
                stat.ok()
                    .and_then(|s| {
                        s.rsplit(')')
                            .next()
                            .map(|r| r.trim_start().starts_with('T'))
                    })
                    .unwrap_or(true)
            })
        };
        let until = Instant::now() + Duration::from_secs(10);
        while !stopped() {
            assert!(Instant::now() < until, "the server never stopped");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn resume(&self) {
        signal(self.child.as_ref().unwrap(), "CONT");
    }

    /// The URI of database `name`.
    pub fn uri(&self, name: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PrivateMongo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL cluster of our own (initdb as user `postgres` under the
/// temp dir, which that user can enter), trust authentication.
pub struct PrivatePg {
    pub port: u16,
    dir: PathBuf,
}

fn as_postgres(command: &str) {
    let out = Command::new("su")
        .args(["postgres", "-c", command])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pg_bin(tool: &str) -> String {
    let dir = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join(tool).exists())
                .max()
        });
    dir.map_or(tool.to_string(), |d| d.join(tool).display().to_string())
}

impl PrivatePg {
    pub fn start() -> PrivatePg {
        let dir = scratch("pg");
        Command::new("chown")
            .args(["postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        let data = dir.join("data");
        as_postgres(&format!(
            "{} -D '{}' -A trust -U postgres --no-sync >/dev/null",
            pg_bin("initdb"),
            data.display()
        ));
        let pg = PrivatePg {
            port: free_port(),
            dir,
        };
        pg.up();
        pg
    }

    pub fn up(&self) {
        as_postgres(&format!(
            "{} -D '{}' -l '{}' -w -o '-p {} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null",
            pg_bin("pg_ctl"),
            self.dir.join("data").display(),
            self.dir.join("log").display(),
            self.port
        ));
        wait_port(self.port, true);
    }

    /// `pg_ctl stop -m fast`: every connection is closed.
    pub fn down(&self) {
        as_postgres(&format!(
            "{} -D '{}' -m fast -w stop >/dev/null",
            pg_bin("pg_ctl"),
            self.dir.join("data").display()
        ));
        wait_port(self.port, false);
    }

    /// The base URI (no database), as `PROFITEER_PG_BASE` would give it.
    pub fn base(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// A streaming standby of `primary`: a `pg_basebackup -R` copy (which
    /// writes `standby.signal` and `primary_conninfo`), started on a port of
    /// its own. initdb's defaults already allow it: `wal_level = replica`,
    /// ten WAL senders, and trust for replication connections.
    pub fn standby_of(primary: &PrivatePg) -> PrivatePg {
        let dir = scratch("pg");
        Command::new("chown")
            .args(["postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        as_postgres(&format!(
            "{} -h 127.0.0.1 -p {} -U postgres -D '{}' -R -X stream -c fast --no-sync",
            pg_bin("pg_basebackup"),
            primary.port,
            dir.join("data").display()
        ));
        let pg = PrivatePg {
            port: free_port(),
            dir,
        };
        pg.up();
        pg
    }

    /// `pg_ctl promote`: a standby becomes a primary (and waits for it).
    pub fn promote(&self) {
        as_postgres(&format!(
            "{} -D '{}' -w promote >/dev/null",
            pg_bin("pg_ctl"),
            self.dir.join("data").display()
        ));
    }

    /// A client of database `db` on this server.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&format!("{}/{db}", self.base()), postgres::NoTls).unwrap()
    }

    /// The first column of the first row `sql` answers on database `db`, as
    /// text (`None` for NULL).
    pub fn text(&self, db: &str, sql: &str) -> Option<String> {
        let messages = self.client(db).simple_query(sql).unwrap();
        messages.into_iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })?
    }

    /// Waits until this standby has replayed everything `primary` has
    /// written so far.
    pub fn caught_up_with(&self, primary: &PrivatePg) {
        let target = primary
            .text("postgres", "SELECT pg_current_wal_lsn()")
            .unwrap();
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
        let until = Instant::now() + Duration::from_secs(30);
        while self.text("postgres", &sql).as_deref() != Some("t") {
            assert!(Instant::now() < until, "the standby never caught up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args([
                "postgres",
                "-c",
                &format!(
                    "{} -D '{}' -m immediate -w stop",
                    pg_bin("pg_ctl"),
                    self.dir.join("data").display()
                ),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
