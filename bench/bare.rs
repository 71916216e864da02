//! The floor of the miss paths: the queries an uncached call makes, through
//! the same crates, pools and code (`store::pg` with its per-connection
//! prepared statements, `store::mongo` on the mongodb sync API), from the
//! same number of threads as the service's workers, with no HTTP, JSON-RPC,
//! caches or hand-offs. Prints one `RESULT` line like `bench/lua/common.lua`.
//!
//! - `pair`: what an uncached `user.get` asks: the account query in
//!   PostgreSQL, then the profile find in MongoDB, for one id (each id at
//!   most once, as `bench/lua/user_get.lua` with `BENCH_UNCACHED=1`);
//! - `pg`: what a missed `auth.introspect` asks PostgreSQL: the token lookup,
//!   for well-formed tokens that exist nowhere;
//! - `bcrypt`: the bcrypt bound, what the hashing lane can finish: THREADS
//!   threads (the service's `HASH_WORKERS`) verifying `BENCH_PASSWORD`
//!   against its hash at the config's `BCRYPT_COST`, counted as wrk counts
//!   answers: only the verifications finished inside the SECONDS window,
//!   from an idle start (a login or create flood starts with an idle lane
//!   and loses the same unfinished tail). FIRST and LAST are not used.
//!
//! `cargo run --release --example bare -- CONFIG MODE SECONDS THREADS FIRST LAST`

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use profiteer::domain::{Token, TokenHash, TokenKind};
use profiteer::store::mongo::Mongo;
use profiteer::store::{accounts, pg, sessions};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("bare: {what}: {e}");
    std::process::exit(1)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Pair,
    Pg,
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        fail(
            "usage",
            "bare CONFIG pair|pg|bcrypt SECONDS THREADS FIRST LAST",
        );
    }
    let config = profiteer::Config::load(std::path::Path::new(&a[1]))
        .unwrap_or_else(|e| fail("config", e.0));
    let seconds: u64 = a[3].parse().unwrap_or_else(|e| fail("SECONDS", e));
    let threads: usize = a[4].parse().unwrap_or_else(|e| fail("THREADS", e));
    let mode = match a[2].as_str() {
        "pair" => Mode::Pair,
        "pg" => Mode::Pg,
        "bcrypt" => return bcrypt_bound(config.auth.bcrypt_cost, seconds, threads),
        other => fail("MODE", format!("{other}: expected pair, pg or bcrypt")),
    };
    let first: i64 = a[5].parse().unwrap_or_else(|e| fail("FIRST", e));
    let last: i64 = a[6].parse().unwrap_or_else(|e| fail("LAST", e));

    let pool = pg::build_pool(&config.pg).unwrap_or_else(|e| fail("postgres", e));
    let mongo = Arc::new(Mongo::connect(&config.mongo).unwrap_or_else(|e| fail("mongo", e)));
    // Tokens that exist nowhere, hashed as the service hashes them.
    let misses: Arc<Vec<TokenHash>> = Arc::new(
        (0..2000)
            .map(|_| {
                let t = Token::generate(TokenKind::Access).unwrap_or_else(|e| fail("random", e));
                TokenHash::of(&t.into_string())
            })
            .collect(),
    );
    // Warm the pools as the service's first requests do, outside the clock.
    for _ in 0..threads {
        if let Err(e) = mongo.profiles(&[first], Duration::from_secs(2)) {
            fail("mongo", e);
        }
    }

    let next = Arc::new(AtomicI64::new(first));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop = start + Duration::from_secs(seconds);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (pool, mongo, misses) = (pool.clone(), mongo.clone(), misses.clone());
            let (next, errors) = (next.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
                let mut n = t;
                while Instant::now() < stop {
                    let begun = Instant::now();
                    let ok = match mode {
                        Mode::Pair => {
                            let mut id = next.fetch_add(1, Ordering::Relaxed);
                            if id > last {
                                id = first + (id - first) % (last - first + 1);
                            }
                            pair(&pool, &mongo, id)
                        }
                        Mode::Pg => {
                            n += 1;
                            token(&pool, &misses[n % misses.len()])
                        }
                    };
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    lat.push(begun.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u32> = Vec::new();
    for h in handles {
        lat.extend(h.join().unwrap_or_default());
    }
    print_result(lat, start.elapsed(), errors.load(Ordering::Relaxed));
}

/// The `RESULT` line of `bench/lua/common.lua`, from per-call latencies (us).
fn print_result(mut lat: Vec<u32>, elapsed: Duration, errors: u64) {
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            return 0;
        }
        lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)]
    };
    println!(
        "RESULT {{\"requests\":{},\"duration_us\":{},\"p50_us\":{},\"p99_us\":{},\"socket_errors\":0,\"rpc_errors\":{},\"shed\":0}}",
        lat.len(),
        elapsed.as_micros(),
        pct(0.50),
        pct(0.99),
        errors
    );
}

/// The bcrypt bound (`bcrypt` mode): verifications finished inside the
/// window by `threads` threads, all started at once, as a flood's first
/// jobs start on an idle lane; one still running at the end is not counted,
/// as wrk does not count an answer after its window.
fn bcrypt_bound(cost: u32, seconds: u64, threads: usize) {
    let password =
        std::env::var("BENCH_PASSWORD").unwrap_or_else(|_| "bench-Passw0rd-correct-horse".into());
    let hash = bcrypt::hash(&password, cost).unwrap_or_else(|e| fail("bcrypt", e));
    let (password, hash) = (Arc::new(password), Arc::new(hash));
    let errors = Arc::new(AtomicU64::new(0));
    let window = Duration::from_secs(seconds);
    let start = Instant::now();
    let stop = start + window;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (password, hash, errors) = (password.clone(), hash.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut lat: Vec<u32> = Vec::new();
                loop {
                    let begun = Instant::now();
                    let ok = bcrypt::verify(password.as_str(), &hash).unwrap_or(false);
                    let done = Instant::now();
                    if done > stop {
                        return lat;
                    }
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    lat.push((done - begun).as_micros().min(u32::MAX as u128) as u32);
                }
            })
        })
        .collect();
    let mut lat: Vec<u32> = Vec::new();
    for h in handles {
        lat.extend(h.join().unwrap_or_default());
    }
    print_result(lat, window, errors.load(Ordering::Relaxed));
}

/// The account query, then the profile find: an uncached `user.get`'s two
/// round trips, one after the other on this thread.
fn pair(pool: &pg::Pool, mongo: &Mongo, id: i64) -> bool {
    let Ok(mut conn) = pool.get() else {
        return false;
    };
    let found = accounts::accounts(&mut conn, &[id]).is_ok_and(|a| a.len() == 1);
    drop(conn);
    found
        && mongo
            .profiles(&[id], Duration::from_secs(2))
            .is_ok_and(|p| p.len() == 1)
}

/// The token lookup of a missed `auth.introspect`: no row is the answer.
fn token(pool: &pg::Pool, hash: &TokenHash) -> bool {
    let Ok(mut conn) = pool.get() else {
        return false;
    };
    sessions::by_access_token(&mut conn, hash).is_ok_and(|s| s.is_none())
}
