-- POST /orders/ for an existing user (the order takes that user's contact).
-- wrk args: <tag> <file of owner user ids> <number of wrk threads>
-- Owners are users of their own (bench/scenarios/http_users.py order_owners_file), never
-- PUT targets, so a PUT never has to propagate to the orders created here.
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

local template = '{"userId":"%s","items":[{"itemId":"%s-%d-%d","quantity":2,"price":9.5,'
  .. '"name":"Bench item"}],"userEmails":["order@bench.example"],"deliveryAddress":{'
  .. '"street":"1 Order St","city":"Springfield","state":"CA","postalCode":"90210",'
  .. '"country":"US"},"orderStatus":"under process"}'
local headers = {["Content-Type"] = "application/json", ["apikey"] = os.getenv("BENCH_API_KEY")}

function request()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  return wrk.format("POST", "/orders/", headers, string.format(template, id, tag, tid, counter))
end

done = report.done
