--[[
repzone_reputation: Rspamd's reputation scores, read from repzone DNS lists.

Rspamd's own reputation plugin writes counters to Redis and scores them; its DNS backend
cannot read any zone in Rspamd 3.4 (it asks for A records and parses them as text).  This
plugin is the read-only DNS backend: for the ip (with its asn and country components),
dkim, spf, url and generic selectors it builds the tokens reputation.lua writes, asks for
the TXT record of each under a repzone zone through Rspamd's asynchronous resolver, reads
repzone's "v=1;n=...;v1m=..." data and inserts the symbols the redis backend would insert,
with the same dynamic scores and options (docs/peers/rspamd.md, "The reputation plugin").

Install: copy this file to /etc/rspamd/plugins.d/ and add a `repzone_reputation { rules
{ ... } }` block (docs/peers/rspamd.md) to /etc/rspamd/local.d/repzone_reputation.conf.

Written for repzone; the behaviour it reproduces is reputation.lua's (Rspamd 3.4), read from
its source and measured against it by tests/test_rspamd_plugin.py.
]]

local N = 'repzone_reputation'

-- Pure helpers (names, hashes, TXT, scores), exported so that tests can run them
-- under `rspamadm lua` without a scanner.
local M = {}

local cryptobox_hash = require "rspamd_cryptobox_hash"
local rspamd_logger = require "rspamd_logger"
local rspamd_util = require "rspamd_util"
local lua_util = require "lua_util"

local tanh = math.tanh or rspamd_util.tanh

-- reputation.lua's constants as written there: atanh(0.95) and atanh(0.5), rounded.
local TANH_SCALE = 1.83178
local TANH_SHIFT = 0.5493
-- reputation.lua inserts a symbol only when |score| is above this (dkim excepted).
local INSERT_THRESHOLD = 1e-3
-- One TXT string: our format never needs more, so a longer record is not ours.
local MAX_TXT = 255
local MAX_NAME = 253
local MAX_LABEL = 63
-- At most one warning per rule per this many seconds (the rest are counted).
M.WARN_INTERVAL = 60

M.ENCODINGS = {
  hex = function(h) return h:hex() end,
  base32 = function(h) return h:base32() end,              -- Rspamd's own base32
  rbase32 = function(h) return h:base32('rfc'):lower() end, -- RFC 4648, no padding
  bleach = function(h) return h:base32('bleach') end,
}
M.ALGORITHMS = {blake2 = true, sha1 = true, sha256 = true, sha384 = true, sha512 = true,
                md5 = true}

-- ------------------------------------------------------------------ names

