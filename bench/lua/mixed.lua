-- A service's day: 60% introspect, 20% authorize, 15% user.get (hot ids),
-- 5% user.gets of 10 ids.
dofile("bench/lua/common.lua")
local reqs, n = {}, 0
function init(args)
  local toks = lines(os.getenv("BENCH_TOKENS"))
  local first = env_int("BENCH_FIRST", 1)
  for i = 1, 100 do
    local tok = toks[(i % #toks) + 1]
    local id = first + (i * 37) % 1000
    for _ = 1, 12 do table.insert(reqs, rpc("auth.introspect", '{"token":"' .. tok .. '"}')) end
    for _ = 1, 4 do table.insert(reqs, rpc("auth.authorize", '{"token":"' .. tok .. '","permission":"user:read"}')) end
    for _ = 1, 3 do table.insert(reqs, rpc("user.get", '{"user_id":' .. id .. '}')) end
    local ids = {}
    for k = 0, 9 do ids[k + 1] = tostring(first + (id - first + k) % 1000) end
    table.insert(reqs, rpc("user.gets", '{"user_ids":[' .. table.concat(ids, ",") .. ']}'))
  end
end
function request()
  n = n + 1
  return reqs[((n * 7919) % #reqs) + 1]
end
