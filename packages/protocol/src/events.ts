import type { ErrorCode } from './errors.js';
import type { ConnId, HeartbeatRequest, JoinRequest, JsonValue, LeaveRequest, MessageRequest, PresenceState, RoomId, UserId } from './schemas.js';

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

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}
export interface ErrorAck {
  ok: false;
  error: ErrorBody;
}
export interface JoinOk {
  ok: true;
  self: {
    connId: ConnId;
    epoch: number;
    /** true when an existing live connection was resumed (no leave/join was seen by others). */
    resumed: boolean;
  };
  snapshot: RoomSnapshot;
}
export type JoinAck = JoinOk | ErrorAck;
export type HeartbeatAck = { ok: true; epoch: number } | ErrorAck;
export type LeaveAck = { ok: true } | ErrorAck;
export type MessageAck = { ok: true } | ErrorAck;

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

/** Socket.IO events a client sends. Payloads are typed as a client writes them; the server validates them. */
export interface ClientToServerEvents {
  'presence:join': (payload: JoinRequest, ack: (res: JoinAck) => void) => void;
  'presence:heartbeat': (payload: HeartbeatRequest | undefined, ack: (res: HeartbeatAck) => void) => void;
  'presence:leave': (payload: LeaveRequest | undefined, ack: (res: LeaveAck) => void) => void;
  'presence:message': (payload: MessageRequest, ack?: (res: MessageAck) => void) => void;
}

/** Socket.IO events the server sends. */
export interface ServerToClientEvents {
  'presence:event': (event: PresenceEvent) => void;
  'presence:message': (message: RoomMessage) => void;
  'presence:error': (notice: ServerNotice) => void;
}

/** Socket.IO event names of the presence protocol. */
export const EVENTS = {
  join: 'presence:join',
  heartbeat: 'presence:heartbeat',
  leave: 'presence:leave',
  event: 'presence:event',
  message: 'presence:message',
  error: 'presence:error',
} as const;
