-- GET a different path on each request, rotating over the arguments: URL-encoded paths with
-- their query strings (e.g. /v1/services?q=%E5%8C%BB%E4%BF%9D). Each wrk thread starts at its
-- own place in the list, so the threads do not ask the same query at the same moment.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs, pos

function init(args)
   reqs = {}
   for i, path in ipairs(args) do
      reqs[i] = wrk.format("GET", path, { ["Accept"] = "application/json" })
   end
   assert(#reqs > 0, "search.lua needs at least one path as argument")
   pos = (wrk.thread:get("id") or 0) % #reqs
end

function request()
   pos = pos % #reqs + 1
   return reqs[pos]
end
