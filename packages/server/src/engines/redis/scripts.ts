/**
 * Lua scripts of the Redis engine. Each command is one script: the state
 * change and its event (SPUBLISH from inside the script) are atomic, so the
 * order of events on a room's channel is the order of its state changes.
 *
 * Room scripts declare the room keys and the slot index key (all in one hash
 * slot). Connection hashes other than the target are derived from the room's
 * prefix inside the script: they carry the same `{room:<id>}` tag, so they
 * are in the same slot on a cluster too.
 *
 * Connection hash fields: `.u` user, `.e` epoch, `.j` joinedAt, `.l` lastSeen,
 * `.x` deadline, `.r` reason used when the deadline passes, `.d` disconnectedAt,
 * `.g` gone (epoch record only). State fields are `=` + the key as JSON text,
 * with the value as JSON text: Lua never decodes state, so values round-trip
 * byte for byte and the size check matches JSON.stringify exactly.
 */

const PRELUDE = /* lua */ `
local function num(x) return string.format('%.0f', x) end
local function jstr(s) return cjson.encode(s) end

local function state_json(flat)
  local parts = {}
  for i = 1, #flat, 2 do
    local f = flat[i]
    if string.byte(f, 1) == 61 then parts[#parts + 1] = string.sub(f, 2) .. ':' .. flat[i + 1] end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function publish(channel, kind, room, user, conn, ts, epoch, seq, tail)
  redis.call('SPUBLISH', channel, '{"type":"' .. kind .. '","roomId":' .. jstr(room) .. ',"userId":' .. jstr(user) ..
    ',"connId":' .. jstr(conn) .. ',"ts":' .. num(ts) .. ',"epoch":' .. num(epoch) .. ',"seq":' .. num(seq) .. tail .. '}')
end

-- KEYS[1] seq, KEYS[2] exp, KEYS[3] tomb, KEYS[4] slot index
local function end_conn(ck, conn, user, epoch, reason, room, channel, now, lookback, keep)
  redis.call('DEL', ck)
  redis.call('HSET', ck, '.u', user, '.e', epoch, '.g', '1')
  redis.call('PEXPIRE', ck, keep)
  redis.call('ZREM', KEYS[2], conn)
  redis.call('ZADD', KEYS[3], now + lookback, conn)
  local seq = redis.call('INCR', KEYS[1])
  publish(channel, 'leave', room, user, conn, now, epoch, seq, ',"reason":"' .. reason .. '"')
end

-- Refreshes TTLs and this room's entry in its slot's reaper index. Returns the
-- new earliest deadline when it lowered the slot's minimum (the caller then
-- lowers the global hint), else false.
local function touch_room(room, keep)
  local e = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local t = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local earliest = false
  if e[2] then earliest = tonumber(e[2]) end
  if t[2] and (not earliest or tonumber(t[2]) < earliest) then earliest = tonumber(t[2]) end
  local before = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if earliest then
    redis.call('ZADD', KEYS[4], earliest, room)
    redis.call('PEXPIRE', KEYS[4], keep)
    redis.call('PEXPIRE', KEYS[1], keep)
    redis.call('PEXPIRE', KEYS[2], keep)
    redis.call('PEXPIRE', KEYS[3], keep)
  else
    redis.call('ZREM', KEYS[4], room)
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  end
  if earliest and (not before[2] or earliest < tonumber(before[2])) then return num(earliest) end
  return false
end

local function read_rows(prefix, now)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. num(now), '+inf')
  local rows = {}
  for i = 1, #ids do
    rows[#rows + 1] = ids[i]
    rows[#rows + 1] = redis.call('HGETALL', prefix .. ids[i])
  end
  return rows
end
`;

