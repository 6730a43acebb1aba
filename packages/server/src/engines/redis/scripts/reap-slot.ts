import { END_CONN, NUM, ROOM_KEYS, TOUCH_ROOM, luaScript } from './lua.js';
import { MalformedReplyError, keepMs, replyArray, replyInt, replyOptionalNumber, replyString, type Script } from './script.js';

export interface ReapSlotInput {
  /** The cluster slot whose reaper index is visited. */
  slot: number;
  now: number;
  /**
   * Rooms whose index score is at most this are visited: due ones are reaped,
   * the others (score in (now, horizon]) only re-scored to their true
   * earliest deadline, which saves the slot a call of its own for each.
   */
  horizon: number;
  ttlMs: number;
  lookbackMs: number;
  /** Most due rooms visited in this call. */
  roomLimit: number;
  /** Most leaves emitted (and most epoch records forgotten per room) in this call. */
  leaveLimit: number;
}

export interface ReapSlotReply {
  /** Leave events emitted. */
  leaves: number;
  /** Due rooms visited. */
  rooms: number;
  /** The slot index's earliest score after the call (exact text), or undefined when the index is empty. */
  newMin: string | undefined;
  /** The connections this call ended (one per leave emitted). */
  ended: Array<{ roomId: string; connId: string; epoch: number }>;
}

/**
 * Visits the due rooms of one cluster slot in one call (the rooms of a slot
 * share it with the slot's index, so one script may touch them all). For
 * each room whose index score is due:
 *
 * - due live connections end (one leave each, stored reason); an entry whose
 *   hash is gone or already an epoch record is just dropped;
 * - epoch records past the lookback are forgotten;
 * - the room is re-scored with its earliest deadline (or dropped with its
 *   keys when nothing is left).
 *
 * Most visits find nothing due: heartbeats leave a room's index score at an
 * old deadline (cheaper than moving it on every heartbeat, see
 * docs/presence-model.md), so the visit only re-scores the room: two ZRANGEs
 * and a ZADD, no TTL refresh (heartbeats refresh the keys of live rooms).
 * Room keys are derived from the key prefix and the room id; they carry the
 * room's tag, which hashes to this slot.
 *
 * Rooms due up to `horizon` (a little ahead of now) are visited too, but only
 * re-scored: after a call every room of the slot scores above the horizon
 * unless it holds a deadline before it, so a slot costs about one call per
 * horizon however many rooms it holds.
 *
 * KEYS: slotIndex. ARGV: now lookback keep keyPrefix roomLimit leaveLimit horizon.
 * Reply: {leaves, rooms, newMin|'', {room, conn, epoch, ...}} (the connections ended).
 */
export const reapSlot: Script<ReapSlotInput, ReapSlotReply> = {
  command: 'rmReapSlot',
  numberOfKeys: 1,
  lua: luaScript([NUM, ROOM_KEYS, END_CONN, TOUCH_ROOM], /* lua */ `
local idx = KEYS[1]
local now, lookback, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local kp, room_limit, leave_limit = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local rooms = redis.call('ZRANGEBYSCORE', idx, '-inf', ARGV[7], 'LIMIT', 0, room_limit)
local leaves, visited = 0, 0
local ended = {}
idx_k = idx
for r = 1, #rooms do
  if leaves >= leave_limit then break end
  local room = rooms[r]
  local base = kp .. '{room:' .. room .. '}:'
  seq_k, exp_k, tomb_k = base .. 'seq', base .. 'exp', base .. 'tomb'
  visited = visited + 1
  local changed = false
  local e = redis.call('ZRANGE', exp_k, 0, 0, 'WITHSCORES')
  if e[2] and tonumber(e[2]) <= now then
    changed = true
    local due = redis.call('ZRANGEBYSCORE', exp_k, '-inf', num(now), 'LIMIT', 0, leave_limit - leaves)
    for i = 1, #due do
      local ck = base .. 'c:' .. due[i]
      local m = redis.call('HMGET', ck, '.u', '.e', '.g', '.r')
      if m[1] and not m[3] then
        end_conn(ck, due[i], m[1], tonumber(m[2]), m[4] or 'timeout', room, base .. 'ev', now, lookback, keep)
        leaves = leaves + 1
        ended[#ended + 1] = room
        ended[#ended + 1] = due[i]
        ended[#ended + 1] = tonumber(m[2])
      else
        redis.call('ZREM', exp_k, due[i])
      end
    end
  end
  local t = redis.call('ZRANGE', tomb_k, 0, 0, 'WITHSCORES')
  if t[2] and tonumber(t[2]) <= now then
    changed = true
    local old = redis.call('ZRANGEBYSCORE', tomb_k, '-inf', num(now), 'LIMIT', 0, leave_limit)
    for i = 1, #old do
      local ck = base .. 'c:' .. old[i]
      if redis.call('HGET', ck, '.g') then redis.call('DEL', ck) end
      redis.call('ZREM', tomb_k, old[i])
    end
  end
  if changed then
    touch_room(room, keep)
  else
    local earliest = false
    if e[2] then earliest = tonumber(e[2]) end
    if t[2] and (not earliest or tonumber(t[2]) < earliest) then earliest = tonumber(t[2]) end
    if earliest then
      redis.call('ZADD', idx, earliest, room)
    else
      -- Its keys expired on their own (every node was down): forget the room.
      redis.call('ZREM', idx, room)
      redis.call('DEL', seq_k)
    end
  end
end
local first = redis.call('ZRANGE', idx, 0, 0, 'WITHSCORES')
if first[2] then redis.call('PEXPIRE', idx, keep) end
return {leaves, visited, first[2] or '', ended}
`),
  args(input, ctx) {
    return [ctx.keys.slotIndex(input.slot), input.now, input.lookbackMs, keepMs(input, ctx), ctx.keys.prefix, input.roomLimit, input.leaveLimit, Math.max(input.horizon, input.now)];
  },
  decode(reply) {
    const r = replyArray('reapSlot', reply);
    if (r.length !== 4) throw new MalformedReplyError('reapSlot', 'expected {leaves, rooms, newMin, ended}', reply);
    const newMin = replyOptionalNumber('reapSlot', r[2], 'newMin');
    const flat = replyArray('reapSlot', r[3], 'ended');
    if (flat.length % 3 !== 0) throw new MalformedReplyError('reapSlot', 'ended is not a list of (room, conn, epoch)', reply);
    const ended: ReapSlotReply['ended'] = [];
    for (let i = 0; i < flat.length; i += 3) {
      ended.push({ roomId: replyString('reapSlot', flat[i], 'a room'), connId: replyString('reapSlot', flat[i + 1], 'a connection'), epoch: replyInt('reapSlot', flat[i + 2], 'an epoch') });
    }
    return { leaves: replyInt('reapSlot', r[0], 'leaves'), rooms: replyInt('reapSlot', r[1], 'rooms'), newMin: newMin === undefined ? undefined : (r[2] as string), ended };
  },
};
