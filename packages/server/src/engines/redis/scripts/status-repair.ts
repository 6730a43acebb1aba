import type { Redis } from 'ioredis';
import { MalformedReplyError } from './script.js';

/**
 * One page of the status repair on one Redis node: SCAN's next page of
 * slot deadline indexes, and each index's earliest deadline with the slot
 * tag of its key. Run on the node itself (no KEYS: the indexes of a page lie
 * in many slots, all on this node, which a script may read without
 * declaring them). One call per page: a command and a promise per index
 * (a page finds a few hundred of them) held the node's event loop for
 * milliseconds each second.
 * ARGV: cursor, MATCH pattern, COUNT. Reply: [next cursor, score1, tag1, score2, tag2, ...].
 */
const LUA = `
local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local out = { page[1] }
for _, key in ipairs(page[2]) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local tag = string.match(key, '{([^}]*)}$')
  if first[2] and tag then
    out[#out + 1] = first[2]
    out[#out + 1] = tag
  end
end
return out
`;

export interface RepairPage {
  /** SCAN's cursor of the next page ('0': the node is done). */
  next: string;
  /** The earliest deadline (exact text) and slot tag of every non-empty index found, flat: score, tag, score, tag... */
  firsts: string[];
}

/** Runs one repair page on `node` (a master), from `cursor`. */
export async function statusRepairPage(node: Redis, cursor: string, pattern: string, count: number): Promise<RepairPage> {
  const reply = await node.eval(LUA, 0, cursor, pattern, count);
  if (!Array.isArray(reply) || reply.length % 2 !== 1 || !reply.every((x) => typeof x === 'string')) throw new MalformedReplyError('statusRepairPage', 'expected [cursor, score, tag, ...]', reply);
  return { next: reply[0] as string, firsts: reply.slice(1) as string[] };
}
