//! Login-limit counters in Redis, shared by every instance. Each decision
//! is one Lua script, so checking and counting cannot be split by a
//! concurrent guess, and every counter gets its TTL in the same step that
//! creates it (no counter is ever left without one). Scripts run by
//! EVALSHA; after a Redis restart or `SCRIPT FLUSH` (NOSCRIPT) they are
//! sent again with EVAL (in a cluster always with EVAL: see `Script::eval`).
//!
//! In a Redis Cluster one script may only touch keys of one slot, and the
//! counters of one login (the (login, ip) pair, the ip, the login) are in
//! three: each counter is then decided by its own script, in order, with
//! its own copy of the known-address marker kept beside it (same hash tag,
//! so same slot). A refusal by a later counter gives the attempt back to
//! the earlier ones. Each counter stays checked-and-counted atomically;
//! between two of them a concurrent guess may see one attempt too many for
//! a moment, which errs on refusing, never on admitting. A refusal's
//! `retry_after` is the first full counter's (one server: the longest).

use std::sync::Mutex;

use redis::{ConnectionLike, FromRedisValue, RedisResult};

use super::error::StoreError;
use super::redis::Redis;

/// KEYS[1]: the known-address marker; KEYS[2..]: counters.
/// ARGV[1]: the window (s); then per counter its ceiling and `1` if a known
/// address is exempt from it. Answers 0 (admitted and counted) or the
/// seconds until the blocking counter expires (nothing counted).
const ADMIT: &str = r"
local window = tonumber(ARGV[1])
local known = redis.call('EXISTS', KEYS[1]) == 1
local wait = 0
for i = 2, #KEYS do
  local exempt = known and ARGV[2 * i - 1] == '1'
  if not exempt then
    local count = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
    if count >= tonumber(ARGV[2 * i - 2]) then
      -- PTTL, not TTL: TTL rounds, and reads 0 for the last half second.
      local ms = redis.call('PTTL', KEYS[i])
      if ms == -1 then
        redis.call('EXPIRE', KEYS[i], window)
        ms = window * 1000
      end
      local s = math.max(1, math.ceil(ms / 1000))
      if s > wait then wait = s end
    end
  end
end
if wait > 0 then return wait end
for i = 2, #KEYS do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 or redis.call('TTL', KEYS[i]) < 0 then
    redis.call('EXPIRE', KEYS[i], window)
  end
end
return 0
";

/// After a correct password. ARGV[1]: seconds to set the first key, the
/// known-address marker (0: no marker given); ARGV[2]: how many keys next
/// are counters to clear (the (login, ip) pair's); the keys after those are
/// counters that get back the one attempt ADMIT added (never below zero,
/// and never re-created without a TTL).
const SUCCEEDED: &str = r"
local i = 1
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('SET', KEYS[i], '1', 'EX', ttl)
  i = i + 1
end
for _ = 1, tonumber(ARGV[2]) do
  redis.call('DEL', KEYS[i])
  i = i + 1
end
while i <= #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if count > 0 then redis.call('DECR', KEYS[i]) end
  i = i + 1
end
return 0
";

/// One script and the SHA-1 Redis gave it (asked of Redis with SCRIPT
/// LOAD, so no SHA-1 code of ours is needed).
struct Script {
    source: &'static str,
    sha: Mutex<Option<String>>,
}

impl Script {
    const fn new(source: &'static str) -> Script {
        Script {
            source,
            sha: Mutex::new(None),
        }
    }

    fn sha(&self) -> Option<String> {
        self.sha.lock().ok().and_then(|s| s.clone())
    }

    fn remember(&self, sha: String) {
        if let Ok(mut slot) = self.sha.lock() {
            *slot = Some(sha);
        }
    }

    /// Runs the script: by EVALSHA on one server (its SHA-1 asked of Redis
    /// once, with SCRIPT LOAD); whole, by EVAL, in a cluster, where SCRIPT
    /// LOAD goes to every master and fails while one of them is down, even
    /// for keys the others hold (Redis keeps the compiled script either way).
    fn eval<T: FromRedisValue>(
        &self,
        c: &mut dyn ConnectionLike,
        cluster: bool,
        keys: &[String],
        args: &[String],
    ) -> RedisResult<T> {
        let whole = || {
            redis::cmd("EVAL")
                .arg(self.source)
                .arg(keys.len())
                .arg(keys)
                .arg(args)
                .clone()
        };
        if cluster {
            return whole().query(c);
        }
        let sha = match self.sha() {
            Some(sha) => sha,
            None => {
                let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(self.source).query(c)?;
                self.remember(sha.clone());
                sha
            }
        };
        let by_sha = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(keys.len())
            .arg(keys)
            .arg(args)
            .query(c);
        match by_sha {
            Err(e) if e.code() == Some("NOSCRIPT") => whole().query(c),
            other => other,
        }
    }
}

