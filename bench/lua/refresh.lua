-- POST /v1/auth/refresh with a different refresh token on every request.
-- args[1] is a file prefix: thread N reads PREFIX.N (one token per line, never shared), so no
-- token is sent twice; a second use would be reuse detection and would end the session.
-- (wrk calls request() once before the run to check the script; that token is just not sent.)
-- Each request claims its own client address in X-Forwarded-For (the server trusts one proxy
-- hop in the benchmark), as real phones behind the load balancer do; one address for every
-- request would measure the per-IP rate limit instead of the endpoint.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local tokens, pos, id
used, exhausted = 0, 0

function init(args)
   id = wrk.thread:get("id")
   tokens = read_lines(args[1] .. "." .. id)
   pos = 0
end

function request()
   pos = pos + 1
   local token = tokens[pos]
   if token == nil then
      -- Out of tokens: send a token that cannot exist; the 401s show up as errors.
      exhausted = exhausted + 1
      token = "rt_exhausted_" .. pos
   else
      used = used + 1
   end
   local n = id * 1000000 + pos
   local ip = string.format("10.%d.%d.%d", 64 + math.floor(n / 65536) % 64, math.floor(n / 256) % 256, n % 256)
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
      ["X-Forwarded-For"] = ip,
   }, '{"refresh_token":"' .. token .. '"}')
end
