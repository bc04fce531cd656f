-- W3C trace context at the gateway (SPEC §8): a valid client traceparent is passed on as it
-- is (the local gateway records no span of its own, so a new parent id would point at a span
-- nobody can see); an absent or invalid one is replaced by a new trace, sampled as the edges'
-- and workers' TraceIdRatioBased sampler would sample it (TRACE_SAMPLE_RATIO, rendered by
-- kong/lua_config.py as `sampling`): its id's low 64 bits below the ratio's bound.
local _M = {}

local random, format = math.random, string.format

-- 8 or 16 random bytes as hex, 4 bytes per draw (LuaJIT's random yields 32 clean bits).
local function random_hex(bytes)
  if bytes == 8 then
    return format("%08x%08x", random(0, 0xffffffff), random(0, 0xffffffff))
  end
  return format("%08x%08x%08x%08x", random(0, 0xffffffff), random(0, 0xffffffff),
    random(0, 0xffffffff), random(0, 0xffffffff))
end

-- `sampling`: { all = bool, below = 16 lowercase hex digits (the bound, exclusive) }.
function _M.continue(header, sampling)
  if header then
    local version, trace_id, parent, flags =
        header:match("^(%x%x)%-(%x+)%-(%x+)%-(%x%x)$")
    if version and version ~= "ff" and #trace_id == 32 and #parent == 16
        and header == header:lower()
        and trace_id ~= string.rep("0", 32) and parent ~= string.rep("0", 16)
        and (version ~= "00" or #header == 55) then
      return { header = header, trace_id = trace_id }
    end
  end
  local trace_id = random_hex(16)
  -- Equal-length lowercase hex strings order as the numbers they spell.
  local sampled = sampling.all or trace_id:sub(17) < sampling.below
  return { header = "00-" .. trace_id .. "-" .. random_hex(8) .. (sampled and "-01" or "-00"),
    trace_id = trace_id }
end

return _M
