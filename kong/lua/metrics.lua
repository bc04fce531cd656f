-- kong_* series with the names, labels and buckets of Kong 3.9's prometheus plugin
-- (kong/plugins/prometheus/exporter.lua), counted in a lua_shared_dict and served on the
-- status listener only.
local _M = {}
local dict = ngx.shared.kong_metrics

local KONG_LATENCY_BUCKETS = { 1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000,
  3000, 6000 }
local UPSTREAM_LATENCY_BUCKETS = { 25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000,
  30000, 60000 }
local HISTOGRAMS = {
  kong_request_latency_ms = UPSTREAM_LATENCY_BUCKETS,
  kong_upstream_latency_ms = UPSTREAM_LATENCY_BUCKETS,
  kong_kong_latency_ms = KONG_LATENCY_BUCKETS,
}
local HELP = {
  kong_http_requests_total = { "counter", "HTTP status codes per consumer/service/route in Kong" },
  kong_bandwidth_bytes = { "counter", "Total bandwidth (ingress/egress) throughput in bytes" },
  kong_request_latency_ms = { "histogram",
    "Total latency incurred during requests for each service/route in Kong" },
  kong_upstream_latency_ms = { "histogram",
    "Latency added by upstream response for each service/route in Kong" },
  kong_kong_latency_ms = { "histogram",
    "Latency added by Kong and enabled plugins for each service/route in Kong" },
  kong_nginx_connections_total = { "gauge", "Number of connections by subsystem" },
}

-- Label values repeat (a few services, routes, codes, consumers): each is escaped once per
-- worker, since gsub runs in LuaJIT's interpreter (bounded: a flood of new values stays correct).
local escaped, escaped_count = {}, 0

local function escape(value)
  local text = tostring(value)
  local hit = escaped[text]
  if hit then return hit end
  hit = text:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n")
  if escaped_count < 4096 then escaped[text], escaped_count = hit, escaped_count + 1 end
  return hit
end

local function labels(names, values)
  local text = names[1] .. '="' .. escape(values[1]) .. '"'
  for i = 2, #names do
    text = text .. "," .. names[i] .. '="' .. escape(values[i]) .. '"'
  end
  return text
end

local REQUEST_LABELS = { "service", "route", "code", "source", "workspace", "consumer" }
local BANDWIDTH_LABELS = { "service", "route", "direction", "workspace", "consumer" }
local LATENCY_LABELS = { "service", "route", "workspace" }
local DIRECTIONS = { "ingress", "egress" }

local function inc(key, by)
  local _, err = dict:incr(key, by, 0)
  if err then ngx.log(ngx.ERR, "kong_metrics: ", err) end
end

-- Keys: "c|name|labels" for counters; "h|name|labels|i" (bucket i, not cumulative),
-- "s|name|labels" (sum) and "n|name|labels" (count) for histograms.
local function observe(name, label_text, value)
  local buckets = HISTOGRAMS[name]
  local index = #buckets + 1
  for i, bound in ipairs(buckets) do
    if value <= bound then index = i break end
  end
  inc("h|" .. name .. "|" .. label_text .. "|" .. index, 1)
  inc("s|" .. name .. "|" .. label_text, value)
  inc("n|" .. name .. "|" .. label_text, 1)
end

-- One finished request on a matched route (Kong logs nothing for unrouted ones).
-- r: service, route, code, source, consumer, ingress, egress, request_ms, upstream_ms.
function _M.log(r)
  local workspace = "default"
  inc("c|kong_http_requests_total|" .. labels(REQUEST_LABELS,
    { r.service, r.route, r.code, r.source, workspace, r.consumer }), 1)
  for _, direction in ipairs(DIRECTIONS) do
    local size = r[direction]
    if size and size > 0 then
      inc("c|kong_bandwidth_bytes|" .. labels(BANDWIDTH_LABELS,
        { r.service, r.route, direction, workspace, r.consumer }), size)
    end
  end
  local latency = labels(LATENCY_LABELS, { r.service, r.route, workspace })
  if r.request_ms and r.request_ms >= 0 then
    observe("kong_request_latency_ms", latency, r.request_ms)
  end
  if r.upstream_ms then
    observe("kong_upstream_latency_ms", latency, r.upstream_ms)
  end
  if r.request_ms then
    observe("kong_kong_latency_ms", latency, math.max(0, r.request_ms - (r.upstream_ms or 0)))
  end
end

local function format_number(value)
  if value == math.floor(value) and math.abs(value) < 2 ^ 53 then
    return string.format("%d", value)
  end
  return string.format("%.17g", value)
end

-- The text exposition format, metric families sorted by name.
function _M.serve(node_id)
  local families = {}
  local function add(name, line)
    families[name] = families[name] or {}
    table.insert(families[name], line)
  end
  for _, state in ipairs({ "active", "reading", "writing", "waiting" }) do
    add("kong_nginx_connections_total", string.format(
      'kong_nginx_connections_total{node_id="%s",subsystem="http",state="%s"} %s',
      node_id, state, ngx.var["connections_" .. state] or 0))
  end
  local histograms = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local kind, name, label_text, index = key:match("^(%a)|([^|]+)|([^|]*)|?(%d*)$")
    local value = dict:get(key)
    if kind == "c" then
      add(name, name .. "{" .. label_text .. "} " .. format_number(value))
    elseif kind then
      local id = name .. "|" .. label_text
      local h = histograms[id] or { name = name, labels = label_text, buckets = {} }
      histograms[id] = h
      if kind == "h" then h.buckets[tonumber(index)] = value
      elseif kind == "s" then h.sum = value
      else h.count = value end
    end
  end
  for _, h in pairs(histograms) do
    local bounds, cumulative = HISTOGRAMS[h.name], 0
    local prefix = h.name .. "_bucket{" .. h.labels .. ',le="'
    for i = 1, #bounds + 1 do
      cumulative = cumulative + (h.buckets[i] or 0)
      local le = bounds[i] and format_number(bounds[i]) or "+Inf"
      add(h.name, prefix .. le .. '"} ' .. format_number(cumulative))
    end
    add(h.name, h.name .. "_count{" .. h.labels .. "} " .. format_number(h.count or 0))
    add(h.name, h.name .. "_sum{" .. h.labels .. "} " .. format_number(h.sum or 0))
  end
  local names = {}
  for name in pairs(families) do table.insert(names, name) end
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    local help = HELP[name]
    table.insert(out, "# HELP " .. name .. " " .. help[2])
    table.insert(out, "# TYPE " .. name .. " " .. help[1])
    for _, line in ipairs(families[name]) do table.insert(out, line) end
  end
  ngx.header["Content-Type"] = "text/plain; charset=UTF-8"
  ngx.print(table.concat(out, "\n"), "\n")
end

return _M
