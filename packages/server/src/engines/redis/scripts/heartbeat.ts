import type { HeartbeatCommand } from '../../../core/presence/engine.js';
import { MalformedReplyError, keepMs, replyArray, type Script, type ScriptArg } from './script.js';

/**
 * Shaped so that every member is a `WriteOutcome`: the engine hands the reply
 * on as it is, and the common reply (`ok`) costs one object, as before.
 */
export type HeartbeatReply =
  | { ok: true; epoch: number }
  | { ok: false; code: 'stale_epoch' }
  /** `message` is set when the connection is in disconnect grace (it must be resumed, not heartbeated). */
  | { ok: false; code: 'not_joined'; message?: string }
  | { ok: false; code: 'payload_too_large'; bytes: number; message: string };

const TOO_LARGE = 'payload_too_large:';

/**
 * The checks of one heartbeat, and the leave of a connection found expired
 * (not reaped yet: it leaves now, exactly once; the reaper then finds an
 * epoch record). Returns a code, or falls through with `m` (the hash's
 * fields) set. Locals it expects: exp rp ck conn epoch now ttl lookback keep.
 */
const CHECK = /* lua */ `
local m = redis.call('HMGET', ck, '.e', '.x', '.d', '.t')
if not m[1] then return 'not_joined' end
if tonumber(m[1]) ~= epoch then return 'stale_epoch' end
if not m[2] then return 'not_joined' end
if tonumber(m[2]) <= now then
  local room = string.match(rp, '{room:(.*)}:$')
  local u = redis.call('HMGET', ck, '.u', '.r')
  redis.call('DEL', ck)
  redis.call('HSET', ck, '.u', u[1], '.e', epoch, '.g', '1')
  redis.call('PEXPIRE', ck, keep)
  redis.call('ZREM', exp, conn)
  redis.call('ZADD', rp .. 'tomb', now + lookback, conn)
  redis.call('PEXPIRE', rp .. 'tomb', keep)
  local seq = redis.call('INCR', rp .. 'seq')
  redis.call('PEXPIRE', rp .. 'seq', keep)
  local ev = '{"type":"leave","roomId":' .. cjson.encode(room) .. ',"userId":' .. cjson.encode(u[1]) ..
    ',"connId":' .. cjson.encode(conn) .. ',"ts":' .. string.format('%.0f', now) .. ',"epoch":' .. string.format('%.0f', epoch) ..
    ',"seq":' .. string.format('%.0f', seq) .. ',"reason":"' .. (u[2] or 'timeout') .. '"}'
  redis.call('SPUBLISH', rp .. 'ev', ev)
  redis.call('PUBLISH', string.match(rp, '^(.-){room:') .. 'leaves', ev)
  return 'not_joined'
end
if m[3] then return 'disconnected' end
`;

/**
 * `now` and the new deadline as the text REFRESH writes, made once per
 * call: Redis 7.0 turns every Lua number given to `redis.call` into text
 * with `%.17g`, and three such conversions per heartbeat were an eighth to
 * a fifth of its time in the batch script (bench/redis-script-cost.mjs:
 * 14-15 µs per heartbeat against 10.5-12.7 with the text made once). `now` is the argument's own text.
 * Locals it expects: now ttl; `nowArg` the ARGV index of `now`.
 */
const TIMES = (nowArg: number): string => /* lua */ `
local now_s, deadline = ARGV[${nowArg}], now + ttl
local deadline_s = string.format('%.17g', deadline)
`;

/**
 * The write of a live connection's heartbeat: the new deadline, and once per
 * `keep / 3` per connection the TTLs of the hash, the room keys and the
 * slot index (see {@link heartbeat}). Locals it expects: those of CHECK and
 * TIMES, and sidx (the slot index key). Returns the epoch.
 */
const REFRESH = /* lua */ `
if not m[4] or now - tonumber(m[4]) >= keep / 3 then
  redis.call('HSET', ck, '.l', now_s, '.x', deadline_s, '.t', now_s)
  redis.call('PEXPIRE', ck, keep)
  redis.call('PEXPIRE', exp, keep)
  redis.call('PEXPIRE', rp .. 'seq', keep)
  redis.call('PEXPIRE', rp .. 'tomb', keep)
  -- NX: an entry that is there is early or exact; a missing one (its index
  -- expired while no reaper ran) comes back due now, and the reaper re-scores it.
  redis.call('ZADD', sidx, 'NX', now_s, string.match(rp, '{room:(.*)}:$'))
  redis.call('PEXPIRE', sidx, keep)
else
  redis.call('HSET', ck, '.l', now_s, '.x', deadline_s)
end
redis.call('ZADD', exp, deadline_s, conn)
return epoch
`;

