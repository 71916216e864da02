-- user.gets of BENCH_BLOCK (default 100) consecutive ids, each block at
-- most once per run while the seeded ids last.
dofile("bench/lua/common.lua")
local first, last = env_int("BENCH_FIRST", 1), env_int("BENCH_LAST", 1000)
local threads_n = env_int("BENCH_THREADS", 2)
local size = env_int("BENCH_BLOCK", 100)
local n = 0
function request()
  n = n + 1
  local block = (thread_index or 0) + (n - 1) * threads_n
  local start = first + (block * size) % (last - first + 1 - size)
  local ids = {}
  for i = 0, size - 1 do ids[i + 1] = tostring(start + i) end
  return rpc("user.gets", '{"user_ids":[' .. table.concat(ids, ",") .. ']}')
end
