-- wrk script for bench/serve_load.py: POST one body, made once, again and again; count the answers by status.
-- wrk -c16 -d10s -s bench/serve_load.lua http://127.0.0.1:PORT/v1/predict -- BODY_FILE CONTENT_TYPE
-- Prints one JSON line at the end: requests, the count of each status, socket errors, latency p50/p99 (µs).
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.method = "POST"
   wrk.body = file:read("*a")
   file:close()
   wrk.headers["Content-Type"] = args[2]
   statuses = {}
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      table.insert(parts, string.format('"%d": %d', status, n))
   end
   local e = summary.errors
   io.write(string.format('WRK {"requests": %d, "seconds": %.3f, "statuses": {%s}, "socket_errors": %d, '
                          .. '"p50_us": %d, "p99_us": %d}\n',
                          summary.requests, summary.duration / 1e6, table.concat(parts, ", "),
                          e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
