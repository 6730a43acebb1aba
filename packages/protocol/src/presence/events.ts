import type { ErrorCode } from '../errors/registry.js';
import type { ConnId, RoomId, UserId } from '../shared/ids.js';
import type { JsonValue } from '../shared/json.js';
import type { PresenceState } from './state.js';

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

/** A change in a room; exactly one per change is delivered to every socket in the room. */
export type PresenceEvent =
  | (PresenceEventBase & { type: 'join'; state: PresenceState })
  | (PresenceEventBase & { type: 'update'; state: PresenceState })
  | (PresenceEventBase & { type: 'leave'; reason: LeaveReason });

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
