import type { DisconnectCommand, LeaveCommand } from '../../../core/presence/engine.js';
import { END_CONN, REPOINT_ROOM_KEYS, ROOM_KEYS, TOUCH_ADDED, TOUCH_ROOM } from './lua.js';
import { batchOf, batchableScript } from './batch.js';
import { MalformedReplyError, keepMs, replyArray, replyInt, replyOptionalNumber, type ScriptArg, type ScriptContext } from './script.js';

/** The failures both scripts share (from the preamble), shaped as `WriteOutcome`s. */
export type ConnWriteFailure = { ok: false; code: 'not_joined' | 'stale_epoch' };

export type LeaveReply = { ok: true; epoch: number } | ConnWriteFailure;

export type DisconnectReply =
  | {
      ok: true;
      epoch: number;
      /** The room's new earliest deadline when the grace lowered its slot's minimum (the caller lowers the reaper hint). */
      lowered: number | undefined;
    }
  | ConnWriteFailure;

/**
 * The start of both scripts, written once: arguments, fencing, and the lazy
 * expiry (a connection whose deadline passed but that no reaper has expired
 * yet leaves now, with the reason it expired for, exactly once). After it,
 * `m` holds the connection's fields and the connection is either live or an
 * epoch record of this epoch (`m[3]`), which each script treats its own way.
 *
 * KEYS: seq exp tomb slotIndex conn. ARGV: room conn epoch now lookback keep channel <one script-specific argument>.
 */
const PREAMBLE = /* lua */ `
local room, conn, epoch = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- keep is passed on as text (it only ever reaches PEXPIRE): Redis 7.0 formats every Lua number given to redis.call with %.17g (see NUM_TEXT).
local now, lookback, keep, channel = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local ck = KEYS[5]
local m = redis.call('HMGET', ck, '.u', '.e', '.g', '.x', '.r', '.d')
if not m[1] then return {'not_joined'} end
if tonumber(m[2]) ~= epoch then return {'stale_epoch'} end
if not m[3] and tonumber(m[4]) <= now then
  end_conn(ck, conn, m[1], epoch, m[5] or 'timeout', room, channel, now, lookback, keep)
  touch_room(room, keep)
  return {'not_joined'}
end
`;

function connWriteArgs(cmd: LeaveCommand | DisconnectCommand, ctx: ScriptContext, last: ScriptArg): ScriptArg[] {
  const k = ctx.keys.room(cmd.roomId);
  return [
    k.seq, k.exp, k.tomb, k.slotIndex, k.connPrefix + cmd.connId,
    cmd.roomId, cmd.connId, cmd.epoch, cmd.now, cmd.lookbackMs, keepMs(cmd, ctx), k.channel, last,
  ];
}

/** Decodes {'ok', epoch, ...} | {'not_joined'} | {'stale_epoch'}; returns the array for an `ok`. */
function okOrFailure(script: string, reply: unknown): unknown[] | ConnWriteFailure {
  const r = replyArray(script, reply);
  if (r.length === 1 && (r[0] === 'not_joined' || r[0] === 'stale_epoch')) return { ok: false, code: r[0] };
  if (r[0] !== 'ok') throw new MalformedReplyError(script, "the status is not 'ok', 'not_joined' or 'stale_epoch'", reply);
  return r;
}

/**
 * Ends a connection at once (`leave` with the given reason). Leaving an
 * already-left connection with its epoch is a no-op success.
 * Last ARGV: reason ('leave' | 'disconnect'). Reply: {'ok', epoch} | {code}.
 */
export const leave = batchableScript<LeaveCommand, LeaveReply>({
  command: 'rmLeave',
  numberOfKeys: 5,
  uses: [ROOM_KEYS, END_CONN, TOUCH_ADDED],
  body: /* lua */ `${PREAMBLE}
if m[3] then return {'ok', epoch} end
end_conn(ck, conn, m[1], epoch, ARGV[8], room, channel, now, lookback, keep)
touch_added(room, keep, now + lookback)
return {'ok', epoch}
`,
  args: (cmd, ctx) => connWriteArgs(cmd, ctx, cmd.reason),
  decode(reply) {
    const r = okOrFailure('leave', reply);
    return Array.isArray(r) ? { ok: true, epoch: replyInt('leave', r[1], 'epoch') } : r;
  },
});

/** Leaves of rooms of one slot in one call (see {@link batchOf}). */
export const leaveBatch = batchOf('rmLeaveBatch', leave, REPOINT_ROOM_KEYS);

/**
 * The transport is gone without a leave: marks the connection disconnected
 * (its heartbeats now answer not_joined) and, when the grace ends before its
 * TTL deadline, moves the deadline to the end of the grace with reason
 * `disconnect`. A second disconnect changes nothing.
 * Last ARGV: graceMs. Reply: {'ok', epoch, lowered|''} | {code}.
 */
export const disconnect = batchableScript<DisconnectCommand, DisconnectReply>({
  command: 'rmDisconnect',
  numberOfKeys: 5,
  uses: [ROOM_KEYS, END_CONN, TOUCH_ROOM],
  body: /* lua */ `${PREAMBLE}
if m[3] then return {'not_joined'} end
if not m[6] then
  redis.call('HSET', ck, '.d', ARGV[4])
  local grace_end = now + tonumber(ARGV[8])
  if grace_end < tonumber(m[4]) then
    redis.call('HSET', ck, '.x', grace_end, '.r', 'disconnect')
    redis.call('ZADD', KEYS[2], grace_end, conn)
  end
end
local lowered = touch_room(room, keep)
return {'ok', epoch, lowered or ''}
`,
  args: (cmd, ctx) => connWriteArgs(cmd, ctx, cmd.graceMs),
  decode(reply) {
    const r = okOrFailure('disconnect', reply);
    if (!Array.isArray(r)) return r;
    return { ok: true, epoch: replyInt('disconnect', r[1], 'epoch'), lowered: replyOptionalNumber('disconnect', r[2], 'lowered') };
  },
});

/** Disconnects of rooms of one slot in one call (see {@link batchOf}): a network blip ends many sockets at once. */
export const disconnectBatch = batchOf('rmDisconnectBatch', disconnect, REPOINT_ROOM_KEYS);
