-- GET the URL's path as a phone revalidating its cache: If-None-Match carries args[1], the ETag
-- a first GET of the same URL returned (the harness fetches it), so every answer is 304 Not
-- Modified. wrk counts only statuses >= 400 as errors; the harness checks the server's access
-- log that the answers really were 304s, not full 200 bodies.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local req

function init(args)
   assert(args[1], "conditional.lua needs the ETag as its argument")
   req = wrk.format("GET", nil, { ["Accept"] = "application/json", ["If-None-Match"] = args[1] })
end

function request()
   return req
end
