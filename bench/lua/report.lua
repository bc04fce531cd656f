-- Shared by the bench scripts: prints the run as one JSON line wrk's Python driver parses.
local report = {}

function report.done(summary, latency, requests)
  local points = {}
  for i = 1, 199 do
    local p = i * 0.5
    points[#points + 1] = string.format("[%.1f,%d]", p, latency:percentile(p))
  end
  points[#points + 1] = string.format("[99.9,%d]", latency:percentile(99.9))
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"max":%d,' ..
    '"min":%d,"percentiles":[%s]}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency.min, table.concat(points, ",")))
end

return report
