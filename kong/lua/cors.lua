-- Kong's cors plugin (kong/plugins/cors/handler.lua) for plain origins: preflights are
-- answered before authentication; other responses get the allow/expose headers.
local _M = {}

local function normalize(origin)
  -- Anchored: "http://a:8000.evil.example" must not normalize to "http://a:8000".
  local scheme, host, port = origin:match("^(%a[%w+.-]*)://([^:/]+):?(%d*)/?$")
  if not scheme then return origin end
  if (scheme == "http" and port == "80") or (scheme == "https" and port == "443") then
    port = ""
  end
  return scheme .. "://" .. host .. (port ~= "" and (":" .. port) or "")
end

-- Sets Access-Control-Allow-Origin as Kong does; returns true when it allows all ("*").
local function configure_origin(conf, headers, add_vary)
  local origins = conf.origins or {}
  if #origins == 0 or (#origins == 1 and origins[1] == "*") then
    headers["Access-Control-Allow-Origin"] = "*"
    return true
  end
  add_vary()
  if #origins == 1 then
    -- Kong sends a single configured origin whatever the request's Origin.
    headers["Access-Control-Allow-Origin"] = origins[1]
    return false
  end
  local requested = ngx.var.http_origin
  if requested then
    local wanted = normalize(requested)
    for _, origin in ipairs(origins) do
      if origin == "*" then
        headers["Access-Control-Allow-Origin"] = "*"
        return true
      end
      if normalize(origin) == wanted then
        headers["Access-Control-Allow-Origin"] = wanted
        return false
      end
    end
  end
  headers["Access-Control-Allow-Origin"] = false -- false: clear any copy
  return false
end

-- A preflight (OPTIONS with Origin and Access-Control-Request-Method): the headers of Kong's
-- 200 answer, or nil when the request is not one.
function _M.preflight(conf)
  if ngx.req.get_method() ~= "OPTIONS" or not ngx.var.http_origin
      or not ngx.var.http_access_control_request_method then
    return nil
  end
  local headers = {}
  configure_origin(conf, headers, function() headers["Vary"] = "Origin" end)
  if conf.headers and #conf.headers > 0 then
    headers["Access-Control-Allow-Headers"] = table.concat(conf.headers, ",")
  else
    headers["Access-Control-Allow-Headers"] = ngx.var.http_access_control_request_headers
  end
  headers["Access-Control-Allow-Methods"] = conf.methods and table.concat(conf.methods, ",")
      or "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
  if conf.max_age then headers["Access-Control-Max-Age"] = tostring(conf.max_age) end
  return headers
end

-- header_filter of every other response.
function _M.response_headers(conf)
  local headers = {}
  configure_origin(conf, headers, function()
    local vary = ngx.header["Vary"]
    if type(vary) == "table" then
      table.insert(vary, "Origin")
      headers["Vary"] = vary
    elseif vary then
      headers["Vary"] = { vary, "Origin" }
    else
      headers["Vary"] = "Origin"
    end
  end)
  if conf.exposed_headers and #conf.exposed_headers > 0 then
    headers["Access-Control-Expose-Headers"] = table.concat(conf.exposed_headers, ",")
  end
  return headers
end

return _M
