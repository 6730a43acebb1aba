/**
 * Lua helpers of the status scripts: the model of core/status/model.ts and
 * transitions.ts written again in Lua, so that a write, its change detection
 * and its event are one atomic step. The conformance suite holds this and the
 * memory store to the same answers.
 *
 * Record hash fields: `v` version (per write), `seq` (per event), `n` live
 * presence connections, `ka` keep-alive until, `ms`/`mx` manual status and
 * its expiry, `m`/`mmx` message and its expiry, `ls` lastSeen, `la` last
 * activity, `ua` updatedAt, `nd` nodeId, `ps`/`pm` the effective status and
 * message of the last event (changes are measured against them), `due` the
 * user's score in its slot's deadline index.
 */
import { luaScript, NUM, type LuaFragment } from './lua.js';
import { LOG } from './log-lua.js';

export { luaScript };

const fragment = (uses: readonly LuaFragment[], body: string): LuaFragment => ({ uses, body: body.trim() });

const NUMERIC = ['v', 'seq', 'n', 'ka', 'mx', 'mmx', 'ls', 'la', 'ua', 'due'];
const FIELDS = ['v', 'seq', 'n', 'ka', 'ms', 'mx', 'm', 'mmx', 'ls', 'la', 'ua', 'nd', 'ps', 'pm', 'due'];

/** Loading, the model's predicates, the record's JSON, and saving with change detection, deadline and feed message. */
export const STATUS = fragment([NUM, LOG], /* lua */ `
local ST_NUMERIC = { ${NUMERIC.map((f) => `${f} = true`).join(', ')} }
local ST_FIELDS = { ${FIELDS.map((f) => `'${f}'`).join(', ')} }

local function st_load(k)
  local flat = redis.call('HGETALL', k)
  local s = {}
  for i = 1, #flat, 2 do
    if ST_NUMERIC[flat[i]] then s[flat[i]] = tonumber(flat[i + 1]) else s[flat[i]] = flat[i + 1] end
  end
  return s
end

local function st_active(until_, now) return until_ == nil or until_ > now end
local function st_connected(s, now) return (s.n or 0) > 0 or (s.ka ~= nil and s.ka > now) end
local function st_manual(s, now)
  if s.ms ~= nil and st_active(s.mx, now) then return s.ms end
  return nil
end

local function st_eff(s, now, away)
  local msg = nil
  if s.m ~= nil and st_active(s.mmx, now) then msg = s.m end
  if not st_connected(s, now) then return 'offline', msg end
  local manual = st_manual(s, now)
  if manual then return manual, msg end
  if away > 0 and s.la ~= nil and now - s.la >= away then return 'away', msg end
  return 'online', msg
end

local function st_next(s, now, away)
  local nxt = nil
  local function consider(t) if t ~= nil and t > now and (nxt == nil or t < nxt) then nxt = t end end
  consider(s.ka)
  if s.ms ~= nil then consider(s.mx) end
  if s.m ~= nil then consider(s.mmx) end
  if away > 0 and s.la ~= nil and st_connected(s, now) then consider(s.la + away) end
  return nxt
end

local function st_or_null(x) if x == nil then return 'null' end return num(x) end

local function st_record(user, s, now, away)
  local status, msg = st_eff(s, now, away)
  local manual = st_manual(s, now)
  local visible = st_connected(s, now) and manual ~= 'offline'
  local ls = s.ls
  if visible then ls = now end
  return '{"userId":' .. cjson.encode(user) .. ',"status":"' .. status .. '","message":' .. (msg and cjson.encode(msg) or 'null') ..
    ',"manual":' .. (manual and 'true' or 'false') .. ',"expiresAt":' .. (manual and st_or_null(s.mx) or 'null') ..
    ',"messageExpiresAt":' .. (msg and st_or_null(s.mmx) or 'null') .. ',"lastSeen":' .. st_or_null(ls) ..
    ',"updatedAt":' .. st_or_null(s.ua) .. ',"nodeId":' .. (s.nd and cjson.encode(s.nd) or 'null') .. ',"seq":' .. num(s.seq or 0) .. '}'
end

-- Saves s (its version already bumped), publishes the feed message (with the
-- status event when the effective status or message changed since the last
-- event, and \`note\`: more fields of the message as JSON text), appends the event to the backend log (when \`log\` is on), and
-- moves the user in its slot's deadline index. Returns evented (0/1) and the
-- index's new minimum as text when it went lower, else ''.
local function st_save(k, idx, user, s, now, away, channel, keep, log, note)
  local status, msg = st_eff(s, now, away)
  local event = nil
  if status ~= (s.ps or 'offline') or (msg or '') ~= (s.pm or '') then
    s.seq = (s.seq or 0) + 1
    s.ps = status
    s.pm = msg
    event = st_record(user, s, now, away)
  end
  local due = st_next(s, now, away)
  local lowered = ''
  if due ~= s.due then
    if due then
      local first = redis.call('ZRANGE', idx, 0, 0, 'WITHSCORES')
      redis.call('ZADD', idx, due, user)
      redis.call('PEXPIRE', idx, keep)
      if not first[2] or due < tonumber(first[2]) then lowered = num(due) end
    else
      redis.call('ZREM', idx, user)
    end
    s.due = due
  end
  local set, del = {}, {}
  for _, f in ipairs(ST_FIELDS) do
    local x = s[f]
    if x == nil then del[#del + 1] = f
    else
      set[#set + 1] = f
      if type(x) == 'number' then set[#set + 1] = num(x) else set[#set + 1] = x end
    end
  end
  if #del > 0 then redis.call('HDEL', k, unpack(del)) end
  redis.call('HSET', k, unpack(set))
  redis.call('PEXPIRE', k, keep)
  redis.call('PUBLISH', channel, '{"u":' .. cjson.encode(user) .. ',"v":' .. num(s.v) .. (event and (',"e":' .. event) or '') .. (note or '') .. '}')
  if event and log then log_append(log, user, 'kind', 'status', 'user', user, 'seq', num(s.seq), 'record', event, 'ts', num(now)) end
  if event then return 1, lowered end
  return 0, lowered
end
`);
