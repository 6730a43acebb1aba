import type { ConnId, ConnectionInfo, PresenceState, RoomId, UserId } from 'realtime-message-protocol';
import { READ_ROWS, luaScript } from './lua.js';
import { MalformedReplyError, replyArray, replyString, type Script } from './script.js';

export interface SnapshotInput {
  roomId: RoomId;
  now: number;
}

export interface SnapshotReply {
  seq: number;
  /** Live connections, in the order of their deadlines. */
  connections: ConnectionInfo[];
}

/**
 * Decodes `read_rows`: a flat list of connId, HGETALL of its hash, ... A row
 * whose hash is gone (it expired between the index and the read) is skipped.
 */
export function decodeRows(script: string, reply: unknown): ConnectionInfo[] {
  const rows = replyArray(script, reply, 'rows');
  if (rows.length % 2 !== 0) throw new MalformedReplyError(script, 'rows has an odd length', rows);
  const out: ConnectionInfo[] = [];
  for (let i = 0; i < rows.length; i += 2) {
    const connId = replyString(script, rows[i], 'a row id') as ConnId;
    const flat = replyArray(script, rows[i + 1], 'a row hash');
    if (flat.length % 2 !== 0) throw new MalformedReplyError(script, 'a row hash has an odd length', flat);
    const state: PresenceState = {};
    let userId = '' as UserId;
    let epoch = 0;
    let joinedAt = 0;
    let lastSeen = 0;
    for (let j = 0; j < flat.length; j += 2) {
      const f = replyString(script, flat[j], 'a hash field');
      const v = replyString(script, flat[j + 1], 'a hash value');
      if (f.charCodeAt(0) === 61 /* = */) state[JSON.parse(f.slice(1)) as string] = JSON.parse(v) as PresenceState[string];
      else if (f === '.u') userId = v as UserId;
      else if (f === '.e') epoch = Number(v);
      else if (f === '.j') joinedAt = Number(v);
      else if (f === '.l') lastSeen = Number(v);
    }
    if (userId) out.push({ connId, userId, state, epoch, joinedAt, lastSeen });
  }
  return out;
}

/** A consistent read of the room's `seq` and its live connections. KEYS: seq exp. ARGV: now connPrefix. */
export const snapshot: Script<SnapshotInput, SnapshotReply> = {
  command: 'rmSnapshot',
  numberOfKeys: 2,
  lua: luaScript([READ_ROWS], /* lua */ `
return {redis.call('GET', KEYS[1]) or '0', read_rows(KEYS[2], ARGV[2], tonumber(ARGV[1]))}
`),
  args({ roomId, now }, { keys }) {
    const k = keys.room(roomId);
    return [k.seq, k.exp, now, k.connPrefix];
  },
  decode(reply) {
    const r = replyArray('snapshot', reply);
    const seq = Number(replyString('snapshot', r[0], 'seq'));
    if (!Number.isSafeInteger(seq) || seq < 0) throw new MalformedReplyError('snapshot', 'seq is not a count', r[0]);
    return { seq, connections: decodeRows('snapshot', r[1]) };
  },
};
