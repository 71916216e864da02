-- The Python service's load pattern over JSON-RPC: one account per call with
-- the id chosen by the caller (user.import, one row, plaintext password, so
-- one bcrypt hash per call as createUser over Thrift). A row refused inside
-- a successful answer counts as an error too.
dofile("bench/lua/common.lua")
local n = 0
local base = env_int("BENCH_ID_BASE", 50000000)
function request()
  n = n + 1
  -- Interleaved by thread so no two threads send the same id.
  local id = base + n * 16 + (thread_index or 0)
  return rpc("user.import", '{"users":[{"user_id":' .. id .. ',"username":"user_' .. id ..
    '","password":"' .. os.getenv("BENCH_PASSWORD") .. '"}]}')
end
-- BENCH_BACKOFF_MS: a caller that waits that long after a refused row
-- (0, the default: it sends the next call at once).
local backoff = env_int("BENCH_BACKOFF_MS", 0)
local wait = 0
function delay()
  local w = wait
  wait = 0
  return w
end
local counted = response
function response(status, headers, body)
  counted(status, headers, body)
  if status == 200 and not string.find(body, '"imported":1', 1, true) and
     not string.find(body, '"error"', 1, true) then
    rpc_errors = rpc_errors + 1
    wait = backoff
  end
end
