import type { Publication } from 'realtime-message-protocol';
import type { PublicationBody, ReadCommand, ReadResult } from '../../../core/channels/broker.js';
import { NUM, luaScript } from './lua.js';
import { MalformedReplyError, replyArray, replyInt, replyString, type Script } from './script.js';

/**
 * A history read and the stream position, atomically: the meta record's
 * epoch and newest offset (a missing record is created with a new epoch and
 * offset 0, deleting the stream of the lost epoch, so that a position handed
 * out now stays valid for the next publish), its TTL refreshed, then up to
 * `limit` entries after `since` (exclusive), or before it newest first.
 *
 * KEYS: stream meta. ARGV: since|'' limit reverse(0|1) metaTtlMs newEpoch.
 * Reply: {top, epoch, {{id, {'d', payload}}, ...}}.
 */
export const channelRead: Script<ReadCommand, ReadResult> = {
  command: 'rmChannelRead',
  numberOfKeys: 2,
  lua: luaScript([NUM], /* lua */ `
local stream, meta = KEYS[1], KEYS[2]
local since, limit, reverse, meta_ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1', tonumber(ARGV[4])
local m = redis.call('HMGET', meta, 'e', 's')
local epoch, top = m[1], tonumber(m[2] or '0')
if not epoch then
  epoch, top = ARGV[5], 0
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 's', 0)
end
redis.call('PEXPIRE', meta, meta_ttl)
local entries = {}
if limit > 0 then
  if reverse then
    local from = '+'
    if since ~= '' then from = '(' .. since .. '-0' end
    entries = redis.call('XREVRANGE', stream, from, '-', 'COUNT', limit)
  else
    local from = '-'
    if since ~= '' then from = '(' .. since .. '-0' end
    entries = redis.call('XRANGE', stream, from, '+', 'COUNT', limit)
  end
end
return {top, epoch, entries}
`),
  args(cmd, ctx) {
    const k = ctx.keys.channel(cmd.channel);
    return [k.stream, k.meta, cmd.sinceOffset === undefined ? '' : cmd.sinceOffset, cmd.limit, cmd.reverse ? 1 : 0, cmd.metaTtlMs, cmd.newEpoch];
  },
  decode(reply) {
    const r = replyArray('rmChannelRead', reply);
    const offset = replyInt('rmChannelRead', r[0], 'top');
    const epoch = replyString('rmChannelRead', r[1], 'epoch');
    const publications = replyArray('rmChannelRead', r[2], 'entries').map((entry) => decodeEntry(entry));
    return { publications, position: { offset, epoch } };
  },
};

/** One stream entry (`[id, ['d', payload]]`) as a publication: the offset is the id's first part. */
function decodeEntry(entry: unknown): Publication {
  const [id, fields] = replyArray('rmChannelRead', entry, 'entry');
  const offset = Number(replyString('rmChannelRead', id, 'entry id').split('-')[0]);
  const payload = replyArray('rmChannelRead', fields, 'entry fields')[1];
  if (!Number.isSafeInteger(offset) || typeof payload !== 'string') throw new MalformedReplyError('rmChannelRead', 'entry is not [<offset>-0, [d, payload]]', entry);
  return decodeBody(offset, payload);
}

/** A stored `{ data, info?, tags? }` (written by the publish script from JSON.stringify) as the publication at `offset`, absent fields left out. */
export function decodeBody(offset: number, payload: string): Publication {
  const body = JSON.parse(payload) as PublicationBody;
  const out: Publication = { offset, data: body.data };
  if (body.info !== undefined) out.info = body.info;
  if (body.tags !== undefined) out.tags = body.tags;
  return out;
}
