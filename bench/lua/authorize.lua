dofile("bench/lua/common.lua")
local reqs, n = {}, 0
function init(args)
  for _, tok in ipairs(lines(os.getenv("BENCH_TOKENS"))) do
    table.insert(reqs, rpc("auth.authorize", '{"token":"' .. tok .. '","permission":"post:edit"}'))
  end
end
function request()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end
