import type { ErrorCode } from '../errors/registry.js';
import type { ConnId, RoomId, UserId } from '../shared/ids.js';
import type { JsonValue } from '../shared/json.js';
import type { PresenceState, StatePatch } from './state.js';

/** Why a connection left: `presence:leave`, a disconnect (after grace) or a missed heartbeat window. */
export type LeaveReason = 'leave' | 'disconnect' | 'timeout';
export const LEAVE_REASONS: readonly LeaveReason[] = ['leave', 'disconnect', 'timeout'];

interface PresenceEventBase {
  roomId: RoomId;
  userId: UserId;
  connId: ConnId;
  /** Server time of the change (ms since the Unix epoch). */
  ts: number;
  /** The connection's epoch after the change. */
  epoch: number;
  /** Per-room sequence number: rises by exactly one per change. */
  seq: number;
}

/**
 * A change in a room; exactly one per change is delivered to every socket in
 * the room. An `update` carries the connection's whole `state` after the
 * change and, from the engines, the `patch` that made it (the server sends
 * the one its socket asked for: see {@link PresenceWireEvent}).
 */
export type PresenceEvent =
  | (PresenceEventBase & { type: 'join'; state: PresenceState })
  | (PresenceEventBase & {
      type: 'update';
      state: PresenceState;
      /**
       * The change: keys set to their new value, `null` for a deleted key
       * (for a resume, the difference between the stored and the new state).
       * Absent when it was not built (an event of an older server node).
       */
      patch?: StatePatch;
    })
  | (PresenceEventBase & { type: 'leave'; reason: LeaveReason });

/**
 * An `update` in patch form: what a socket that joined with
 * `updates: 'patch'` receives instead of the full state. Apply it to the
 * connection's state as last known: set each key, delete those that are `null`.
 */
export type PresencePatchEvent = PresenceEventBase & { type: 'update'; patch: StatePatch };

/**
 * What `presence:event` carries on the wire. A socket that joined with the
 * default `updates: 'state'` gets {@link PresenceEvent}s without `patch`; one
 * that joined with `updates: 'patch'` gets its updates as
 * {@link PresencePatchEvent}s (or, from an older server node during a rolling
 * upgrade, with the full `state`), and joins and leaves as usual.
 */
export type PresenceWireEvent = PresenceEvent | PresencePatchEvent;

/** How a socket receives `update` events of a room (the join's `updates` option). */
export type UpdateForm = 'state' | 'patch';

export type PresenceEventType = PresenceEvent['type'];

export interface ConnectionInfo {
  connId: ConnId;
  userId: UserId;
  state: PresenceState;
  epoch: number;
  joinedAt: number;
  lastSeen: number;
}

export interface MemberInfo {
  userId: UserId;
  /** This user's live connections in the room, sorted. */
  connIds: ConnId[];
}

/** The room as of `seq`: members are the distinct users with at least one live connection. */
export interface RoomSnapshot {
  roomId: RoomId;
  seq: number;
  members: MemberInfo[];
  connections: ConnectionInfo[];
}

/** A custom event as members receive it. */
export interface RoomMessage {
  roomId: RoomId;
  /** The application's event name, e.g. `chat:message`. */
  event: string;
  data: JsonValue;
  /** The sending member; absent when the server application sent it. */
  userId?: UserId;
  connId?: ConnId;
  ts: number;
}

/** Sent before the server disconnects a socket for a reason the client should know (rate abuse, expired token). */
export interface ServerNotice {
  code: ErrorCode;
  message: string;
}
