-- evalboard's call channel for Lua 5.4 (see runtimes.py). Both sides are Lua: the program's (it
-- answers calls of its function) and the trusted checker's (the benchmark's tests, whose entry point
-- is a proxy). One JSON array per line, parsed here without ever evaluating it; values tagged:
-- ["n"] nil, ["b", bool], ["i", "integer"], ["f", "float"], ["s", bytes], ["t", [[key, value], ...]].
local __evalboard = {}
do
  local function quote(s)
    return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  end

  local encode
  function encode(v)
    local kind = type(v)
    if v == nil then return '["n"]' end
    if kind == "boolean" then return v and '["b",true]' or '["b",false]' end
    if kind == "number" then
      if math.type(v) == "integer" then return '["i","' .. string.format("%d", v) .. '"]' end
      if v ~= v then return '["f","nan"]' end
      if v == math.huge then return '["f","inf"]' end
      if v == -math.huge then return '["f","-inf"]' end
      return '["f","' .. string.format("%.17g", v) .. '"]'
    end
    if kind == "string" then return '["s",' .. quote(v) .. ']' end
    if kind == "table" then
      local pairs_text = {}
      for key, value in pairs(v) do
        pairs_text[#pairs_text + 1] = "[" .. encode(key) .. "," .. encode(value) .. "]"
      end
      return '["t",[' .. table.concat(pairs_text, ",") .. ']]'
    end
    error("a " .. kind .. " is not plain data", 0)
  end

  local ESCAPES = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t'}

  local function parse(text)  -- JSON arrays, strings and booleans: all a message holds
    local pos = 1
    local value
    local function skip() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
    local function string_at()
      local out, from = {}, pos + 1
      while true do
        local at = text:find('["\\]', from)
        if not at then error("an unterminated string", 0) end
        out[#out + 1] = text:sub(from, at - 1)
        if text:sub(at, at) == '"' then pos = at + 1; return table.concat(out) end
        local escape = text:sub(at + 1, at + 1)
        if ESCAPES[escape] then
          out[#out + 1] = ESCAPES[escape]; from = at + 2
        elseif escape == "u" and text:sub(at + 2, at + 5):match("^%x%x%x%x$") then
          local code = tonumber(text:sub(at + 2, at + 5), 16)
          from = at + 6
          local low = text:sub(from, from + 1) == "\\u" and tonumber(text:sub(from + 2, from + 5), 16)
          if code >= 0xD800 and code <= 0xDBFF and low and low >= 0xDC00 and low <= 0xDFFF then
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00); from = from + 6
          end
          out[#out + 1] = code < 128 and string.char(code) or utf8.char(code)
        else
          error("a bad escape", 0)
        end
      end
    end
    function value()
      skip()
      local c = text:sub(pos, pos)
      if c == '"' then return string_at() end
      if c == "[" then
        pos = pos + 1
        local list = {}
        skip()
        if text:sub(pos, pos) == "]" then pos = pos + 1; return list end
        while true do
          list[#list + 1] = value()
          skip()
          local after = text:sub(pos, pos)
          pos = pos + 1
          if after == "]" then return list end
          if after ~= "," then error("a malformed array", 0) end
        end
      end
      if text:sub(pos, pos + 3) == "true" then pos = pos + 4; return true end
      if text:sub(pos, pos + 4) == "false" then pos = pos + 5; return false end
      error("a malformed message", 0)
    end
    local result = value()
    skip()
    if pos <= #text then error("text after the message", 0) end
    return result
  end

  local SPECIAL = {nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge}

  local decode
  function decode(m)
    if type(m) ~= "table" or type(m[1]) ~= "string" then error("not a value", 0) end
    local tag, body = m[1], m[2]
    if tag == "n" then return nil end
    if tag == "b" and type(body) == "boolean" then return body end
    if tag == "i" and type(body) == "string" and body:match("^%-?%d+$") then
      local n = math.tointeger(tonumber(body))
      if n then return n end
    end
    if tag == "f" and type(body) == "string" then
      if SPECIAL[body] then return SPECIAL[body] end
      local n = tonumber(body)
      if n then return n + 0.0 end
    end
    if tag == "s" and type(body) == "string" then return body end
    if tag == "t" and type(body) == "table" then
      local t = {}
      for _, pair in ipairs(body) do
        if type(pair) ~= "table" or #pair ~= 2 then error("a malformed table", 0) end
        local key = decode(pair[1])
        if key == nil or key ~= key then error("a bad table key", 0) end
        t[key] = decode(pair[2])
      end
      return t
    end
    error("not a value", 0)
  end

  local input, output
  local function open()
    if not input then
      input = assert(io.open("/dev/fd/3", "rb"))
      output = assert(io.open("/dev/fd/4", "wb"))
      output:setvbuf("no")
    end
  end
  local function receive() open(); local line = input:read("l"); return line and parse(line) end
  local function send(text) open(); output:write(text, "\n") end

  -- The program's side: answer calls of `entry` until the checker closes the channel.
  function __evalboard.serve(entry)
    if type(entry) ~= "function" then send('["error","the entry point is not a function"]'); return end
    send('["ready"]')
    while true do
      open()
      local line = input:read("l")
      if not line then return end
      local call = parse(line)
      local args = {}
      for i, v in ipairs(call[2]) do args[i] = decode(v) end
      local ok, result = pcall(entry, table.unpack(args, 1, #call[2]))
      if not ok then
        send('["raised",' .. quote(tostring(result)) .. ']')
      else
        local fine, text = pcall(encode, result)
        send(fine and ('["ok",' .. text .. ']') or ('["error",' .. quote("the function returned " .. tostring(text)) .. ']'))
      end
    end
  end

  -- The checker's side (trusted): anything but a well-formed answer ends the tests as failed.
  local function fail(why)
    io.stderr:write("CandidateFailed: ", why, "\n")
    os.exit(1, false)
  end
  local function answer()
    local ok, m = pcall(receive)
    if not ok then fail("a malformed message") end
    if m == nil then fail("the program ended before answering") end
    return m
  end
  function __evalboard.expect_ready()
    local m = answer()
    if m[1] ~= "ready" then fail(m[1] == "error" and tostring(m[2]) or "the program did not load") end
  end
  function __evalboard.call(...)
    local args = table.pack(...)
    local parts = {}
    for i = 1, args.n do parts[i] = encode(args[i]) end
    send('["call",[' .. table.concat(parts, ",") .. ']]')
    local m = answer()
    if m[1] == "raised" then fail("CandidateRaised: " .. tostring(m[2])) end
    if m[1] ~= "ok" then fail(m[1] == "error" and tostring(m[2]) or "a malformed message") end
    local ok, value = pcall(decode, m[2])
    if not ok then fail(value) end
    return value
  end
end