/**
 * The hot path (a heartbeat every TTL/3 per connection), kept lean: it
 * declares only the deadline zset, reads four fields, and creates no Lua
 * closures (it composes no helpers: the rare expiry branch writes out what
 * `end_conn` does). Other keys of the room are derived from the room prefix:
 * they carry the same `{room:<id>}` tag, so they are in this slot. The room's
 * entry in the reaper index is left as it is: a heartbeat only moves a
 * deadline later, so the entry stays early (never late); when it comes due,
 * the reaper re-scores the room (cheaper in total than moving the entry on
 * every heartbeat: see docs/presence-model.md).
 *
 * Once per `keep / 3` per connection (the branch that refreshes the hash's
 * TTL) it also refreshes the TTLs of the room keys (seq, exp, tomb) and of
 * the slot index, and puts the room back into the index if it is missing.
 * So a room's keys never expire while a member heartbeats, however far
 * behind the reaper is, and its `seq` never restarts while it has live
 * members.
 *
 * Arguments are kept few and short (this runs tens of thousands of times a
 * second, and command bytes cost CPU on both sides): the connection hash is
 * the room prefix + `c:` + connId, and the room id is read back from the
 * prefix (ids cannot contain '}', so the match is exact).
 *
 * KEYS: exp slotIndex (the room prefix is exp without 'exp'). ARGV: conn epoch now ttl lookback keep maxBytes [field json|'']...
 * Reply: the epoch (integer), or 'stale_epoch' | 'not_joined' | 'disconnected' | 'payload_too_large:<bytes>'.
 */
export const heartbeat: Script<HeartbeatCommand, HeartbeatReply> = {
  command: 'rmHeartbeat',
  numberOfKeys: 2,
  lua: /* lua */ `
local exp, sidx = KEYS[1], KEYS[2]
-- The room prefix is the exp key without 'exp' (saves an argument on every heartbeat).
local rp = string.sub(exp, 1, -4)
local conn = ARGV[1]
local ck = rp .. 'c:' .. conn
local epoch, now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lookback, keep = tonumber(ARGV[5]), tonumber(ARGV[6])
${TIMES(3)}
${CHECK}
if #ARGV > 7 then
  local flat = redis.call('HGETALL', ck)
  local state, count, size = {}, 0, 2
  for i = 1, #flat, 2 do
    if string.byte(flat[i], 1) == 61 then state[flat[i]] = flat[i + 1] end
  end
  for i = 8, #ARGV, 2 do
    if ARGV[i + 1] == '' then state[ARGV[i]] = nil else state[ARGV[i]] = ARGV[i + 1] end
  end
  local parts = {}
  for f, v in pairs(state) do
    size = size + #f + #v
    count = count + 1
    parts[count] = string.sub(f, 2) .. ':' .. v
  end
  if count > 1 then size = size + count - 1 end
  if size > tonumber(ARGV[7]) then return 'payload_too_large:' .. size end
  -- The event carries the patch too (sockets that asked for patches get only it): JSON text as it came.
  local patch = {}
  for i = 8, #ARGV, 2 do
    local v = ARGV[i + 1]
    if v == '' then
      redis.call('HDEL', ck, ARGV[i])
      v = 'null'
    else
      redis.call('HSET', ck, ARGV[i], v)
    end
    patch[#patch + 1] = string.sub(ARGV[i], 2) .. ':' .. v
  end
  local prefix = rp
  local seq = redis.call('INCR', prefix .. 'seq')
  redis.call('PEXPIRE', prefix .. 'seq', keep)
  local ev = '{"type":"update","roomId":' .. cjson.encode(string.match(prefix, '{room:(.*)}:$')) .. ',"userId":' ..
    cjson.encode(redis.call('HGET', ck, '.u')) .. ',"connId":' .. cjson.encode(ARGV[1]) .. ',"ts":' .. string.format('%.0f', now) ..
    ',"epoch":' .. string.format('%.0f', epoch) .. ',"seq":' .. string.format('%.0f', seq) .. ',"state":{' .. table.concat(parts, ',') .. '},"patch":{' .. table.concat(patch, ',') .. '}}'
  redis.call('SPUBLISH', prefix .. 'ev', ev)
  redis.call('PUBLISH', string.match(prefix, '^(.-){room:') .. 'events', ev)
end
-- The hash and the room keys live keep ms (TTL + lookback + slack);
-- refreshing them once a third of that has passed is enough (a live member
-- heartbeats at least once per TTL), and saves the calls on most heartbeats.
${REFRESH}
`,
  args(cmd, ctx) {
    const k = ctx.keys.room(cmd.roomId);
    const args: ScriptArg[] = [k.exp, k.slotIndex, cmd.connId, cmd.epoch, cmd.now, cmd.ttlMs, cmd.lookbackMs, keepMs(cmd, ctx), cmd.maxStateBytes];
    if (cmd.patch) for (const [key, v] of cmd.patch) args.push('=' + JSON.stringify(key), v ?? '');
    return args;
  },
  decode(reply, cmd) {
    if (typeof reply === 'number') return { ok: true, epoch: reply };
    switch (reply) {
      case 'stale_epoch':
        return { ok: false, code: 'stale_epoch' };
      case 'not_joined':
        return { ok: false, code: 'not_joined' };
      case 'disconnected':
        return { ok: false, code: 'not_joined', message: 'connection was disconnected; join again with its connId to resume' };
    }
    if (typeof reply === 'string' && reply.startsWith(TOO_LARGE)) {
      const bytes = Number(reply.slice(TOO_LARGE.length));
      if (Number.isSafeInteger(bytes)) {
        return { ok: false, code: 'payload_too_large', bytes, message: `state after the patch would be ${bytes} bytes; the limit is ${cmd.maxStateBytes}` };
      }
    }
    throw new MalformedReplyError('heartbeat', 'expected an epoch or an error code', reply);
  },
};

