-- GET the URL's path; with an argument, send the token in that file as a Bearer token.
-- The token is read from a file so it never appears on a command line (ps, shell history).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local req

function init(args)
   local headers = { ["Accept"] = "application/json" }
   if args[1] then
      headers["Authorization"] = "Bearer " .. read_lines(args[1])[1]
   end
   req = wrk.format("GET", nil, headers)
end

function request()
   return req
end
