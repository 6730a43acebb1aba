import { MalformedReplyError, replyArray, replyInt, type Script, type ScriptArg } from './script.js';
import { STATUS, luaScript } from './status-lua.js';
import { logArgs, type LogTarget } from './log-lua.js';

export interface StatusSweepSlotInput {
  slot: number;
  now: number;
  nodeId: string;
  awayAfterMs: number;
  channel: string;
  keepMs: number;
  /** Most due users visited in this call. */
  limit: number;
  /** Where the backend log wants the slot's events (undefined: no log). */
  log?: LogTarget | undefined;
}

export interface StatusSweepSlotReply {
  visited: number;
  events: number;
  /** The slot index's earliest deadline after the visit (exact text), or undefined when it is empty. */
  newMin: string | undefined;
}

/**
 * Visits the due users of one slot's deadline index: drops what expired
 * (keep-alive, manual status, message), re-checks automatic away, publishes
 * the event of each user whose effective status or message changed, and
 * re-scores each user. Atomic per slot and idempotent (a second visit finds
 * nothing due), so sweepers of many nodes never double an event; the claim
 * in the hint only keeps them from doing the same work.
 *
 * Each event is also appended to the backend log when it is on (on a single
 * Redis to the user's partition, which the script computes; on a Cluster to
 * the slot's outbox, KEYS[2]).
 *
 * KEYS: dueIndex log. ARGV: now node away channel keep limit userKeyPrefix logMode logBase logSizes.
 * Reply: { visited, events, newMin|'' }.
 */
export const statusSweepSlot: Script<StatusSweepSlotInput, StatusSweepSlotReply> = {
  command: 'rmStatusSweepSlot',
  numberOfKeys: 2,
  lua: luaScript(
    [STATUS],
    /* lua */ `
local idx = KEYS[1]
local now, node, away, channel, keep, limit, base = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local log = log_open(KEYS[2], ARGV[8], ARGV[9], ARGV[10])
local due = redis.call('ZRANGEBYSCORE', idx, '-inf', num(now), 'LIMIT', 0, limit)
local visited, events = 0, 0
for i = 1, #due do
  local user = due[i]
  local k = base .. user .. '}'
  local s = st_load(k)
  visited = visited + 1
  if s.v == nil then
    redis.call('ZREM', idx, user)
  else
    local changed = false
    if s.ka ~= nil and s.ka <= now then
      if (s.n or 0) == 0 and st_manual(s, s.ka - 1) ~= 'offline' then s.ls = s.ka end
      s.ka = nil
      changed = true
    end
    if s.ms ~= nil and s.mx ~= nil and s.mx <= now then s.ms = nil; s.mx = nil; changed = true end
    if s.m ~= nil and s.mmx ~= nil and s.mmx <= now then s.m = nil; s.mmx = nil; changed = true end
    local status, msg = st_eff(s, now, away)
    if not changed and status == (s.ps or 'offline') and (msg or '') == (s.pm or '') then
      local nxt = st_next(s, now, away)
      if nxt then redis.call('ZADD', idx, nxt, user); redis.call('HSET', k, 'due', num(nxt))
      else redis.call('ZREM', idx, user); redis.call('HDEL', k, 'due') end
    else
      s.v = s.v + 1
      s.ua = now
      s.nd = node
      s.due = -1 -- force st_save to re-score
      local evented = st_save(k, idx, user, s, now, away, channel, keep, log)
      events = events + evented
    end
  end
end
local first = redis.call('ZRANGE', idx, 0, 0, 'WITHSCORES')
return { visited, events, first[2] or '' }
`,
  ),
  args(input, { keys }) {
    const idx = keys.statusDueIndex(input.slot);
    const log = logArgs(input.log, idx);
    const args: ScriptArg[] = [idx, log.key, input.now, input.nodeId, input.awayAfterMs, input.channel, input.keepMs, input.limit, `${keys.prefix}{user:`, ...log.argv];
    return args;
  },
  decode(reply) {
    const r = replyArray('statusSweepSlot', reply);
    const visited = replyInt('statusSweepSlot', r[0], 'visited');
    const events = replyInt('statusSweepSlot', r[1], 'events');
    if (typeof r[2] !== 'string') throw new MalformedReplyError('statusSweepSlot', 'newMin is not a string', reply);
    return { visited, events, newMin: r[2] === '' ? undefined : r[2] };
  },
};