static ADMIT_SCRIPT: Script = Script::new(ADMIT);
static SUCCEEDED_SCRIPT: Script = Script::new(SUCCEEDED);

/// A counter and its ceiling; `exempt_if_known`: not checked when the
/// known-address marker exists (it is still counted).
pub struct Counter {
    pub key: String,
    pub ceiling: u64,
    pub exempt_if_known: bool,
}

/// Checks every counter and, if none is at its ceiling, counts one attempt
/// on each, atomically: `Ok(None)` admitted, `Ok(Some(s))` refused for `s`
/// seconds. Without a `known` marker no counter is exempt.
pub fn admit(
    redis: &Redis,
    known: Option<&str>,
    counters: &[Counter],
    window_s: u64,
) -> Result<Option<u64>, StoreError> {
    if !redis.is_cluster() {
        return admit_together(redis, known, counters, window_s);
    }
    for (i, counter) in counters.iter().enumerate() {
        let marker = known.map(|k| redis.beside(&counter.key, k));
        let decided = admit_together(
            redis,
            marker.as_deref(),
            std::slice::from_ref(counter),
            window_s,
        );
        if !matches!(decided, Ok(None)) {
            let counted: Vec<String> = counters[..i].iter().map(|c| c.key.clone()).collect();
            let back = Success {
                known: None,
                clear: None,
                refund: &counted,
            };
            // Best effort: after an outage the breaker skips it, and the
            // earlier counters keep one attempt too many (never too few).
            let _ = succeeded(redis, &back);
            return decided;
        }
    }
    Ok(None)
}

/// [`admit`] in one script: every key of it in one Redis (or one slot).
fn admit_together(
    redis: &Redis,
    known: Option<&str>,
    counters: &[Counter],
    window_s: u64,
) -> Result<Option<u64>, StoreError> {
    let Some(first) = counters.first() else {
        return Ok(None);
    };
    // Without a marker KEYS[1] is never consulted (no counter is exempt),
    // but a script's keys must be real keys: the first counter stands in.
    let mut keys = vec![known.unwrap_or(&first.key).to_string()];
    let mut args = vec![window_s.max(1).to_string()];
    for c in counters {
        keys.push(c.key.clone());
        args.push(c.ceiling.to_string());
        let exempt = known.is_some() && c.exempt_if_known;
        args.push(if exempt { "1" } else { "0" }.to_string());
    }
    let cluster = redis.is_cluster();
    let wait: i64 = redis.run(|c| ADMIT_SCRIPT.eval(c, cluster, &keys, &args))?;
    Ok((wait > 0).then_some(wait as u64))
}

/// What a correct password changes: the known-address marker to set (and
/// for how long), the counter to clear, the counters to give the attempt
/// back to.
pub struct Success<'a> {
    pub known: Option<(&'a str, u64)>,
    pub clear: Option<&'a str>,
    pub refund: &'a [String],
}

pub fn succeeded(redis: &Redis, s: &Success) -> Result<(), StoreError> {
    if !redis.is_cluster() {
        return succeeded_together(redis, s);
    }
    // One script per counter, each setting the marker's copy beside it
    // (where `admit` looks for it).
    let cleared = s.clear.map(|key| (key, true));
    let refunded = s.refund.iter().map(|key| (key.as_str(), false));
    let mut outcome = Ok(());
    for (key, clear) in cleared.into_iter().chain(refunded) {
        let marker = s.known.map(|(k, ttl)| (redis.beside(key, k), ttl));
        let one = [key.to_string()];
        let part = Success {
            known: marker.as_ref().map(|(m, ttl)| (m.as_str(), *ttl)),
            clear: clear.then_some(key),
            refund: if clear { &[] } else { &one },
        };
        if let Err(e) = succeeded_together(redis, &part) {
            outcome = Err(e);
        }
    }
    outcome
}

/// [`succeeded`] in one script: every key of it in one Redis (or one slot).
fn succeeded_together(redis: &Redis, s: &Success) -> Result<(), StoreError> {
    let mut keys: Vec<String> = Vec::new();
    let mut ttl = 0;
    if let Some((known, known_ttl_s)) = s.known {
        keys.push(known.to_string());
        ttl = known_ttl_s.max(1);
    }
    keys.extend(s.clear.map(str::to_string));
    keys.extend(s.refund.iter().cloned());
    if keys.is_empty() {
        return Ok(());
    }
    let args = [ttl.to_string(), usize::from(s.clear.is_some()).to_string()];
    let cluster = redis.is_cluster();
    redis.run(|c| {
        SUCCEEDED_SCRIPT
            .eval::<i64>(c, cluster, &keys, &args)
            .map(|_| ())
    })
}
