dofile("bench/lua/common.lua")
-- better-auth's email sign-in, against the peer (bench/peers/better-auth).
-- The Origin header is what a browser sends; better-auth checks it against
-- its trusted origins (the peer's baseURL).
local pw = os.getenv("BENCH_PASSWORD") or "bench-Passw0rd-correct-horse"
wrk.method = "POST"
wrk.path = "/api/auth/sign-in/email"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "http://127.0.0.1:" .. (os.getenv("PEER_PORT") or "18090")
wrk.body = '{"email":"bench@example.com","password":"' .. pw .. '"}'
-- A success carries the new session's token; count any other 200 as an error.
local common_response = response
function response(status, headers, body)
  common_response(status, headers, body)
  if status == 200 and not string.find(body, '"token"', 1, true) then
    rpc_errors = rpc_errors + 1
  end
end
