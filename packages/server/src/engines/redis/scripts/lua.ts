/**
 * Lua helpers shared by the room scripts, as fragments that a script composes
 * with {@link luaScript}. A script includes only the helpers it calls (each
 * `local function` costs a closure on every call of the script), each once,
 * after the helpers it depends on.
 *
 * Connection hash fields: `.u` user, `.e` epoch, `.j` joinedAt, `.l` lastSeen,
 * `.x` deadline, `.r` reason used when the deadline passes, `.d` disconnectedAt,
 * `.t` when the hash's TTL was last refreshed, `.g` gone (epoch record only).
 * State fields are `=` + the key as JSON text, with the value as JSON text:
 * Lua never decodes state, so values round-trip byte for byte and the size
 * check matches JSON.stringify exactly.
 *
 * Room scripts declare the room keys as KEYS[1] seq, KEYS[2] exp, KEYS[3]
 * tomb, KEYS[4] slot index (all in one hash slot); the helpers reach them
 * through the upvalues of {@link ROOM_KEYS}, which the reaper's slot script
 * re-points at each room it visits. Connection hashes other
 * than a script's target are derived from the room's prefix inside the
 * script: they carry the same `{room:<id>}` tag, so they are in the same slot
 * on a cluster too.
 */

export interface LuaFragment {
  readonly body: string;
  readonly uses: readonly LuaFragment[];
}

function fragment(uses: readonly LuaFragment[], body: string): LuaFragment {
  return { uses, body: body.trim() };
}

/** The helpers `main` uses (and theirs), each once and in dependency order, then `main`. */
export function luaScript(uses: readonly LuaFragment[], main: string): string {
  const seen = new Set<LuaFragment>();
  const parts: string[] = [];
  const add = (f: LuaFragment): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const dep of f.uses) add(dep);
    parts.push(f.body);
  };
  for (const f of uses) add(f);
  parts.push(main.trim());
  return `${parts.join('\n\n')}\n`;
}

/**
 * An integer as decimal text (Lua's `tostring` would give `1.7e+12`).
 *
 * NUM_TEXT: a number a script passes to `redis.call` costs Redis 7.0 a
 * `%.17g` conversion on every call (an eighth to a fifth of a heartbeat's
 * script time when it was three per heartbeat), so hot scripts pass the text they
 * were given (`now`, `keep`) or make a value's text once
 * (`string.format('%.17g', x)`, the same digits) when they write it twice
 * or more. The helpers below take `keep` as a number or as its text: they
 * only give it to PEXPIRE.
 */
export const NUM = fragment([], /* lua */ `
local function num(x) return string.format('%.0f', x) end
`);

/**
 * Publishes one presence event text: SPUBLISH on the room's channel (the
 * room's subscribers on every node), and PUBLISH on one of the deployment's
 * two global channels: `<prefix>leaves` for a leave, `<prefix>events` for
 * every other event. Subscribers of every room's events
 * (`PresenceService.subscribe(listener)`) listen to both, on one connection,
 * so they still get a room's events in order; those that need only leaves
 * (the status bridge, on every node) listen to `leaves` alone and are not
 * sent the joins and updates. Each event is still published once globally
 * (on a Cluster, a classic PUBLISH goes to every shard whoever listens).
 * The global channels' names are the room channel's key prefix + `events` /
 * `leaves`; key prefixes cannot contain `{`.
 */
export const EMIT = fragment([], /* lua */ `
local function emit(channel, event, leave)
  redis.call('SPUBLISH', channel, event)
  redis.call('PUBLISH', string.match(channel, '^(.-){room:') .. (leave and 'leaves' or 'events'), event)
end
`);

/** Builds and publishes one presence event; `tail` is the event's last fields as JSON text, with a leading comma. */
export const PUBLISH = fragment([NUM, EMIT], /* lua */ `
local function publish(channel, kind, room, user, conn, ts, epoch, seq, tail)
  emit(channel, '{"type":"' .. kind .. '","roomId":' .. cjson.encode(room) .. ',"userId":' .. cjson.encode(user) ..
    ',"connId":' .. cjson.encode(conn) .. ',"ts":' .. num(ts) .. ',"epoch":' .. num(epoch) .. ',"seq":' .. num(seq) .. tail .. '}', kind == 'leave')
end
`);

/** The state fields of a flat HGETALL reply as a JSON object text. */
export const STATE_JSON = fragment([], /* lua */ `
local function state_json(flat)
  local parts = {}
  for i = 1, #flat, 2 do
    local f = flat[i]
    if string.byte(f, 1) == 61 then parts[#parts + 1] = string.sub(f, 2) .. ':' .. flat[i + 1] end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end
`);

