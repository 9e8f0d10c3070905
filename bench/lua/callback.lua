-- POST /v1/platform/callbacks with pre-signed stage events, each sent once. args[1] is a file
-- prefix: thread N reads PREFIX.N, lines "TIMESTAMP<TAB>NONCE<TAB>SIGNATURE<TAB>BODY" signed for
-- args[2] (the app id) with args[3] (the signature method). When the list runs out, the first
-- line is sent again (a replayed nonce: 401), and `exhausted` counts it.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local lines, pos, app_id, method
used, exhausted = 0, 0

function init(args)
   assert(args[1] and args[2] and args[3], "callback.lua needs PREFIX APP_ID METHOD")
   lines = read_lines(args[1] .. "." .. wrk.thread:get("id"))
   app_id, method = args[2], args[3]
   pos = 0
end

function request()
   pos = pos + 1
   local line = lines[pos]
   if line == nil then
      exhausted = exhausted + 1
      line = lines[1]
   else
      used = used + 1
   end
   local ts, nonce, sig, body = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)")
   return wrk.format("POST", "/v1/platform/callbacks", {
      ["Content-Type"] = "application/json",
      ["X-App-Id"] = app_id,
      ["X-Timestamp"] = ts,
      ["X-Nonce"] = nonce,
      ["X-Signature-Method"] = method,
      ["X-Signature"] = sig,
   }, body)
end
