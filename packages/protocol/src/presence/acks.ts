import type { ErrorAck } from '../errors/registry.js';
import type { ConnId } from '../shared/ids.js';
import type { RoomSnapshot } from './events.js';

export interface JoinOk {
  ok: true;
  self: {
    connId: ConnId;
    epoch: number;
    /** true when an existing live connection was resumed (no leave/join was seen by others). */
    resumed: boolean;
    /** The server's presence TTL: a connection without a heartbeat for this long is gone. Heartbeat every TTL/3. */
    ttlMs?: number;
  };
  snapshot: RoomSnapshot;
}
export type JoinAck = JoinOk | ErrorAck;
export type HeartbeatAck = { ok: true; epoch: number } | ErrorAck;
export type LeaveAck = { ok: true } | ErrorAck;
export type MessageAck = { ok: true } | ErrorAck;
