-- POST /v1/applications/{id}/submit, each draft once. args[1] is a file prefix: thread N reads
-- PREFIX.N, lines "APP_ID CONSENT_TEXT_VERSION ACCESS_TOKEN" (a complete draft, the version of
-- the consent text its item asks for, its owner's token), never shared with another thread, so
-- no draft is submitted twice. Every request carries its own Idempotency-Key (required by the
-- endpoint) and the consent body {"consent": {"accepted": true, "text_version": ...}}.
-- (wrk calls request() once before the run to check the script; that draft is just not sent.)
-- When the list runs out, requests go to an id that does not exist: the 404s show up as errors
-- and `exhausted` counts them.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local drafts, pos, id
used, exhausted = 0, 0

function init(args)
   assert(args[1], "submit.lua needs the draft file prefix")
   id = wrk.thread:get("id")
   drafts = read_lines(args[1] .. "." .. id)
   pos = 0
end

function request()
   pos = pos + 1
   local app, version, token = (drafts[pos] or ""):match("(%S+)%s+(%S+)%s+(%S+)")
   if app == nil then
      exhausted = exhausted + 1
      _, version, token = (drafts[1] or "x x x"):match("(%S+)%s+(%S+)%s+(%S+)")
      app = "exhausted-" .. id .. "-" .. pos
   else
      used = used + 1
   end
   return wrk.format("POST", "/v1/applications/" .. app .. "/submit", {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
      ["Idempotency-Key"] = "bench-" .. app,
   }, '{"consent":{"accepted":true,"text_version":"' .. version .. '"}}')
end
