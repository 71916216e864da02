dofile("bench/lua/common.lua")
local reqs, n = {}, 0
function init(args)
  local pw = os.getenv("BENCH_PASSWORD")
  for i = 0, 999 do
    table.insert(reqs, rpc("auth.login", '{"username":"bench_' .. i .. '","password":"' .. pw .. '"}'))
  end
end
function request()
  n = n + 1
  return reqs[((n * 7 + (thread_index or 0) * 131) % #reqs) + 1]
end
