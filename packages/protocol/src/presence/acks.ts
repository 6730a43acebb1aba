import type { ErrorAck } from '../errors/registry.js';
import type { ConnId } from '../shared/ids.js';
import type { RoomSnapshot } from './events.js';

export interface JoinSelf {
    connId: ConnId;
    epoch: number;
    /** true when an existing live connection was resumed (no leave/join was seen by others). */
    resumed: boolean;
    /** The server's presence TTL: a connection without a heartbeat for this long is gone. Heartbeat every TTL/3. */
    ttlMs?: number;
}

/** A join answered with the room's snapshot (it reflects the join itself). */
export interface JoinOk {
  ok: true;
  self: JoinSelf;
  snapshot: RoomSnapshot;
  upToDate?: undefined;
}

/**
 * A resume with `knownSeq` where nothing happened in the room since
 * `knownSeq` but the resume's own `update` (whose `seq` is `seq`): the client
 * keeps its member list and applies that update; no snapshot is sent.
 */
export interface JoinUpToDate {
  ok: true;
  self: JoinSelf;
  upToDate: true;
  /** The room's `seq` after the resume: `knownSeq + 1`, the `seq` of the resume's own `update`. */
  seq: number;
  snapshot?: undefined;
}

export type JoinAck = JoinOk | JoinUpToDate | ErrorAck;
export type HeartbeatAck = { ok: true; epoch: number } | ErrorAck;
export type LeaveAck = { ok: true } | ErrorAck;
export type MessageAck = { ok: true } | ErrorAck;
