-- Shared by every scenario: prints one machine-readable JSON line when wrk finishes.
-- Scenario scripts load it with dofile(); wrk runs done() in its main Lua state.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local used, exhausted = 0, 0
   for _, t in ipairs(threads) do
      used = used + (t:get("used") or 0)
      exhausted = exhausted + (t:get("exhausted") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"tokens_used":%d,"tokens_exhausted":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9),
      e.connect, e.read, e.write, e.status, e.timeout,
      used, exhausted))
end

-- Lines of a file, or an error naming it (wrk would otherwise fail silently per thread).
function read_lines(path)
   local f = assert(io.open(path, "r"), "cannot open " .. path)
   local lines = {}
   for line in f:lines() do
      if #line > 0 then table.insert(lines, line) end
   end
   f:close()
   return lines
end
