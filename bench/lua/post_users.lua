-- POST /users/ with a unique email per request (emails are unique per user).
-- wrk args: <tag>  (makes emails unique across runs)
local report = require("report")  -- found through LUA_PATH (set by bench.load)

local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local counter = 0
local tag = "x"
function init(args)
  tag = args[1] or "x"
end

local template = '{"emails":["%s-%d-%d@bench.example"],"deliveryAddress":{"street":"%d Bench St",'
  .. '"city":"Springfield","state":"CA","postalCode":"90210","country":"US"},'
  .. '"firstName":"Bench","lastName":"User","phoneNumber":"5550100200"}'
local headers = {["Content-Type"] = "application/json", ["apikey"] = os.getenv("BENCH_API_KEY")}

function request()
  counter = counter + 1
  return wrk.format("POST", "/users/", headers, string.format(template, tag, tid, counter, counter))
end

done = report.done
