import type { StatusCommand } from '../../../core/status/store.js';
import { MalformedReplyError, replyArray, replyInt, type ScriptArg, type ScriptContext } from './script.js';
import { STATUS } from './status-lua.js';
import { batchOf, batchableScript } from './batch.js';
import { logArgs, type LogTarget } from './log-lua.js';

export interface StatusWriteInput {
  cmd: StatusCommand;
  /** The channel of the status feed. */
  channel: string;
  /** How long a record (and its connection marks) lives after its last write. */
  keepMs: number;
  /** How long the mark of an ended connection is kept (late or repeated events of it are ignored meanwhile). */
  connRetentionMs: number;
  /** Where the backend log wants the user's events (undefined: no log). */
  log?: LogTarget | undefined;
}

export interface StatusWriteReply {
  /** The record hash after the script (flat HGETALL), empty for a user never seen. */
  flat: string[];
  evented: boolean;
  /** The slot index's new earliest deadline when this write lowered it (the caller lowers the hint). */
  lowered: number | undefined;
}

/** The script's body: one write; KEYS and ARGV as {@link statusWrite} documents (locals of the same names in the batch). */
const WRITE = /* lua */ `
local k, ck, idx = KEYS[1], KEYS[2], KEYS[3]
local user, op, now, node, away, channel = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]
local retention, keep = tonumber(ARGV[7]), tonumber(ARGV[8])
local log = log_open(KEYS[4], ARGV[9], ARGV[10], ARGV[11])
local refused = log_check(log, user)
if refused then return refused end
local wanted = op ~= 'conn' or ARGV[15] ~= '0'
-- A connection change the marks already hold (every node reports every leave) is answered
-- before the record is read.
local cur = op == 'conn' and redis.call('HGET', ck, ARGV[12])
local cur_live = false
if cur then
  local ce, cl = string.match(cur, '^(%d+):(%d)')
  ce = tonumber(ce)
  cur_live = cl == '1'
  local epoch, live = tonumber(ARGV[13]), ARGV[14] == '1'
  if epoch < ce or (epoch == ce and (live or not cur_live)) then return { wanted and redis.call('HGETALL', k) or {}, 0, '' } end
end
local s = st_load(k)
local note = nil
local existed = s.v ~= nil
if op == 'activity' and not existed then return { {}, 0, '' } end
local was_conn = existed and st_connected(s, now)
local was_invis = existed and st_manual(s, now) == 'offline'
if op == 'conn' then
  local conn, epoch, live = ARGV[12], tonumber(ARGV[13]), ARGV[14] == '1'
  local n = s.n or 0
  if cur_live then n = n - 1 end
  if live then n = n + 1 end
  redis.call('HSET', ck, conn, num(epoch) .. ':' .. (live and '1' or '0') .. ':' .. num(now))
  -- Forget ended marks older than the retention (bounded by what one user does meanwhile).
  local marks = redis.call('HGETALL', ck)
  for i = 1, #marks, 2 do
    local e, l, at = string.match(marks[i + 1], '^(%d+):(%d):(%d+)$')
    if l == '0' and now - tonumber(at) > retention then redis.call('HDEL', ck, marks[i]) end
  end
  redis.call('PEXPIRE', ck, keep)
  -- An applied end of a connection is announced on the feed (its mark, as the bridge ranks it), so
  -- that the other nodes can drop their own copy of the leave (see app/status-bridge.ts).
  if not live then note = ',"c":' .. cjson.encode(conn) .. ',"k":' .. num(epoch * 2 + 1) end
  local was_n = s.n or 0
  if (was_n > 0) == (n > 0) then
    if existed then
      if n ~= was_n then redis.call('HSET', k, 'n', n) end
      redis.call('PEXPIRE', k, keep)
      if note then redis.call('PUBLISH', channel, '{"u":' .. cjson.encode(user) .. ',"v":' .. num(s.v) .. note .. '}') end
    end
    return { wanted and redis.call('HGETALL', k) or {}, 0, '' }
  end
  s.n = n
  if n > 0 then s.la = now end
elseif op == 'set' then
  if ARGV[12] == '' then s.ms = nil; s.mx = nil else s.ms = ARGV[12]; s.mx = tonumber(ARGV[13]) end
  if ARGV[14] ~= '' then s.ka = tonumber(ARGV[14]); s.la = now end
  if ARGV[15] == 'set' then
    if ARGV[16] == '' then s.m = nil; s.mmx = nil else s.m = ARGV[16]; s.mmx = tonumber(ARGV[17]) end
  end
elseif op == 'clear' then
  s.ms = nil; s.mx = nil; s.m = nil; s.mmx = nil
elseif op == 'activity' then
  s.la = now
end
local invis = st_manual(s, now) == 'offline'
if (st_connected(s, now) or was_conn) and not (invis and was_invis) then s.ls = now end
s.v = (s.v or 0) + 1
s.ua = now
s.nd = node
local evented, lowered = st_save(k, idx, user, s, now, away, channel, keep, log, note)
return { wanted and redis.call('HGETALL', k) or {}, evented, lowered }
`;

