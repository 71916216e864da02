dofile("bench/lua/common.lua")
local n = 0
local run = os.getenv("BENCH_RUN") or tostring(os.time())
function request()
  n = n + 1
  local name = "r" .. run .. "_" .. (thread_index or 0) .. "_" .. n
  return rpc("auth.register", '{"username":"' .. name .. '","password":"' .. os.getenv("BENCH_PASSWORD") .. '"}')
end
