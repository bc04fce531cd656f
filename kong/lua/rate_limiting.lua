-- Kong's rate-limiting plugin, policy local (kong/plugins/rate-limiting/handler.lua): fixed
-- windows counted in a lua_shared_dict, the same response headers, the same 429.
local _M = {}
local dict = ngx.shared.kong_rate_limiting
local WINDOWS = { second = 1, minute = 60, hour = 3600, day = 86400 }
local ORDER = { "second", "minute", "hour", "day" }
local function title(period) return period:sub(1, 1):upper() .. period:sub(2) end

-- conf: the plugin config; identifier: consumer id or client IP. Returns the headers to
-- send and, when over a limit, true (the caller answers 429 with them).
function _M.check(conf, identifier)
  local now_ms = ngx.now() * 1000
  local headers, stop = {}, nil
  local best_limit, best_window, best_remaining, reset
  local usage = {}
  for _, period in ipairs(ORDER) do
    local limit = conf[period]
    if limit then
      local window = WINDOWS[period]
      local start = math.floor(now_ms / 1000 / window) * window -- window start, seconds
      -- The plugin's own route/service ids (none: global or consumer-scoped), like Kong's key.
      local key = table.concat({ "ratelimit", "", "", identifier, start, period }, ":")
      local used = dict:get(key) or 0
      local remaining = limit - used
      usage[period] = { key = key, window = window, start = start, limit = limit,
        remaining = remaining }
      if remaining <= 0 then stop = period end
    end
  end
  for _, period in ipairs(ORDER) do
    local u = usage[period]
    if u then
      local remaining = u.remaining
      if stop == nil or stop == period then remaining = remaining - 1 end
      remaining = math.max(0, remaining)
      if not best_limit or remaining < best_remaining
          or (remaining == best_remaining and u.window > best_window) then
        best_limit, best_window, best_remaining = u.limit, u.window, remaining
        reset = math.max(1, u.window - math.floor((now_ms - u.start * 1000) / 1000))
      end
      headers["X-RateLimit-Limit-" .. title(period)] = u.limit
      headers["X-RateLimit-Remaining-" .. title(period)] = remaining
    end
  end
  if not best_limit then return headers, false end
  headers["RateLimit-Limit"] = best_limit
  headers["RateLimit-Remaining"] = best_remaining
  headers["RateLimit-Reset"] = reset
  if stop then
    headers["Retry-After"] = reset
    return headers, true -- Kong counts only requests it lets through
  end
  for _, u in pairs(usage) do
    dict:incr(u.key, 1, 0, u.window)
  end
  return headers, false
end

return _M
