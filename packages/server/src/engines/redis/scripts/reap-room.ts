import type { RoomId } from 'realtime-message-protocol';
import { END_CONN, NUM, TOUCH_ROOM, luaScript } from './lua.js';
import { MalformedReplyError, keepMs, replyArray, replyInt, type Script } from './script.js';

export interface ReapRoomInput {
  roomId: RoomId;
  now: number;
  ttlMs: number;
  lookbackMs: number;
  /** Most due connections and most old epoch records handled in this call. */
  limit: number;
}

export interface ReapRoomReply {
  /** Leave events emitted. */
  leaves: number;
  /** True when a limit was reached: the room has more to reap now. */
  more: boolean;
}

/**
 * Expires due connections of one room (one leave each; an entry whose hash is
 * gone or already an epoch record is just dropped from exp), forgets epoch
 * records whose lookback ended, then re-scores the room in its slot's index.
 *
 * KEYS: seq exp tomb slotIndex. ARGV: room now lookback keep channel connPrefix limit.
 * Reply: {leaves, more(0|1)}.
 */
export const reapRoom: Script<ReapRoomInput, ReapRoomReply> = {
  command: 'rmReapRoom',
  numberOfKeys: 4,
  lua: luaScript([NUM, END_CONN, TOUCH_ROOM], /* lua */ `
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
`),
  args(input, ctx) {
    const k = ctx.keys.room(input.roomId);
    return [k.seq, k.exp, k.tomb, k.slotIndex, input.roomId, input.now, input.lookbackMs, keepMs(input, ctx), k.channel, k.connPrefix, input.limit];
  },
  decode(reply) {
    const r = replyArray('reapRoom', reply);
    if (r.length !== 2 || (r[1] !== 0 && r[1] !== 1)) throw new MalformedReplyError('reapRoom', 'expected {leaves, 0|1}', reply);
    return { leaves: replyInt('reapRoom', r[0], 'leaves'), more: r[1] === 1 };
  },
};
