-- The local gateway's Kong plugins, in Kong's order (cors > jwt > key-auth > acl >
-- rate-limiting > response-transformer > request-termination > prometheus), driven by
-- the table kong/nginx.py derives from the rendered kong.yml (gateway.json).
local cjson = require "cjson.safe"
local jwt = require "jwt_rs256"
local rate_limiting = require "rate_limiting"
local cors = require "cors"
local metrics = require "metrics"
local trace = require "traceparent"

local _M = {}
local config -- gateway.json, read once per (re)load by the master in init_by_lua

local IDENTITY_HEADERS = { "x-consumer-id", "x-consumer-custom-id", "x-consumer-username",
  "x-consumer-groups", "x-credential-identifier", "x-anonymous-consumer",
  "x-authenticated-groups" }

function _M.init_worker()
  -- Trace and span ids: seeded per worker from the kernel, not from the clock.
  local urandom = assert(io.open("/dev/urandom", "rb"))
  local bytes = urandom:read(4)
  urandom:close()
  local seed = 0
  for i = 1, 4 do seed = seed * 256 + bytes:byte(i) end
  math.randomseed(seed + ngx.worker.pid())
end

function _M.init(path)
  local file = assert(io.open(path, "r"))
  config = assert(cjson.decode(file:read("*a")), "gateway.json is not JSON")
  file:close()
end

-- A problem+json answer in the project's shape; `headers` are sent with it.
local function answer(status, detail, headers)
  for name, value in pairs(headers or {}) do ngx.header[name] = value end
  ngx.status = status
  ngx.header["Content-Type"] = "application/problem+json"
  ngx.var.gw_source = "kong"
  ngx.print(cjson.encode({ type = "about:blank", title = config.titles[tostring(status)],
    status = status, detail = detail or config.details[tostring(status)], requestId = ngx.var.gateway_request_id }))
  return ngx.exit(ngx.HTTP_OK) -- the response is complete; skip proxying
end

-- Kong's router: the highest-ranked route of this location's group the request matches.
local function select_route(group)
  local method = ngx.req.get_method()
  for _, route in ipairs(config.groups[group]) do
    local ok = route.methods == cjson.null or route.methods[method]
    if ok and route.headers ~= cjson.null then
      for name, values in pairs(route.headers) do
        local value = ngx.var["http_" .. name:lower():gsub("-", "_")]
        if not value or not values[value:lower()] then ok = false end
      end
    end
    if ok then return route end
  end
  return nil
end

-- jwt: Bearer token -> the issuer's consumer, or nil and Kong's reason.
local function jwt_consumer()
  local header = ngx.var.http_authorization
  local token = header and header:match("^%s*[Bb]earer%s+(.+)$")
  if not token then return nil, "Unauthorized" end
  local parsed, err = jwt.decode(token)
  if not parsed then return nil, err end
  local iss = parsed.claims.iss or parsed.header.iss
  if not iss then return nil, "No mandatory 'iss' in claims" end
  local issuer = config.issuers[iss]
  if not issuer then return nil, "No credentials found for given 'iss'" end
  if parsed.header.alg ~= issuer.algorithm then return nil, "Invalid algorithm" end
  if not jwt.verify(parsed.signed, parsed.signature, issuer.rsa_public_key) then
    return nil, "Invalid signature"
  end
  local exp_err = jwt.check_exp(parsed.claims)
  if exp_err then return nil, exp_err end
  return config.consumers[issuer.consumer], iss
end

-- key-auth: the `apikey` header -> its consumer, or nil and Kong's reason.
local function key_consumer()
  local key = ngx.ctx.headers["apikey"]
  if type(key) == "table" then return nil, "Duplicate API key found" end
  if not key or key == "" then return nil, "No API key found in request" end
  local credential = config.keys[key]
  if not credential then return nil, "Unauthorized" end
  return config.consumers[credential.consumer], credential.id
end

local function set_identity(consumer, credential)
  ngx.req.set_header("X-Consumer-ID", consumer.id)
  ngx.req.set_header("X-Consumer-Username", consumer.username)
  ngx.req.set_header("X-Credential-Identifier", credential)
  if not credential then ngx.req.set_header("X-Anonymous-Consumer", "true") end
  ngx.var.gw_consumer = consumer.username
end

local function apply(headers)
  for name, value in pairs(headers) do
    if value == false then ngx.header[name] = nil else ngx.header[name] = value end
  end
end