/** KEYS: seq exp tomb slotIndex resumeKey freshKey. ARGV: room user resumeId freshId now ttl lookback keep channel prefix hasState [field json]... */
export const JOIN = /* lua */ `${PRELUDE}
local room, user, resume_id, fresh_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl, lookback, keep = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local channel, prefix, has_state = ARGV[9], ARGV[10], ARGV[11] == '1'
local ck, conn, epoch, mode = KEYS[6], fresh_id, 1, 'new'
if resume_id ~= '' then
  local m = redis.call('HMGET', KEYS[5], '.u', '.e', '.g', '.x', '.r')
  if m[1] then
    if m[1] ~= user then return {'forbidden'} end
    ck, conn = KEYS[5], resume_id
    epoch = tonumber(m[2]) + 1
    if m[3] then
      mode = 'rejoined'
    elseif tonumber(m[4]) > now then
      mode = 'resumed'
    else
      -- Expired but not reaped yet: the old incarnation leaves first, exactly once.
      end_conn(ck, conn, user, epoch - 1, m[5] or 'timeout', room, channel, now, lookback, keep)
      mode = 'rejoined'
    end
  end
end
local deadline = now + ttl
if mode == 'resumed' then
  if has_state then
    local flat = redis.call('HGETALL', ck)
    for i = 1, #flat, 2 do
      if string.byte(flat[i], 1) == 61 then redis.call('HDEL', ck, flat[i]) end
    end
    if #ARGV > 11 then redis.call('HSET', ck, unpack(ARGV, 12)) end
  end
  redis.call('HSET', ck, '.e', epoch, '.l', now, '.x', deadline, '.r', 'timeout')
  redis.call('HDEL', ck, '.d')
else
  redis.call('DEL', ck)
  redis.call('ZREM', KEYS[3], conn)
  redis.call('HSET', ck, '.u', user, '.e', epoch, '.j', now, '.l', now, '.x', deadline, '.r', 'timeout')
  if #ARGV > 11 then redis.call('HSET', ck, unpack(ARGV, 12)) end
end
redis.call('HSET', ck, '.t', now)
redis.call('PEXPIRE', ck, keep)
redis.call('ZADD', KEYS[2], deadline, conn)
local seq = redis.call('INCR', KEYS[1])
local kind = 'join'
if mode == 'resumed' then kind = 'update' end
publish(channel, kind, room, user, conn, now, epoch, seq, ',"state":' .. state_json(redis.call('HGETALL', ck)))
local lowered = touch_room(room, keep)
return {'ok', conn, epoch, mode, seq, lowered or '', read_rows(prefix, now)}
`;

/**
 * The hot path (a heartbeat every TTL/3 per connection), kept lean: it
 * declares only the connection hash and the deadline zset, reads three fields,
 * and creates no Lua closures unless it takes a rare branch (a patch, or
 * expiry found on the way). Other keys of the room are derived from the room
 * prefix: they carry the same `{room:<id>}` tag, so they are in this slot.
 * The room's entry in the reaper index is left as it is: a heartbeat only
 * moves a deadline later, so the entry stays early (never late); when it
 * comes due, the reaper re-scores the room and refreshes its keys' TTLs.
 *
 * Arguments are kept few and short (this runs tens of thousands of times a
 * second, and command bytes cost CPU on both sides): the connection hash is
 * the room prefix + `c:` + connId, and the room id is read back from the
 * prefix (ids cannot contain '}', so the match is exact).
 *
 * KEYS: exp. ARGV: roomPrefix conn epoch now ttl lookback keep maxBytes [field json|'']...
 * Returns the epoch (integer) on success, else an error code string.
 */
