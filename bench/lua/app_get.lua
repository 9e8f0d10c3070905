-- GET /v1/applications/{id} as the citizen whose token is in the file args[1], rotating over the
-- application ids in the file args[2] (one per line). Each wrk thread starts at its own place in
-- the list, so the threads do not ask for the same application at the same moment.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs, pos

function init(args)
   assert(args[1] and args[2], "app_get.lua needs a token file and an id file")
   local headers = {
      ["Accept"] = "application/json",
      ["Authorization"] = "Bearer " .. read_lines(args[1])[1],
   }
   reqs = {}
   for i, id in ipairs(read_lines(args[2])) do
      reqs[i] = wrk.format("GET", "/v1/applications/" .. id, headers)
   end
   assert(#reqs > 0, "app_get.lua: no application ids in " .. args[2])
   pos = ((wrk.thread:get("id") or 0) * 7) % #reqs
end

function request()
   pos = pos % #reqs + 1
   return reqs[pos]
end
