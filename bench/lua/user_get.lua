-- user.get. BENCH_UNCACHED=0: the first 1000 seeded ids, over and over
-- (cached after the first round). BENCH_UNCACHED=1: each id at most once
-- per run (threads take interleaved ids), so every call assembles the User
-- from PostgreSQL and MongoDB.
dofile("bench/lua/common.lua")
local first, last = env_int("BENCH_FIRST", 1), env_int("BENCH_LAST", 1000)
local uncached = os.getenv("BENCH_UNCACHED") == "1"
local threads_n = env_int("BENCH_THREADS", 2)
local reqs, n = {}, 0
function init(args)
  if not uncached then
    for id = first, first + 999 do table.insert(reqs, rpc("user.get", '{"user_id":' .. id .. '}')) end
  end
end
function request()
  n = n + 1
  if uncached then
    local id = first + (thread_index or 0) + (n - 1) * threads_n
    if id > last then id = first + (id - first) % (last - first + 1) end
    return rpc("user.get", '{"user_id":' .. id .. '}')
  end
  return reqs[(n % #reqs) + 1]
end