export const HEARTBEAT = /* lua */ `
local exp = KEYS[1]
local ck = ARGV[1] .. 'c:' .. ARGV[2]
local epoch, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local m = redis.call('HMGET', ck, '.e', '.x', '.d', '.t')
if not m[1] then return 'not_joined' end
if tonumber(m[1]) ~= epoch then return 'stale_epoch' end
if not m[2] then return 'not_joined' end
if tonumber(m[2]) <= now then
  -- Expired but not reaped yet: it leaves now, exactly once (the reaper then finds an epoch record).
  local prefix, conn = ARGV[1], ARGV[2]
  local room = string.match(prefix, '{room:(.*)}:$')
  local lookback, keep = tonumber(ARGV[6]), tonumber(ARGV[7])
  local u = redis.call('HMGET', ck, '.u', '.r')
  redis.call('DEL', ck)
  redis.call('HSET', ck, '.u', u[1], '.e', epoch, '.g', '1')
  redis.call('PEXPIRE', ck, keep)
  redis.call('ZREM', exp, conn)
  redis.call('ZADD', prefix .. 'tomb', now + lookback, conn)
  redis.call('PEXPIRE', prefix .. 'tomb', keep)
  local seq = redis.call('INCR', prefix .. 'seq')
  redis.call('PEXPIRE', prefix .. 'seq', keep)
  redis.call('SPUBLISH', prefix .. 'ev', '{"type":"leave","roomId":' .. cjson.encode(room) .. ',"userId":' .. cjson.encode(u[1]) ..
    ',"connId":' .. cjson.encode(conn) .. ',"ts":' .. string.format('%.0f', now) .. ',"epoch":' .. string.format('%.0f', epoch) ..
    ',"seq":' .. string.format('%.0f', seq) .. ',"reason":"' .. (u[2] or 'timeout') .. '"}')
  return 'not_joined'
end
if m[3] then return 'disconnected' end
local deadline = now + tonumber(ARGV[5])
if #ARGV > 8 then
  local flat = redis.call('HGETALL', ck)
  local state, count, size = {}, 0, 2
  for i = 1, #flat, 2 do
    if string.byte(flat[i], 1) == 61 then state[flat[i]] = flat[i + 1] end
  end
  for i = 9, #ARGV, 2 do
    if ARGV[i + 1] == '' then state[ARGV[i]] = nil else state[ARGV[i]] = ARGV[i + 1] end
  end
  local parts = {}
  for f, v in pairs(state) do
    size = size + #f + #v
    count = count + 1
    parts[count] = string.sub(f, 2) .. ':' .. v
  end
  if count > 1 then size = size + count - 1 end
  if size > tonumber(ARGV[8]) then return 'payload_too_large:' .. size end
  for i = 9, #ARGV, 2 do
    if ARGV[i + 1] == '' then redis.call('HDEL', ck, ARGV[i]) else redis.call('HSET', ck, ARGV[i], ARGV[i + 1]) end
  end
  local prefix = ARGV[1]
  local seq = redis.call('INCR', prefix .. 'seq')
  redis.call('PEXPIRE', prefix .. 'seq', tonumber(ARGV[7]))
  redis.call('SPUBLISH', prefix .. 'ev', '{"type":"update","roomId":' .. cjson.encode(string.match(prefix, '{room:(.*)}:$')) .. ',"userId":' ..
    cjson.encode(redis.call('HGET', ck, '.u')) .. ',"connId":' .. cjson.encode(ARGV[2]) .. ',"ts":' .. string.format('%.0f', now) ..
    ',"epoch":' .. string.format('%.0f', epoch) .. ',"seq":' .. string.format('%.0f', seq) .. ',"state":{' .. table.concat(parts, ',') .. '}}')
end
-- The hash lives keep ms (TTL + lookback + slack); refreshing it once a third
-- of that has passed is enough, and saves a call on most heartbeats.
local keep = tonumber(ARGV[7])
if not m[4] or now - tonumber(m[4]) >= keep / 3 then
  redis.call('HSET', ck, '.l', now, '.x', deadline, '.t', now)
  redis.call('PEXPIRE', ck, keep)
else
  redis.call('HSET', ck, '.l', now, '.x', deadline)
end
redis.call('ZADD', exp, deadline, ARGV[2])
return epoch
`;