--- Whether Rspamd's resolver will ask `name`: labels of [A-Za-z0-9_-], 1..63 each.
function M.check_name(name)
  if #name > MAX_NAME then
    return false, string.format('the name is %d characters, over %d', #name, MAX_NAME)
  end
  for label in string.gmatch(name .. '.', '([^.]*)%.') do
    if #label == 0 then return false, 'empty label' end
    if #label > MAX_LABEL then
      return false, string.format('a label is %d characters, over %d', #label, MAX_LABEL)
    end
    if not label:match('^[A-Za-z0-9_-]+$') then
      return false, 'characters outside [A-Za-z0-9_-]'
    end
  end
  return true
end

--- The label a hash scheme gives `data`: digest, encoding, then cut to `length`.
function M.hash_label(data, scheme)
  local h = cryptobox_hash.create_specific(scheme.alg, data)
  local text = M.ENCODINGS[scheme.encoding](h)
  if scheme.length then text = text:sub(1, scheme.length) end
  return text
end

--- The relative owner name of a token under a scheme, as repzone publishes it.
-- `token` is {text = ..., reversed = ...}: reversed is the RFC 5782 form of an
-- address token (set only for single addresses, i.e. full masks), network the
-- "addr/len" text of a masked one, reversed_net its network address reversed.
function M.owner(scheme, token)
  if scheme.kind == 'ip' then
    return token.reversed or token.reversed_net
  elseif scheme.kind == 'name' then
    return token.text:lower()
  end
  -- hash: an address is hashed as its reversed-octet string, as Rspamd's rbl does.
  return M.hash_label(token.reversed or token.network or token.text, scheme)
end

-- ------------------------------------------------------------------ the TXT format

local function plain_number(text)
  if type(text) ~= 'string' then return nil end
  local mantissa = text:match('^(.-)[eE][-+]?%d+$') or text
  if not (mantissa:match('^%-?%d+%.?%d*$') or mantissa:match('^%-?%.%d+$')) then
    return nil
  end
  local value = tonumber(text)
  if value == nil or value ~= value or value == math.huge or value == -math.huge then
    return nil
  end
  return value
end
M.number = plain_number

--- Fields of a version-1 record, or nil, the status ('malformed'/'newer_version') and why.
function M.parse_txt(text)
  if type(text) ~= 'string' then return nil, 'malformed', 'not text' end
  if #text > MAX_TXT then
    return nil, 'malformed', string.format('%d bytes, over the %d of one TXT string',
        #text, MAX_TXT)
  end
  if text:sub(1, 2) ~= 'v=' then return nil, 'malformed', 'not a v= record' end
  local fields, first = {}, true
  for segment in (text .. ';'):gmatch('([^;]*);') do
    if first then
      local version = segment:match('^v=(%d+)$')
      if not version then return nil, 'malformed', 'the version is not a number' end
      version = tonumber(version)
      if version > 1 then
        return nil, 'newer_version', string.format('format version %d is newer than 1', version)
      elseif version < 1 then
        return nil, 'malformed', 'format version 0 does not exist'
      end
      first = false
    elseif segment ~= '' then
      local key, value = segment:match('^([a-z][a-z0-9_.-]*)=(.*)$')
      if not key then return nil, 'malformed', 'a segment is not key=value' end
      if key == 'v' or fields[key] ~= nil then
        return nil, 'malformed', string.format('key %s appears twice', key)
      end
      fields[key] = value
    end
  end
  return fields
end

--- One token's score from its TXT fields, as repzone's client scores them.
-- Rspamd's layout (n and v<bucket>) first, with reputation.lua's formula; then the
-- older s/h/p counters, repzone's b<bucket>.s|h|j|m counts, and the published sc.
-- Returns the score (without the component weight) and the method.
function M.score(fields, lower_bound, reject_score)
  local n = plain_number(fields.n)
  local keys = {}
  for key, value in pairs(fields) do
    if key:match('^v[a-z0-9_]+$') and #key <= 17 and plain_number(value) then
      keys[#keys + 1] = key
    end
  end
  table.sort(keys)
  if n and #keys > 0 then
    if n < lower_bound then return 0, 'rspamd' end
    local sum = 0.0
    for _, key in ipairs(keys) do sum = sum + plain_number(fields[key]) end
    return tanh(sum / #keys / reject_score * TANH_SCALE - TANH_SHIFT), 'rspamd'
  end
  local s, h, p = plain_number(fields.s), plain_number(fields.h), plain_number(fields.p)
  if s or h or p then
    s, h, p = s or 0, h or 0, p or 0
    if s < 0 or h < 0 or p < 0 then return nil, 'negative counts' end
    local total = s + h + p
    if total < lower_bound or total <= 0 then return 0, 'counters' end
    return math.max(-1, math.min(1, (s - h + 0.5 * p) / total)), 'counters'
  end
  local buckets, names = {}, {}
  for key, value in pairs(fields) do
    local name, part = key:match('^b([a-z0-9_]+)%.([shjm])$')
    local number = plain_number(value)
    if name and #name <= 16 and number then
      if not buckets[name] then buckets[name] = {}; names[#names + 1] = name end
      buckets[name][part] = number
    end
  end
  if #names > 0 then
    table.sort(names)
    local biggest, weight, raw = 0, 0.0, 0.0
    for _, name in ipairs(names) do
      local b = buckets[name]
      local spam, ham, junk, mult = b.s or 0, b.h or 0, b.j or 0, b.m or 1
      if spam < 0 or ham < 0 or junk < 0 or mult < 0 then return nil, 'negative counts' end
      local total = spam + ham + junk
      if total > biggest then biggest = total end
      weight = weight + total * mult
      raw = raw + (spam - ham + 0.5 * junk) * mult
    end
    if biggest < lower_bound or weight <= 0 then return 0, 'buckets' end
    return math.max(-1, math.min(1, raw / weight)), 'buckets'
  end
  local sc = plain_number(fields.sc)
  if sc then return math.max(-1, math.min(1, sc)), 'published' end
  return 0, 'none'
end

--- A TXT answer's fields; nil, status and why when it cannot be read.
-- Every record of the RRset is tried: a list changing format may publish a newer
-- record beside its v=1 one.
function M.read_records(results)
  local status, why
  for _, text in ipairs(results) do
    local fields, bad, reason = M.parse_txt(text)
    if fields then return fields end
    if bad == 'newer_version' or not status then status, why = bad, reason end
  end
  return nil, status or 'malformed', why or 'no TXT record'
end

--- `text` cut and escaped for a log line (the data comes from a remote server).
function M.shown(text)
  text = tostring(text)
  if #text > 80 then text = text:sub(1, 80) .. '...' end
  return (text:gsub('[^%w%p ]', function(c) return string.format('\\x%02x', c:byte()) end))
end

if confighelp or rawget(_G, 'REPZONE_REPUTATION_EXPORT') then
  return M
end

-- ------------------------------------------------------------------ the plugin

local E = {}

-- Per selector: the defaults of reputation.lua's selector configs, plus our options.
local SELECTOR_DEFAULTS = {
  ip = {symbol = 'SENDER_REP', split_symbols = true, lower_bound = 10,
        scores = {ip = 1.0, asn = 0.4, country = 0.01},
        outbound = false, inbound = true, ipv4_mask = 32, ipv6_mask = 64},
  dkim = {symbol = 'DKIM_SCORE', lower_bound = 10, outbound = true, inbound = true,
          max_accept_adjustment = 2.0},
  url = {symbol = 'URL_SCORE', lower_bound = 10, max_urls = 10, outbound = true,
         inbound = true},
  spf = {symbol = 'SPF_REP', split_symbols = true, lower_bound = 10, outbound = true,
         inbound = true},
  generic = {lower_bound = 10, outbound = true, inbound = true, delimiter = ':'},
}
SELECTOR_DEFAULTS.sender = SELECTOR_DEFAULTS.ip
local DEFAULT_HASH = {alg = 'blake2', encoding = 'base32', length = 32}

-- reputation.lua reads the reject action once, at load.
local reject_threshold = rspamd_config:get_action('reject') or 10.0

local function warn(task, rule, what, ...)
  local text = string.format(what, ...)
  local now = rspamd_util.get_time()
  if rule.last_warning and now - rule.last_warning < M.WARN_INTERVAL then
    rule.suppressed = rule.suppressed + 1
    lua_util.debugm(N, task, 'rule %s: %s', rule.name, text)
    return
  end
  local extra = ''
  if rule.suppressed > 0 then
    extra = string.format(' (%d similar warnings in the last %d s not logged)',
        rule.suppressed, M.WARN_INTERVAL)
  end
  rule.last_warning, rule.suppressed = now, 0
  rspamd_logger.warnx(task, 'rule %s: %s%s', rule.name, text, extra)
end

local function scheme_of(conf, kind, where)
  local name = conf.scheme or (kind == 'ip' and 'ip') or (kind == 'generic' and 'hash')
      or 'name'
  if name == 'ip' or name == 'name' then
    if conf.alg or conf.encoding or conf.length then
      return nil, where .. ': alg, encoding and length go with scheme = "hash"'
    end
    return {kind = name}
  elseif name ~= 'hash' then
    return nil, string.format('%s: unknown scheme %s (ip, name or hash)', where, name)
  end
  local scheme = {
    kind = 'hash',
    alg = conf.alg or DEFAULT_HASH.alg,
    encoding = conf.encoding or DEFAULT_HASH.encoding,
    length = tonumber(conf.length),
  }
  if conf.alg == nil and conf.encoding == nil and conf.length == nil then
    scheme.length = DEFAULT_HASH.length
  end
  if not M.ALGORITHMS[scheme.alg] then
    return nil, string.format('%s: unknown hash alg %s', where, tostring(scheme.alg))
  end
  if not M.ENCODINGS[scheme.encoding] then
    return nil, string.format('%s: encoding %s is not usable in DNS names (hex, base32, '
        .. 'rbase32, bleach)', where, tostring(scheme.encoding))
  end
  local full = #M.hash_label('', {alg = scheme.alg, encoding = scheme.encoding})
  if (scheme.length or full) > MAX_LABEL or (scheme.length and scheme.length < 1) then
    return nil, string.format('%s: a %s/%s label must be cut to 1..63 characters (length)',
        where, scheme.alg, scheme.encoding)
  end
  return scheme
end

local function zone_of(conf, kind, where)
  if type(conf) ~= 'table' or type(conf.zone) ~= 'string' or conf.zone == '' then
    return nil, where .. ': zone is required'
  end
  local scheme, err = scheme_of(conf, kind, where)
  if not scheme then return nil, err end
  local zone = conf.zone:lower():gsub('%.$', '')
  local ok, why = M.check_name(zone)
  if not ok then return nil, string.format('%s: zone %s: %s', where, conf.zone, why) end
  return {zone = zone, scheme = scheme}
end

--- Ask every item's name; call finish(items) once all have an outcome (never raises).
-- item.outcome: 'hit' (item.fields), 'absent' (NXDOMAIN/NODATA) or 'failed' (item.why).
local function ask_all(task, rule, items, finish)
  local left = #items
  local function settle()
    left = left - 1
    if left == 0 then
      local ok, err = pcall(finish, items)
      if not ok then warn(task, rule, 'internal error, no symbol: %s', tostring(err)) end
    end
  end
  if left == 0 then return settle() end
  local resolver = task:get_resolver()
  for _, item in ipairs(items) do
    local done = false
    local function callback(_, _, results, err)
      if done then return end
      done = true
      local ok, problem = pcall(function()
        if err then
          if err == 'no records with this name' or err == 'requested record is not found' then
            item.outcome = 'absent'
          else
            item.outcome, item.why = 'failed', err
          end
        elseif type(results) ~= 'table' or not results[1] then
          item.outcome = 'absent'
        else
          local fields, status, why = M.read_records(results)
          if fields then
            item.outcome, item.fields = 'hit', fields
          else
            item.outcome = 'failed'
            item.why = string.format('%s TXT (%s): "%s"', status, why, M.shown(results[1]))
          end
        end
      end)
      if not ok then item.outcome, item.why = 'failed', 'internal: ' .. tostring(problem) end
      settle()
    end
    local sent = resolver:resolve_txt({task = task, name = item.qname, callback = callback,
                                       forced = true})
    if not sent and not done then
      done = true
      item.outcome, item.why = 'failed', 'the resolver did not send the query'
      settle()
    end
  end
end

--- The items' scores, or nil after one (rate-limited) warning when any failed.
local function scores_of(task, rule, items)
  for _, item in ipairs(items) do
    if item.outcome == 'failed' then
      warn(task, rule, 'no reputation symbol: %s: %s', item.qname, item.why)
      return nil
    end
  end
  for _, item in ipairs(items) do
    if item.outcome == 'hit' then
      local score, how = M.score(item.fields, rule.lower_bound, rule.reject_score)
      if not score then
        warn(task, rule, 'no reputation symbol: %s: cannot score: %s', item.qname, how)
        return nil
      end
      item.score = score
    else
      item.score = 0 -- not listed: what Redis says of a key it does not hold
    end
  end
  return items
end

--- A lookup item for `token` under `ref`, or nil when its name cannot be asked.
local function item_for(task, rule, ref, token, extra)
  local relative = M.owner(ref.scheme, token)
  local qname = relative .. '.' .. ref.zone
  local ok, why = M.check_name(qname)
  if not ok then
    lua_util.debugm(N, task, 'rule %s: token %s cannot be asked (%s)', rule.name,
        token.text, why)
    return nil
  end
  local item = {qname = qname, token = token}
  for k, v in pairs(extra or E) do item[k] = v end
  return item
end

local function text_token(text)
  return {text = tostring(text)}
end

--- reputation.lua's add_symbol_score: _SPAM/_HAM when split, the multiplier and options.
local function add_symbol(task, rule, mult, options)
  options = options or {tostring(mult)}
  if rule.split_symbols then
    if mult >= 0 then
      task:insert_result(rule.symbol .. '_SPAM', mult, options)
    else
      if rule.ham_weight == nil then
        local ham = rspamd_config:get_symbol(rule.symbol .. '_HAM')
        rule.ham_weight = (ham and ham.score) or false
      end
      -- A ham symbol with a negative weight gets |mult|, as reputation.lua does.
      if rule.ham_weight and rule.ham_weight < 0 then mult = math.abs(mult) end
      task:insert_result(rule.symbol .. '_HAM', mult, options)
    end
  else
    task:insert_result(rule.symbol, mult, options)
  end
end

-- ---------------------------------------------------------------- selectors

local function ip_filter(task, rule)
  local ip = task:get_from_ip()
  if not ip or not ip:is_valid() then return end
  if lua_util.is_rspamc_or_controller(task) then return end
  local version = ip:get_version()
  local mask
  if version == 4 and rule.ipv4_mask then
    mask = rule.ipv4_mask
  elseif rule.ipv6_mask then
    mask = rule.ipv6_mask
  end
  if mask then ip = ip:apply_mask(mask) end
  local full = (version == 4 and 32) or 128
  local text = tostring(ip)
  local token = {text = text}
  if not mask or mask >= full then
    token.reversed = table.concat(ip:inversed_str_octets(), '.')
  else
    token.network = string.format('%s/%d', text, mask)
    token.reversed_net = table.concat(ip:inversed_str_octets(), '.')
  end
  local pool = task:get_mempool()
  local asn, country = pool:get_variable('asn'), pool:get_variable('country')
  local items = {}
  local function add(ref, tok, component, shown)
    if not ref then return end
    local item = item_for(task, rule, ref, tok, {component = component, shown = shown})
    if item then items[#items + 1] = item end
  end
  -- reputation.lua's order, which is also the order of the symbol's options.
  if asn then add(rule.components.asn, text_token(asn), 'asn', asn) end
  if country then add(rule.components.country, text_token(country), 'country', country) end
  add(rule.main, token, 'ip', text)
  ask_all(task, rule, items, function(done)
    if not scores_of(task, rule, done) then return end
    local total, parts = 0.0, {}
    for _, item in ipairs(done) do
      local score = item.score * rule.scores[item.component]
      total = total + score
      parts[#parts + 1] = string.format('%s: %s(%.2f)', item.component, item.shown, score)
    end
    if math.abs(total) > INSERT_THRESHOLD then
      add_symbol(task, rule, total, table.concat(parts, ', '))
    end
  end)
end

--- DKIM_TRACE options as reputation.lua reads them: eTLD+1 -> a | r | u (last wins).
function M.dkim_requests(options, get_tld)
  local requests, order = {}, {}
  for _, opt in ipairs(options or E) do
    local dom, res = tostring(opt):match('^([^:]+):([%+%-%?~]+)')
    if dom then
      local label = (res == '+' and 'a') or (res == '-' and 'r') or 'u'
      local tld = get_tld(dom)
      if requests[tld] == nil then order[#order + 1] = tld end
      requests[tld] = label
    end
  end
  return requests, order
end

local function dkim_filter(task, rule)
  local trace = (task:get_symbol('DKIM_TRACE') or E)[1]
  if not (trace and trace.options) then return end
  local requests, order = M.dkim_requests(trace.options, rspamd_util.get_tld)
  local items = {}
  for _, tld in ipairs(order) do
    local label = requests[tld]
    local item = item_for(task, rule, rule.main, text_token(tld .. '.' .. label),
        {accepted = label == 'a'})
    if item then items[#items + 1] = item end
  end
  if #items == 0 then return end
  ask_all(task, rule, items, function(done)
    if not scores_of(task, rule, done) then return end
    local accepted = 0.0
    for _, item in ipairs(done) do
      if item.accepted then accepted = accepted + item.score end
    end
    local final = math.max(-1.0, math.min(1.0, accepted))
    add_symbol(task, rule, final)
    task:get_mempool():set_variable('dkim_reputation_accept', tostring(accepted))
  end)
end

local function dkim_postfilter(task, rule)
  local allowed = (task:get_symbol('R_DKIM_ALLOW') or E)[1]
  local accept = task:get_mempool():get_variable('dkim_reputation_accept')
  if allowed and allowed.score and accept and type(rule.max_accept_adjustment) == 'number' then
    local adjustment = rule.max_accept_adjustment * tanh(tonumber(accept) or 0)
    task:adjust_result('R_DKIM_ALLOW', allowed.score + adjustment)
  end
end

local function one_token_filter(task, rule, token)
  local item = item_for(task, rule, rule.main, token)
  if not item then return end
  ask_all(task, rule, {item}, function(done)
    if not scores_of(task, rule, done) then return end
    if math.abs(done[1].score) > INSERT_THRESHOLD then add_symbol(task, rule, done[1].score) end
  end)
end

local function spf_filter(task, rule)
  local record = task:get_mempool():get_variable('spf_record')
  if not record or not task:has_symbol('R_SPF_ALLOW') then return end
  local key = cryptobox_hash.create(record):base32():sub(1, 32)
  one_token_filter(task, rule, text_token(key))
end

--- The message's URL domains as reputation.lua counts them, most frequent first.
local function url_requests(task, max_urls)
  local counts, order = {}, {}
  for _, u in ipairs(task:get_urls(true) or E) do
    if not u:is_html_displayed() then
      if u:is_redirected() then
        local source = u:get_redirected():get_tld()
        if counts[source] then counts[source] = counts[source] - 1 end
      end
      local dom = u:get_tld()
      if dom then
        if not counts[dom] then counts[dom] = 0; order[#order + 1] = dom end
        counts[dom] = counts[dom] + 1
      end
    end
  end
  table.sort(order, function(a, b)
    if counts[a] ~= counts[b] then return counts[a] > counts[b] end
    return a < b
  end)
  local found = {}
  for _, dom in ipairs(order) do
    if #found >= max_urls then break end
    if counts[dom] > 0 then found[#found + 1] = {dom, counts[dom]} end
  end
  return found
end

local function url_filter(task, rule)
  local requests = url_requests(task, rule.max_urls)
  local items, most = {}, 0
  for _, req in ipairs(requests) do
    if req[2] > most then most = req[2] end
  end
  for _, req in ipairs(requests) do
    local item = item_for(task, rule, rule.main, text_token(req[1]), {hits = req[2]})
    if item then items[#items + 1] = item end
  end
  if #items == 0 then return end
  ask_all(task, rule, items, function(done)
    if not scores_of(task, rule, done) then return end
    local total = 0.0
    for _, item in ipairs(done) do total = total + item.score * item.hits / most end
    if math.abs(total) > INSERT_THRESHOLD then add_symbol(task, rule, total) end
  end)
end

local function generic_filter(task, rule)
  local values = rule.closure(task)
  if not values then return end
  if type(values) ~= 'table' then values = {values} end
  for _, value in ipairs(values) do one_token_filter(task, rule, text_token(value)) end
end

local FILTERS = {ip = ip_filter, sender = ip_filter, dkim = dkim_filter, spf = spf_filter,
                 url = url_filter, generic = generic_filter}
local DEPENDENCIES = {dkim = {'DKIM_TRACE'}, spf = {'R_SPF_ALLOW'}}

-- reputation.lua's is_rule_applicable, without its whitelist maps.
local function applies(task, rule)
  if rule.outbound and rule.inbound then return true end
  local ip = task:get_from_ip()
  local outbound = task:get_user() or (ip and ip:is_local())
  if rule.outbound then return outbound and true or false end
  return not outbound
end

local function guarded(callback, rule)
  return function(task)
    if not rule.enabled or not applies(task, rule) then return end
    local ok, err = pcall(callback, task, rule)
    if not ok then warn(task, rule, 'internal error, no symbol: %s', tostring(err)) end
  end
end

-- ---------------------------------------------------------------- configuration

local function parse_rule(name, conf)
  local kind, sel_conf = next(conf.selector or E)
  if not SELECTOR_DEFAULTS[kind] then
    return nil, string.format('unknown selector %s (ip, sender, dkim, spf, url, generic)',
        tostring(kind))
  end
  if kind == 'sender' then kind = 'ip' end
  local bk_type, bk_conf = next(conf.backend or E)
  if bk_type ~= 'repzone' then
    return nil, string.format('backend must be "repzone" { zone = ...; }, not %s',
        tostring(bk_type))
  end
  local cfg = lua_util.override_defaults(SELECTOR_DEFAULTS[kind], sel_conf or E)
  local rule = {
    name = name, kind = kind, enabled = true, suppressed = 0,
    symbol = conf.symbol or cfg.symbol or name,
    split_symbols = cfg.split_symbols and true or false,
    lower_bound = tonumber(cfg.lower_bound),
    reject_score = tonumber(cfg.reject_score) or reject_threshold,
    inbound = cfg.inbound, outbound = cfg.outbound,
    ipv4_mask = tonumber(cfg.ipv4_mask), ipv6_mask = tonumber(cfg.ipv6_mask),
    scores = cfg.scores, max_urls = tonumber(cfg.max_urls),
    max_accept_adjustment = cfg.max_accept_adjustment,
    components = {},
  }
  if not rule.lower_bound then return nil, 'lower_bound must be a number' end
  if not (rule.reject_score > 0) then return nil, 'reject_score must be positive' end
  local main, err = zone_of(bk_conf, kind, 'backend')
  if not main then return nil, err end
  rule.main = main
  if kind == 'ip' then
    for component, comp_conf in pairs(bk_conf.components or E) do
      if component ~= 'asn' and component ~= 'country' then
        return nil, string.format('backend.components: unknown component %s (asn, country)',
            tostring(component))
      end
      local ref, why = zone_of(comp_conf, 'name', 'backend.components.' .. component)
      if not ref then return nil, why end
      rule.components[component] = ref
    end
  elseif bk_conf.components then
    return nil, 'backend.components is for the ip selector only'
  end
  if kind == 'generic' then
    if type(cfg.selector) ~= 'string' then return nil, 'a generic rule needs selector' end
    local lua_selectors = require "lua_selectors"
    rule.closure = lua_selectors.create_selector_closure(rspamd_config, cfg.selector,
        cfg.delimiter)
    if not rule.closure then return nil, 'bad selector: ' .. cfg.selector end
  end
  return rule
end

local function register(rule)
  local id = rspamd_config:register_symbol{
    name = rule.symbol,
    type = rule.split_symbols and 'callback' or 'normal',
    callback = guarded(FILTERS[rule.kind], rule),
    augmentations = {lua_util.dns_timeout_augmentation(rspamd_config)},
  }
  if rule.split_symbols then
    for _, suffix in ipairs({'_HAM', '_SPAM'}) do
      rspamd_config:register_symbol{name = rule.symbol .. suffix, type = 'virtual',
                                    parent = id}
    end
  end
  for _, dep in ipairs(DEPENDENCIES[rule.kind] or E) do
    rspamd_config:register_dependency(rule.symbol, dep)
  end
  if rule.kind == 'dkim' then
    rspamd_config:register_symbol{
      name = rule.symbol .. '_POST',
      type = 'postfilter',
      flags = 'nostat,explicit_disable,ignore_passthrough',
      callback = guarded(dkim_postfilter, rule),
    }
  end
  rspamd_logger.infox(rspamd_config, 'rule %s: %s selector from %s (%s), symbol %s',
      rule.name, rule.kind, rule.main.zone, rule.main.scheme.kind, rule.symbol)
end

local opts = rspamd_config:get_all_opt(N)
if not (opts and type(opts.rules) == 'table') then
  lua_util.disable_module(N, 'config')
  return
end
local enabled = 0
for name, conf in pairs(opts.rules) do
  local ok, rule, err = pcall(parse_rule, name, conf)
  if not ok then rule, err = nil, rule end
  if rule then
    register(rule)
    enabled = enabled + 1
  else
    rspamd_logger.errx(rspamd_config, 'rule %s is disabled: %s', name, err)
  end
end
if enabled == 0 then lua_util.disable_module(N, 'config') end
