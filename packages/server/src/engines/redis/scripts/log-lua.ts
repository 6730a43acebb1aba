/**
 * Lua helpers of the backend log (docs/channels.md, "Backend log"): the
 * scripts that store a publication or a status event append it, in the same
 * script, to the log. On a single Redis the entry goes to its partition
 * stream `<prefix>log:<p>`; on a Cluster (where a script may only touch one
 * hash slot) to the outbox of the script's slot, `<prefix>logq:{<slot tag>}`,
 * with the partition in field `p`, and the node's relay moves it on
 * (engines/redis/backend-log.ts).
 *
 * A script takes the log as four arguments (see {@link logArgs}): one KEY
 * (the partition stream or the outbox: declared, so a Cluster routes the
 * script to its slot) and ARGV mode (`''` off, `direct`, `outbox`), the
 * partition key prefix, and `partitions:maxLen`.
 */
import { NUM, type LuaFragment } from './lua.js';
import type { ScriptArg } from './script.js';

const fragment = (uses: readonly LuaFragment[], body: string): LuaFragment => ({ uses, body: body.trim() });

/** Where a script appends: what {@link BackendLog.target} returns. */
export interface LogTarget {
  mode: 'direct' | 'outbox';
  /** The partition stream (direct) or the slot's outbox (outbox). */
  key: string;
  /** `<prefix>log:`: partition `p` is `<base><p>`. */
  base: string;
  partitions: number;
  maxLen: number;
}

/** The log's KEY and its three ARGV; `placeholder` (a key of the script's slot) stands for the KEY when the log is off. */
export function logArgs(log: LogTarget | undefined, placeholder: string): { key: string; argv: ScriptArg[] } {
  if (!log) return { key: placeholder, argv: ['', '', ''] };
  return { key: log.key, argv: [log.mode, log.base, `${log.partitions}:${log.maxLen}`] };
}

/**
 * `log_crc32(s)`: CRC-32 (IEEE 802.3, as zlib) of the bytes of `s`, unsigned;
 * `log_open(key, mode, base, sizes)`: the log of a script (nil when off);
 * `log_key(log, name)`: where an entry about `name` goes, and its partition;
 * `log_check(log, name)`: an error reply when that key holds something else
 * than a stream (checked before the script writes anything);
 * `log_append(log, name, field, value, ...)`: XADD with `MAXLEN ~`.
 */
export const LOG = fragment([NUM], /* lua */ `
local function log_crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = bit.bxor(c, string.byte(s, i))
    for _ = 1, 8 do
      if bit.band(c, 1) == 1 then c = bit.bxor(bit.rshift(c, 1), 0xEDB88320) else c = bit.rshift(c, 1) end
    end
  end
  c = bit.bnot(c)
  if c < 0 then c = c + 4294967296 end
  return c
end

local function log_open(key, mode, base, sizes)
  if mode == '' then return nil end
  local n, maxlen = string.match(sizes, '^(%d+):(%d+)$')
  return { outbox = mode == 'outbox', key = key, base = base, n = tonumber(n), maxlen = maxlen }
end

local function log_key(log, name)
  local p = num(log_crc32(name) % log.n)
  if log.outbox then return log.key, p end
  return log.base .. p, p
end

local function log_check(log, name)
  if not log then return nil end
  local t = redis.call('TYPE', (log_key(log, name)))
  t = type(t) == 'table' and t.ok or t
  if t ~= 'none' and t ~= 'stream' then return redis.error_reply('ERR backend log key holds a ' .. t .. ', not a stream') end
  return nil
end

local function log_append(log, name, ...)
  local key, p = log_key(log, name)
  if log.outbox then
    redis.call('XADD', key, 'MAXLEN', '~', log.maxlen, '*', 'p', p, ...)
  else
    redis.call('XADD', key, 'MAXLEN', '~', log.maxlen, '*', ...)
  end
end
`);
