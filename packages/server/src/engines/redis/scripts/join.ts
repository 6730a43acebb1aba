import type { ConnId, ConnectionInfo } from 'realtime-message-protocol';
import type { JoinCommand } from '../../../core/presence/engine.js';
import { END_CONN, PUBLISH, READ_ROWS, REPOINT_ROOM_KEYS, ROOM_KEYS, STATE_JSON, TOUCH_ADDED } from './lua.js';
import { batchOf, batchableScript } from './batch.js';
import { decodeRows } from './snapshot.js';
import { MalformedReplyError, keepMs, replyArray, replyInt, replyOptionalNumber, replyString, type ScriptArg } from './script.js';

export type JoinMode = 'new' | 'resumed' | 'rejoined';

export type JoinReply =
  | {
      ok: true;
      connId: ConnId;
      epoch: number;
      mode: JoinMode;
      /** The room's `seq` after this join's event: the snapshot's `seq`. */
      seq: number;
      /** The room's new earliest deadline when the join lowered its slot's minimum (the caller lowers the reaper hint). */
      lowered: number | undefined;
      /**
       * A resume with `knownSeq` where `seq` is `knownSeq + 1`: the client holds
       * the room, so the rows were not read and `connections` is empty.
       */
      upToDate: boolean;
      connections: ConnectionInfo[];
    }
  | { ok: false; code: 'forbidden' };

/**
 * Resume, rejoin or fresh join, its event (`update` on resume, else `join`),
 * and the snapshot after it, in one atomic step.
 *
 * The `update` of a resume carries the patch from the stored state to the
 * new one (changed keys, `null` for removed ones; `{}` when the state is
 * kept). A resume with `knownSeq` that finds `seq = knownSeq + 1` (only its
 * own update happened since the client's list) skips reading the rows, so a
 * client that reconnects to a room it holds costs O(1), not O(room).
 *
 * KEYS: seq exp tomb slotIndex resumeConn freshConn.
 * ARGV: room user resumeId|'' freshId now ttl lookback keep channel connPrefix hasState(0|1) knownSeq|'' [field json]...
 * Reply: {'forbidden'} or {'ok', connId, epoch, mode, seq, lowered|'', rows | 'upToDate'}.
 */
