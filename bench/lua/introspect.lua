-- auth.introspect over the seeded tokens (BENCH_TOKENS file). With
-- BENCH_MISS=1, over well-formed tokens that exist nowhere, so every call
-- misses every cache and asks PostgreSQL.
dofile("bench/lua/common.lua")
local reqs, n = {}, 0
function init(args)
  if os.getenv("BENCH_MISS") == "1" then
    math.randomseed(os.time() + (thread_index or 0))
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i = 1, 2000 do
      local t = {}
      for j = 1, 43 do local k = math.random(1, 64); t[j] = alphabet:sub(k, k) end
      table.insert(reqs, rpc("auth.introspect", '{"token":"pat_' .. table.concat(t) .. '"}'))
    end
  else
    for _, tok in ipairs(lines(os.getenv("BENCH_TOKENS"))) do
      table.insert(reqs, rpc("auth.introspect", '{"token":"' .. tok .. '"}'))
    end
  end
end
function request()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end
