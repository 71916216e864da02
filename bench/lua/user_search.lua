-- user.search by username prefix: "bench_" and the first 1-6 digits of a
-- random seeded account's number, so both broad prefixes (bench_1: a ninth
-- of all accounts) and narrow ones (one account) are asked.
dofile("bench/lua/common.lua")
local users = env_int("BENCH_USERS", 100000)
function init(args)
  math.randomseed(os.time() + (thread_index or 0) * 7919)
end
function request()
  local digits = tostring(math.random(0, users - 1))
  local prefix = "bench_" .. digits:sub(1, math.random(1, #digits))
  return rpc("user.search", '{"query":"' .. prefix .. '","limit":20}')
end
