-- Shared by every benchmark script: counts answers that are not a JSON-RPC
-- success (HTTP status other than 200/204, or an "error" member), and prints
-- one machine-readable RESULT line for bench/report.py. A script that
-- counts something besides calls (rows imported) adds it to `units`; the
-- RESULT line then carries their sum.
local threads = {}
rpc_errors = 0
shed = 0
units = 0

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status == 503 then shed = shed + 1 end
  if (status ~= 200 and status ~= 204) or string.find(body, '"error"', 1, true) then
    rpc_errors = rpc_errors + 1
  end
end

function done(summary, latency, requests)
  local errs, shed_total, units_total = 0, 0, 0
  for _, t in ipairs(threads) do
    errs = errs + (t:get("rpc_errors") or 0)
    shed_total = shed_total + (t:get("shed") or 0)
    units_total = units_total + (t:get("units") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"socket_errors":%d,"rpc_errors":%d,"shed":%d,"units":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, errs, shed_total, units_total))
end

-- A JSON-RPC POST request string.
function rpc(method, params)
  local body = '{"jsonrpc":"2.0","method":"' .. method .. '","params":' .. params .. ',"id":1}'
  return wrk.format("POST", "/rpc", {["Content-Type"] = "application/json"}, body)
end

function lines(path)
  local out = {}
  for line in io.lines(path) do table.insert(out, line) end
  return out
end

-- Integer from the environment.
function env_int(name, default)
  return tonumber(os.getenv(name) or "") or default
end