export const join = batchableScript<JoinCommand, JoinReply>({
  command: 'rmJoin',
  numberOfKeys: 6,
  uses: [ROOM_KEYS, STATE_JSON, PUBLISH, END_CONN, TOUCH_ADDED, READ_ROWS],
  body: /* lua */ `
local room, user, resume_id, fresh_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
-- keep, now and the deadline go to redis.call as text: Redis 7.0 formats every Lua number it is given with %.17g (see NUM_TEXT).
local now, ttl, lookback, keep = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local now_s = ARGV[5]
local channel, prefix, has_state, known = ARGV[9], ARGV[10], ARGV[11] == '1', ARGV[12]
local ck, conn, epoch, mode = KEYS[6], fresh_id, 1, 'new'
-- The earliest deadline this join adds (an old incarnation's epoch record may add one before its own).
local deadline = now + ttl
local deadline_s = string.format('%.17g', deadline)
local added = deadline
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
      if now + lookback < added then added = now + lookback end
      mode = 'rejoined'
    end
  end
end
local patch = {}
if mode == 'resumed' then
  if has_state then
    local flat = redis.call('HGETALL', ck)
    local old = {}
    for i = 1, #flat, 2 do
      if string.byte(flat[i], 1) == 61 then
        old[flat[i]] = flat[i + 1]
        redis.call('HDEL', ck, flat[i])
      end
    end
    for i = 13, #ARGV, 2 do
      if old[ARGV[i]] ~= ARGV[i + 1] then patch[#patch + 1] = string.sub(ARGV[i], 2) .. ':' .. ARGV[i + 1] end
      old[ARGV[i]] = nil
    end
    -- In the hash's order (not pairs()), so the event text is the same on every run.
    for i = 1, #flat, 2 do
      if old[flat[i]] then patch[#patch + 1] = string.sub(flat[i], 2) .. ':null' end
    end
    if #ARGV > 12 then redis.call('HSET', ck, unpack(ARGV, 13)) end
  end
  redis.call('HSET', ck, '.e', epoch, '.l', now_s, '.x', deadline_s, '.r', 'timeout', '.t', now_s)
  redis.call('HDEL', ck, '.d')
else
  redis.call('DEL', ck)
  redis.call('ZREM', KEYS[3], conn)
  -- One write of the whole hash: its fields, then the state's (in the payload's order).
  redis.call('HSET', ck, '.u', user, '.e', epoch, '.j', now_s, '.l', now_s, '.x', deadline_s, '.r', 'timeout', '.t', now_s, unpack(ARGV, 13))
end
redis.call('PEXPIRE', ck, keep)
redis.call('ZADD', KEYS[2], deadline_s, conn)
local seq = redis.call('INCR', KEYS[1])
if mode == 'resumed' then
  publish(channel, 'update', room, user, conn, now, epoch, seq, ',"state":' .. state_json(redis.call('HGETALL', ck)) .. ',"patch":{' .. table.concat(patch, ',') .. '}')
else
  -- The hash was written from the payload just now: its state is the payload's, no read needed.
  local parts = {}
  for i = 13, #ARGV, 2 do parts[#parts + 1] = string.sub(ARGV[i], 2) .. ':' .. ARGV[i + 1] end
  publish(channel, 'join', room, user, conn, now, epoch, seq, ',"state":{' .. table.concat(parts, ',') .. '}')
end
local lowered = touch_added(room, keep, added)
if mode == 'resumed' and known ~= '' and seq == tonumber(known) + 1 then
  return {'ok', conn, epoch, mode, seq, lowered or '', 'upToDate'}
end
return {'ok', conn, epoch, mode, seq, lowered or '', read_rows(KEYS[2], prefix, now)}
`,
  args(cmd, ctx) {
    const k = ctx.keys.room(cmd.roomId);
    const args: ScriptArg[] = [
      k.seq, k.exp, k.tomb, k.slotIndex,
      k.connPrefix + (cmd.resumeConnId ?? cmd.freshConnId),
      k.connPrefix + cmd.freshConnId,
      cmd.roomId, cmd.userId, cmd.resumeConnId ?? '', cmd.freshConnId,
      cmd.now, cmd.ttlMs, cmd.lookbackMs, keepMs(cmd, ctx),
      k.channel, k.connPrefix, cmd.state === undefined ? '0' : '1', cmd.knownSeq ?? '',
    ];
    if (cmd.state) for (const [key, v] of Object.entries(cmd.state)) args.push('=' + JSON.stringify(key), JSON.stringify(v));
    return args;
  },
  decode(reply) {
    const r = replyArray('join', reply);
    if (r[0] === 'forbidden' && r.length === 1) return { ok: false, code: 'forbidden' };
    if (r[0] !== 'ok') throw new MalformedReplyError('join', "the status is neither 'ok' nor 'forbidden'", reply);
    const mode = r[3];
    if (mode !== 'new' && mode !== 'resumed' && mode !== 'rejoined') throw new MalformedReplyError('join', 'unknown mode', reply);
    const upToDate = r[6] === 'upToDate';
    if (upToDate && mode !== 'resumed') throw new MalformedReplyError('join', 'upToDate without a resume', reply);
    return {
      ok: true,
      connId: replyString('join', r[1], 'connId') as ConnId,
      epoch: replyInt('join', r[2], 'epoch'),
      mode,
      seq: replyInt('join', r[4], 'seq'),
      lowered: replyOptionalNumber('join', r[5], 'lowered'),
      upToDate,
      connections: upToDate ? [] : decodeRows('join', r[6]),
    };
  },
});

/** Joins of rooms of one slot in one call (see {@link batchOf}). */
export const joinBatch = batchOf('rmJoinBatch', join, REPOINT_ROOM_KEYS);
