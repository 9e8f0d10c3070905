-- POST /oauth/token (authorization_code + PKCE) with a different code on every request.
-- args[1]: file prefix, thread N reads PREFIX.N (one code per line, never shared: a second
-- redemption would be a replay and revoke the first's tokens); args[2]: the PKCE verifier file;
-- args[3]: the client's "Basic ..." Authorization value file. Read from files so no secret is on
-- a command line.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local codes, pos, id, verifier, basic
used, exhausted = 0, 0

function init(args)
   id = wrk.thread:get("id")
   codes = read_lines(args[1] .. "." .. id)
   verifier = read_lines(args[2])[1]
   basic = read_lines(args[3])[1]
   pos = 0
end

function request()
   pos = pos + 1
   local code = codes[pos]
   if code == nil then
      exhausted = exhausted + 1
      code = "exhausted_" .. pos
   else
      used = used + 1
   end
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Accept"] = "application/json",
      ["Authorization"] = basic,
   }, "grant_type=authorization_code&code=" .. code ..
      "&redirect_uri=https%3A%2F%2Fbench.example.cn%2Fcb&code_verifier=" .. verifier)
end