function _M.access(group)
  local ctx = ngx.ctx
  local tp = trace.continue(ngx.var.http_traceparent, config.trace_sampling)
  ngx.var.gw_traceparent, ngx.var.gw_trace_id = tp.header, tp.trace_id
  local route = select_route(group)
  if not route then return answer(404) end
  ngx.var.gw_route, ngx.var.gw_service = route.name, route.service
  -- A client's identity headers never reach an edge, whatever the route.
  local sent = ngx.req.get_headers()
  ctx.headers = sent
  for _, name in ipairs(IDENTITY_HEADERS) do
    if sent[name] then ngx.req.clear_header(name) end
  end

  local preflight = cors.preflight(config.cors)
  if preflight then
    ctx.skip_cors = true
    for name, value in pairs(preflight) do
      if value then ngx.header[name] = value end
    end
    ngx.var.gw_source = "kong"
    ngx.header["Content-Length"] = 0
    ngx.status = 200
    return ngx.exit(ngx.HTTP_OK)
  end

  local consumer
  if route.auth then
    -- Either credential works (Kong's anonymous recipe): the token first, then the key.
    local credential, token_failure
    consumer, credential = jwt_consumer()
    if not consumer then
      token_failure = credential
      consumer, credential = key_consumer()
    end
    if consumer then
      set_identity(consumer, credential)
    else
      -- Kong answers every failure alike; the reason goes to the access log only.
      local bearer = (ngx.var.http_authorization or ""):find("^%s*[Bb]earer%s")
      ngx.var.gw_auth_failure = bearer and token_failure or credential
      consumer = config.consumers.anonymous
      set_identity(consumer, nil)
    end
    ctx.consumer = consumer
    -- Consumer-scoped response-transformer (the anonymous consumer's WWW-Authenticate).
    ctx.add_headers = consumer.add_headers
    if route.acl ~= cjson.null then
      if consumer.anonymous then
        return answer(401, "Unauthorized")
      end
      local allowed = false
      for _, group_name in ipairs(route.acl) do
        allowed = allowed or consumer.group_set[group_name] == true
      end
      if not allowed then return answer(403, "You cannot consume this service") end
      ngx.req.set_header("X-Consumer-Groups", table.concat(consumer.groups, ", "))
    end
  end

  -- rate-limiting: the consumer's own instance if it has one, else the global per-IP one.
  local own = consumer and consumer.rate_limiting
  local limit = (own and own ~= cjson.null) and own or config.rate_limiting
  local identifier = (limit.limit_by == "consumer" and consumer and consumer.id)
      or ngx.var.remote_addr
  local headers, over = rate_limiting.check(limit, identifier)
  ctx.rate_headers = headers
  if over then return answer(429, "API rate limit exceeded", headers) end

  if route.auth and consumer and consumer.anonymous and consumer.terminate then
    return answer(401, "Unauthorized") -- request-termination on a route without acl
  end
end

function _M.header_filter()
  local ctx = ngx.ctx
  if (ngx.var.gw_route or "") == "" then return end
  if ctx.rate_headers then apply(ctx.rate_headers) end
  for _, pair in ipairs(ctx.add_headers or {}) do
    if not ngx.header[pair[1]] then ngx.header[pair[1]] = pair[2] end
  end
  if not ctx.skip_cors then apply(cors.response_headers(config.cors)) end
end

-- Milliseconds the edge(s) took: the sum over tries, nil when nothing was proxied.
local function upstream_ms()
  local times = ngx.var.upstream_response_time
  if not times or times == "" then return nil end
  local total, any = 0, false
  for t in times:gmatch("[%d.]+") do total, any = total + tonumber(t), true end
  return any and total * 1000 or nil
end

function _M.log()
  if (ngx.var.gw_route or "") == "" then return end -- Kong logs nothing for an unrouted request
  local source = ngx.var.gw_source
  if source == "" then
    -- An answer nginx made itself (edge down, body too large) is Kong's, not the service's.
    source = (ngx.var.upstream_status or ""):match("(%d+)$") == tostring(ngx.status)
        and "service" or "kong"
  end
  metrics.log({
    service = ngx.var.gw_service,
    route = ngx.var.gw_route,
    code = ngx.status,
    source = source,
    consumer = ngx.var.gw_consumer,
    ingress = tonumber(ngx.var.request_length),
    egress = tonumber(ngx.var.bytes_sent),
    request_ms = tonumber(ngx.var.request_time) * 1000,
    upstream_ms = upstream_ms(),
  })
end

function _M.metrics()
  metrics.serve(config.node_id)
end

return _M
