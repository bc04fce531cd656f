-- PUT /users/{id}: a new delivery address each time (so every call commits and emits
-- user_updated). wrk args: <tag> <file of user ids> <number of wrk threads>
-- Thread t only touches ids t, t+n, ... so two threads never race on one user's version.
local report = require("report")  -- found through LUA_PATH (set by bench.load)

local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local ids = {}
local counter = 0
local tag = "x"
function init(args)
  tag = args[1] or "x"
  local nthreads = tonumber(args[3] or "1")
  local i = 0
  for line in io.lines(args[2]) do
    if i % nthreads == tid - 1 then
      ids[#ids + 1] = line
    end
    i = i + 1
  end
end

local template = '{"deliveryAddress":{"street":"%d %s-%d Bench Ave","city":"Shelbyville",'
  .. '"state":"CA","postalCode":"90001","country":"US"}}'
local headers = {["Content-Type"] = "application/json", ["apikey"] = os.getenv("BENCH_API_KEY")}

function request()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  return wrk.format("PUT", "/users/" .. id, headers, string.format(template, counter, tag, tid))
end

done = report.done
