-- GET /orders/?status=shipping (first page, default limit 100).
local report = require("report")  -- found through LUA_PATH (set by bench.load)

wrk.method = "GET"
wrk.path = "/orders/?status=shipping"
wrk.headers = {["apikey"] = os.getenv("BENCH_API_KEY")}
done = report.done