/** KEYS: seq exp tomb slotIndex connKey. ARGV: room conn epoch now lookback keep channel reason */
export const LEAVE = /* lua */ `${PRELUDE}
local room, conn, epoch = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now, lookback, keep, channel, reason = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local ck = KEYS[5]
local m = redis.call('HMGET', ck, '.u', '.e', '.g', '.x', '.r')
if not m[1] then return {'not_joined'} end
if tonumber(m[2]) ~= epoch then return {'stale_epoch'} end
if m[3] then return {'ok', epoch} end
if tonumber(m[4]) <= now then
  end_conn(ck, conn, m[1], epoch, m[5] or 'timeout', room, channel, now, lookback, keep)
  touch_room(room, keep)
  return {'not_joined'}
end
end_conn(ck, conn, m[1], epoch, reason, room, channel, now, lookback, keep)
touch_room(room, keep)
return {'ok', epoch}
`;

/** KEYS: seq exp tomb slotIndex connKey. ARGV: room conn epoch now lookback keep channel grace */
export const DISCONNECT = /* lua */ `${PRELUDE}
local room, conn, epoch = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now, lookback, keep, channel, grace = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local ck = KEYS[5]
local m = redis.call('HMGET', ck, '.u', '.e', '.g', '.x', '.r', '.d')
if not m[1] then return {'not_joined'} end
if tonumber(m[2]) ~= epoch then return {'stale_epoch'} end
if m[3] then return {'not_joined'} end
if tonumber(m[4]) <= now then
  end_conn(ck, conn, m[1], epoch, m[5] or 'timeout', room, channel, now, lookback, keep)
  touch_room(room, keep)
  return {'not_joined'}
end
if not m[6] then
  redis.call('HSET', ck, '.d', now)
  local grace_end = now + grace
  if grace_end < tonumber(m[4]) then
    redis.call('HSET', ck, '.x', grace_end, '.r', 'disconnect')
    redis.call('ZADD', KEYS[2], grace_end, conn)
  end
end
local lowered = touch_room(room, keep)
return {'ok', epoch, lowered or ''}
`;

/** KEYS: seq exp. ARGV: now prefix */
export const SNAPSHOT = /* lua */ `${PRELUDE}
return {redis.call('GET', KEYS[1]) or '0', read_rows(ARGV[2], tonumber(ARGV[1]))}
`;

/**
 * Expires due connections of one room and forgets old epoch records.
 * KEYS: seq exp tomb slotIndex. ARGV: room now lookback keep channel prefix limit
 * Returns {leaves, more}.
 */
export const REAP_ROOM = /* lua */ `${PRELUDE}
local room, now, lookback, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local channel, prefix, limit = ARGV[5], ARGV[6], tonumber(ARGV[7])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', num(now), 'LIMIT', 0, limit)
local leaves = 0
for i = 1, #due do
  local ck = prefix .. due[i]
  local m = redis.call('HMGET', ck, '.u', '.e', '.g', '.r')
  if m[1] and not m[3] then
    end_conn(ck, due[i], m[1], tonumber(m[2]), m[4] or 'timeout', room, channel, now, lookback, keep)
    leaves = leaves + 1
  else
    redis.call('ZREM', KEYS[2], due[i])
  end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', num(now), 'LIMIT', 0, limit)
for i = 1, #old do
  local ck = prefix .. old[i]
  if redis.call('HGET', ck, '.g') then redis.call('DEL', ck) end
  redis.call('ZREM', KEYS[3], old[i])
end
touch_room(room, keep)
local more = 0
if #due == limit or #old == limit then more = 1 end
return {leaves, more}
`;

/** Claims a due slot of the hint for this reaper. KEYS: hint. ARGV: slot observedScore claimScore */
export const CLAIM_SLOT = /* lua */ `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
`;

/**
 * Releases a claim. If no writer touched the entry since the claim, it gets
 * the slot's new minimum (or is removed when the slot is empty); if a writer
 * lowered it meanwhile, the lower of the two wins.
 * KEYS: hint. ARGV: slot claimScore newMin|''
 */
export const FINISH_SLOT = /* lua */ `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
elseif ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[1], 'LT', ARGV[3], ARGV[1])
end
return 1
`;
