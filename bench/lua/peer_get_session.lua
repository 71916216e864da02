dofile("bench/lua/common.lua")
-- better-auth's session lookup, against the peer (bench/peers/better-auth),
-- with the session cookie that the peer wrote at start (PEER_COOKIE_FILE).
local path = os.getenv("PEER_COOKIE_FILE") or error("PEER_COOKIE_FILE is not set")
local f = assert(io.open(path, "r"))
local cookie = f:read("*l")
f:close()
assert(cookie and cookie ~= "", "empty cookie file " .. path)
wrk.method = "GET"
wrk.path = "/api/auth/get-session"
wrk.headers["Cookie"] = cookie
-- better-auth answers 200 with the body "null" for a missing or bad session:
-- count that as an error too.
local common_response = response
function response(status, headers, body)
  common_response(status, headers, body)
  if status == 200 and not string.find(body, '"session"', 1, true) then
    rpc_errors = rpc_errors + 1
  end
end
