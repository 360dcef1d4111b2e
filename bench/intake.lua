-- wrk script: post real ESP webhook payloads, one file line per request, with basic auth.
-- wrk -t2 -c32 -d10s -s bench/intake.lua http://127.0.0.1:8031/anymail/postmark/tracking/ -- payloads.jsonl user:pass
local payloads = {}
local counter = 0

function init(args)
  for line in io.lines(args[1]) do payloads[#payloads + 1] = line end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Basic " .. args[2]
  -- Each thread starts at another place of the file.
  counter = math.random(#payloads)
end

function request()
  counter = counter % #payloads + 1
  return wrk.format(nil, nil, nil, payloads[counter])
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("requests %d, errors %d, p50 %.1f ms, p99 %.1f ms\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
