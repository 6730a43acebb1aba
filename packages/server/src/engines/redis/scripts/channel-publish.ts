import type { StreamPosition } from 'realtime-message-protocol';
import type { PublishCommand } from '../../../core/channels/broker.js';
import { NUM, luaScript } from './lua.js';
import { LOG, logArgs, type LogTarget } from './log-lua.js';
import { replyArray, replyInt, replyString, type Script } from './script.js';

/** A publish, and where the backend log wants it (undefined: no log). */
export type PublishInput = PublishCommand & { log?: LogTarget | undefined };

/**
 * A channel publication, in one atomic step: take the channel's epoch (a new
 * one when the meta record is missing: never stored, expired, evicted, or
 * lost with a restart; the stream left by the lost epoch is deleted), the
 * next offset, append to the stream (entry id = offset, exact MAXLEN), set
 * both TTLs, and SPUBLISH `__p1:<offset>:<epoch>__<payload>` on the
 * channel's sharded pub/sub channel. Redis runs scripts one at a time, so
 * offsets are contiguous whoever publishes, and the pub/sub order is the
 * offset order. The header is Centrifugo's (its payload is protobuf, ours
 * JSON text of `{ data, info?, tags? }`).
 *
 * With the backend log on, the same script appends the publication to the
 * log (kind, channel, epoch, offset, payload, ts); a log key of another type
 * refuses the publish before anything is written.
 *
 * `skipHistory` (Centrifugo's `skip_history`): the epoch is taken (or made)
 * and the meta TTL renewed as above, but no offset is taken and nothing is
 * appended (stream or log); the message `__p1:0:<epoch>__<payload>` goes
 * through the same SPUBLISH, so it is ordered with the others.
 *
 * KEYS: stream meta log. ARGV: pubsub payload historySize historyTtlMs metaTtlMs newEpoch now
 * logMode logBase logSizes (log-lua.ts) channel skip(0|1). Reply: {offset, epoch} (offset 0 when skipped).
 */
export const channelPublish: Script<PublishInput, StreamPosition> = {
  command: 'rmChannelPublish',
  numberOfKeys: 3,
  lua: luaScript([NUM, LOG], /* lua */ `
local stream, meta = KEYS[1], KEYS[2]
local pubsub, payload = ARGV[1], ARGV[2]
local size, ttl, meta_ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local log = log_open(KEYS[3], ARGV[8], ARGV[9], ARGV[10])
local refused = log_check(log, ARGV[11])
if refused then return refused end
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch)
end
if ARGV[12] == '1' then
  redis.call('PEXPIRE', meta, meta_ttl)
  redis.call('SPUBLISH', pubsub, '__p1:0:' .. epoch .. '__' .. payload)
  return {0, epoch}
end
local top = redis.call('HINCRBY', meta, 's', 1)
redis.call('PEXPIRE', meta, meta_ttl)
if size > 0 then
  local id = num(top) .. '-0'
  local ok = redis.pcall('XADD', stream, 'MAXLEN', size, id, 'd', payload)
  if type(ok) == 'table' and ok.err then
    -- The stream holds ids at or above the offset: left from a record that was replaced. It is not this epoch's history.
    redis.call('DEL', stream)
    redis.call('XADD', stream, 'MAXLEN', size, id, 'd', payload)
  end
  redis.call('PEXPIRE', stream, ttl)
end
if log then
  log_append(log, ARGV[11], 'kind', 'publication', 'channel', ARGV[11], 'epoch', epoch, 'offset', num(top), 'payload', payload, 'ts', ARGV[7])
end
redis.call('SPUBLISH', pubsub, '__p1:' .. num(top) .. ':' .. epoch .. '__' .. payload)
return {top, epoch}
`),
  args(cmd, ctx) {
    const k = ctx.keys.channel(cmd.channel);
    const log = logArgs(cmd.skipHistory ? undefined : cmd.log, k.meta);
    return [k.stream, k.meta, log.key, k.pubsub, cmd.encoded, cmd.historySize, cmd.historyTtlMs, cmd.metaTtlMs, cmd.newEpoch, cmd.now, ...log.argv, cmd.channel, cmd.skipHistory ? 1 : 0];
  },
  decode(reply) {
    const r = replyArray('rmChannelPublish', reply);
    return { offset: replyInt('rmChannelPublish', r[0], 'offset'), epoch: replyString('rmChannelPublish', r[1], 'epoch') };
  },
};