/**
 * Every write of a user's status in one script: `set`, `clear`,
 * `activity`, and `conn` (a presence connection became live or ended). The
 * write, the change detection against the last event, the event, the feed
 * message and the deadline index move together.
 *
 * `conn` keeps per connection the highest (epoch, ended) seen and ignores
 * anything not above it, so every node may apply every presence event in any
 * order and the live count `n` moves once per real change; the record is
 * written only when `n` crosses zero.
 *
 * An event is also appended to the backend log when it is on (a log key of
 * another type refuses the write before anything is written).
 *
 * KEYS: record conns dueIndex log. ARGV: user op now node away channel retention keep
 * logMode logBase logSizes (log-lua.ts), then
 * set: manual|'' manualExpiresAt|'' keepAliveUntil|'' msgMode('keep'|'set') message messageExpiresAt|'';
 * conn: conn epoch live(1|0) wanted(1|0). Reply: { flat record, evented 0|1, lowered|'' }; a `conn`
 * write with wanted 0 answers an empty record (its caller does not use it: one HGETALL and
 * its bytes saved per presence join and leave).
 */
export const statusWrite = batchableScript<StatusWriteInput, StatusWriteReply>({
  command: 'rmStatusWrite',
  numberOfKeys: 4,
  uses: [STATUS],
  body: WRITE,
  args: writeArgs,
  decode: decodeWrite,
});

function writeArgs({ cmd, channel, keepMs, connRetentionMs, log }: StatusWriteInput, { keys }: ScriptContext): ScriptArg[] {
    const k = keys.user(cmd.userId);
    const l = logArgs(log, k.record);
    const args: ScriptArg[] = [k.record, k.conns, k.dueIndex, l.key, cmd.userId, cmd.type, cmd.now, cmd.nodeId, cmd.awayAfterMs, channel, connRetentionMs, keepMs, ...l.argv];
    switch (cmd.type) {
      case 'set':
        args.push(cmd.manual ?? '', cmd.manualExpiresAt ?? '', cmd.keepAliveUntil ?? '', cmd.message === undefined ? 'keep' : 'set', cmd.message ?? '', cmd.messageExpiresAt ?? '');
        break;
      case 'conn':
        args.push(cmd.conn, cmd.epoch, cmd.live ? 1 : 0, cmd.stateWanted === false ? 0 : 1);
        break;
      case 'clear':
      case 'activity':
        break;
    }
    return args;
}

function decodeWrite(reply: unknown): StatusWriteReply {
    const r = replyArray('statusWrite', reply);
    const flat = replyArray('statusWrite', r[0], 'record');
    if (flat.some((x) => typeof x !== 'string')) throw new MalformedReplyError('statusWrite', 'record is not a flat list of strings', reply);
    const evented = replyInt('statusWrite', r[1], 'evented');
    const lowered = r[2] === '' ? undefined : Number(r[2]);
    if (lowered !== undefined && !Number.isFinite(lowered)) throw new MalformedReplyError('statusWrite', 'lowered is neither a number nor empty', reply);
    return { flat: flat as string[], evented: evented === 1, lowered };
}

/**
 * Most writes one batch call carries. A connection change is 20-100 µs of
 * script time (more on a loaded machine), and a call holds Redis for all of
 * it: 16 keep a call under a few ms while saving most of the per-call cost.
 */
export const MAX_STATUS_BATCH = 16;

/**
 * Several writes in one script call (the status store batches connection
 * changes, see RedisStatusStore; {@link batchOf}): one reply per write, what
 * {@link statusWrite} replies, or the error it answered (a refused backend
 * log) for that write alone. On a Cluster only writes of users of one slot
 * go together.
 */
export const statusWriteBatch = batchOf('rmStatusWriteBatch', statusWrite);