/** Most heartbeats one batch call carries: bounds the time it holds Redis (a heartbeat is a few µs of script time). */
export const MAX_HEARTBEAT_BATCH = 100;

/**
 * Several heartbeats without a patch in one script call: the same checks and
 * writes as {@link heartbeat} for each, in order, one reply per heartbeat.
 * What the batch saves is per call, not per heartbeat: one command to encode,
 * send, run and answer instead of one per heartbeat, and the arguments every
 * heartbeat shares (`now`, TTL, lookback, keep) sent once. `now` is the
 * latest of the batch's (they were received within one event-loop turn, at
 * most a few ms apart: each connection's heartbeat counts as received at that
 * moment). On a Cluster every key of a call must be in one slot, so only
 * heartbeats of rooms of one slot go together (see WriteBatcher); on a
 * single Redis any may.
 *
 * KEYS: (exp slotIndex) per heartbeat. ARGV: now ttl lookback keep, then (conn epoch) per heartbeat.
 * Reply: an array of what {@link heartbeat} replies, in order.
 */
export const heartbeatBatch: Script<readonly HeartbeatCommand[], HeartbeatReply[]> = {
  command: 'rmHeartbeatBatch',
  numberOfKeys: null,
  lua: /* lua */ `
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local lookback, keep = tonumber(ARGV[3]), tonumber(ARGV[4])
${TIMES(1)}
local function hb(exp, sidx, conn, epoch)
  local rp = string.sub(exp, 1, -4)
  local ck = rp .. 'c:' .. conn
${CHECK}
${REFRESH}
end
local out = {}
for i = 1, #KEYS, 2 do
  out[#out + 1] = hb(KEYS[i], KEYS[i + 1], ARGV[4 + i], tonumber(ARGV[5 + i]))
end
return out
`,
  args(cmds, ctx) {
    const first = cmds[0]!;
    let now = first.now;
    for (const c of cmds) if (c.now > now) now = c.now;
    const keys: ScriptArg[] = [cmds.length * 2];
    const argv: ScriptArg[] = [now, first.ttlMs, first.lookbackMs, keepMs(first, ctx)];
    for (const c of cmds) {
      const k = ctx.keys.room(c.roomId);
      keys.push(k.exp, k.slotIndex);
      argv.push(c.connId, c.epoch);
    }
    return keys.concat(argv);
  },
  decode(reply, cmds) {
    const replies = replyArray('heartbeatBatch', reply);
    if (replies.length !== cmds.length) throw new MalformedReplyError('heartbeatBatch', `${replies.length} replies for ${cmds.length} heartbeats`, reply);
    return replies.map((r, i) => heartbeat.decode(r, cmds[i]!));
  },
};
