-- POST /v1/appointments, each (slot, citizen) pair once. args[1] is a file prefix: thread N reads
-- PREFIX.N, lines "SLOT_ID ACCESS_TOKEN", never shared with another thread. Each request has its
-- own Idempotency-Key. When the list runs out, requests book a slot that does not exist (404s
-- count as errors and `exhausted` counts them). Optional args[2]: the line to start from (a second
-- run uses pairs the first left alone); args[3]: requests per second this thread offers (a paced
-- run: sends on a fixed schedule, whatever the answers' speed; 0 or absent = as fast as answered);
-- args[4]: this thread's connections. wrk sends every connection's first request at once, before
-- any schedule applies: in a paced run those first requests are GET /v1/health (no database or
-- Redis work), so the start-up burst is not counted as bookings arriving all together.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local ffi = require("ffi")
ffi.cdef [[
   typedef struct { long tv_sec; long tv_usec; } bench_timeval;
   int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
local function now_ms()
   ffi.C.gettimeofday(tv, nil)
   return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end

local pairs_, pos, id, interval, next_at, openers
used, exhausted = 0, 0

function init(args)
   assert(args[1], "booking.lua needs the pair file prefix")
   id = wrk.thread:get("id")
   pairs_ = read_lines(args[1] .. "." .. id)
   pos = tonumber(args[2] or "0")
   local rate = tonumber(args[3] or "0")
   interval = rate > 0 and 1000 / rate or 0
   openers = interval > 0 and tonumber(args[4] or "0") or 0
end

-- The wait before this thread's next send: one send per interval, on schedule (at most one
-- interval of catching up after a stall, so a slow moment is not followed by a burst).
function delay()
   if interval == 0 then
      return 0
   end
   local t = now_ms()
   if next_at == nil then
      next_at = t
   end
   local wait = next_at - t
   next_at = math.max(next_at, t - interval) + interval
   return math.max(0, wait)
end

function request()
   if openers > 0 then
      openers = openers - 1
      return wrk.format("GET", "/v1/health")
   end
   pos = pos + 1
   local slot, token = (pairs_[pos] or ""):match("(%S+)%s+(%S+)")
   if slot == nil then
      exhausted = exhausted + 1
      _, token = (pairs_[1] or "x x"):match("(%S+)%s+(%S+)")
      slot = "exhausted-" .. id .. "-" .. pos
   else
      used = used + 1
   end
   return wrk.format("POST", "/v1/appointments", {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
      ["Idempotency-Key"] = "bench-" .. id .. "-" .. pos,
   }, '{"slot_id":"' .. slot .. '"}')
end
