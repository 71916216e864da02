-- The migration's bulk path: user.import of batches of BENCH_BATCH (1,000,
-- the most a call takes) rows with `password_hash`, no bcrypt work in the
-- service. Every row has a fresh username (h<BENCH_RUN>_<thread>_<call>_<row>)
-- and the same pre-computed hash (BENCH_HASH, cost 12: computed once by
-- bench/seed.rs). The rows imported are counted in `units` from each
-- answer's "imported"; a call that imported fewer than its rows counts as
-- an error.
dofile("bench/lua/common.lua")
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local hash = os.getenv("BENCH_HASH") or ""
local batch = env_int("BENCH_BATCH", 1000)
local n = 0
function request()
  n = n + 1
  local prefix = '{"username":"h' .. run .. "_" .. (thread_index or 0) .. "_" .. n .. "_"
  local rows = {}
  for i = 1, batch do
    rows[i] = prefix .. i .. '","password_hash":"' .. hash .. '"}'
  end
  return rpc("user.import", '{"users":[' .. table.concat(rows, ",") .. "]}")
end
local counted = response
function response(status, headers, body)
  counted(status, headers, body)
  local imported = tonumber(string.match(body, '"imported":(%d+)') or "0")
  units = units + imported
  if status == 200 and imported < batch and not string.find(body, '"error"', 1, true) then
    rpc_errors = rpc_errors + 1
  end
end
