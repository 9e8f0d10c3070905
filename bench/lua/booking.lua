-- POST /v1/appointments, each (slot, citizen) pair once. args[1] is a file prefix: thread N reads
-- PREFIX.N, lines "SLOT_ID ACCESS_TOKEN", never shared with another thread. Each request has its
-- own Idempotency-Key. When the list runs out, requests book a slot that does not exist (404s
-- count as errors and `exhausted` counts them).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local pairs_, pos, id
used, exhausted = 0, 0

function init(args)
   assert(args[1], "booking.lua needs the pair file prefix")
   id = wrk.thread:get("id")
   pairs_ = read_lines(args[1] .. "." .. id)
   pos = 0
end

function request()
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
