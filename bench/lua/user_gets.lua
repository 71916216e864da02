-- user.gets of 100 consecutive ids, each block at most once per run.
dofile("bench/lua/common.lua")
local first, last = env_int("BENCH_FIRST", 1), env_int("BENCH_LAST", 1000)
local threads_n = env_int("BENCH_THREADS", 2)
local n = 0
function request()
  n = n + 1
  local block = (thread_index or 0) + (n - 1) * threads_n
  local start = first + (block * 100) % (last - first + 1 - 100)
  local ids = {}
  for i = 0, 99 do ids[i + 1] = tostring(start + i) end
  return rpc("user.gets", '{"user_ids":[' .. table.concat(ids, ",") .. ']}')
end