/**
 * The room keys the helpers below work on: the declared KEYS of a room
 * script. A script that visits several rooms of one slot (reap-slot) assigns
 * them per room; the helpers see the new values (shared upvalues).
 */
export const ROOM_KEYS = fragment([], /* lua */ `
local seq_k, exp_k, tomb_k, idx_k = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
`);

/** What a batch of room writes runs before each write (`batchOf`'s `perWrite`): the helpers' room keys become that write's. */
export const REPOINT_ROOM_KEYS = 'seq_k, exp_k, tomb_k, idx_k = k[1], k[2], k[3], k[4]';

/**
 * Ends a connection: its hash becomes an epoch record (user, epoch, gone) kept
 * `keep` ms, it moves from exp to tomb (forgotten after the lookback), and its
 * leave event is published.
 */
export const END_CONN = fragment([ROOM_KEYS, PUBLISH], /* lua */ `
local function end_conn(ck, conn, user, epoch, reason, room, channel, now, lookback, keep)
  redis.call('DEL', ck)
  redis.call('HSET', ck, '.u', user, '.e', epoch, '.g', '1')
  redis.call('PEXPIRE', ck, keep)
  redis.call('ZREM', exp_k, conn)
  redis.call('ZADD', tomb_k, now + lookback, conn)
  local seq = redis.call('INCR', seq_k)
  publish(channel, 'leave', room, user, conn, now, epoch, seq, ',"reason":"' .. reason .. '"')
end
`);

/**
 * Refreshes the room keys' TTLs and this room's entry in its slot's reaper
 * index (score: the room's earliest deadline over exp and tomb), or deletes
 * the room keys when both are empty. Returns the new earliest deadline as
 * text when it lowered the slot's minimum (the caller then lowers the global
 * hint), else false.
 */
export const TOUCH_ROOM = fragment([ROOM_KEYS, NUM], /* lua */ `
local function touch_room(room, keep)
  local e = redis.call('ZRANGE', exp_k, 0, 0, 'WITHSCORES')
  local t = redis.call('ZRANGE', tomb_k, 0, 0, 'WITHSCORES')
  local earliest = false
  if e[2] then earliest = tonumber(e[2]) end
  if t[2] and (not earliest or tonumber(t[2]) < earliest) then earliest = tonumber(t[2]) end
  local before = redis.call('ZRANGE', idx_k, 0, 0, 'WITHSCORES')
  if earliest then
    redis.call('ZADD', idx_k, earliest, room)
    redis.call('PEXPIRE', idx_k, keep)
    redis.call('PEXPIRE', seq_k, keep)
    redis.call('PEXPIRE', exp_k, keep)
    redis.call('PEXPIRE', tomb_k, keep)
  else
    redis.call('ZREM', idx_k, room)
    redis.call('DEL', seq_k, exp_k, tomb_k)
  end
  if earliest and (not before[2] or earliest < tonumber(before[2])) then return num(earliest) end
  return false
end
`);

/**
 * {@link TOUCH_ROOM} for a script that only added deadlines no earlier than
 * `score` (a join's or resume's new deadline, a leave's epoch record): when
 * the room's index entry is already at or before `score`, it stays as it is
 * (early is always safe: the reaper re-scores a room that comes due early,
 * as after heartbeats) and only the TTLs are refreshed, one call instead of
 * three ZRANGEs and a ZADD. Otherwise (no entry, or a later one) the full
 * touch. Returns what TOUCH_ROOM returns.
 */
export const TOUCH_ADDED = fragment([ROOM_KEYS, TOUCH_ROOM], /* lua */ `
local function touch_added(room, keep, score)
  local cur = redis.call('ZSCORE', idx_k, room)
  if not cur or tonumber(cur) > score then return touch_room(room, keep) end
  redis.call('PEXPIRE', idx_k, keep)
  redis.call('PEXPIRE', seq_k, keep)
  redis.call('PEXPIRE', exp_k, keep)
  redis.call('PEXPIRE', tomb_k, keep)
  return false
end
`);

/** Live connections (deadline after `now`) in the room's exp zset `exp`, as a flat list: connId, HGETALL of its hash, ... */
export const READ_ROWS = fragment([NUM], /* lua */ `
local function read_rows(exp, prefix, now)
  local ids = redis.call('ZRANGEBYSCORE', exp, '(' .. num(now), '+inf')
  local rows = {}
  for i = 1, #ids do
    rows[#rows + 1] = ids[i]
    rows[#rows + 1] = redis.call('HGETALL', prefix .. ids[i])
  end
  return rows
end
`);
