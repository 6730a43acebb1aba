import type { PresenceEvent, PresenceState } from 'realtime-message-protocol/core';
import type { RealtimeError } from './errors.js';
import type { Member } from './members.js';
import type { RoomChangeReason, RoomState, StateChange } from './state.js';

// The options and events of a PresenceRoom (room.ts).

export interface RoomOptions {
  /** The user this client is (with auth: the token's `sub`). */
  userId: string;
  /** Initial state of this connection. @default {} */
  state?: PresenceState;
  /** Heartbeat period; keep it well inside the server's TTL (default TTL 30 s). @default 10000 */
  heartbeatIntervalMs?: number;
  /** Window in which `updateState` calls are merged into one heartbeat. @default 50 */
  patchDelayMs?: number;
}

export type JoinEvent = Extract<PresenceEvent, { type: 'join' }>;
export type UpdateEvent = Extract<PresenceEvent, { type: 'update' }>;
export type LeaveEvent = Extract<PresenceEvent, { type: 'leave' }>;
export interface MessageMeta {
  userId?: string;
  connId?: string;
  ts: number;
}

export interface RoomEvents {
  /** A connection joined (another user, or another tab of a user). */
  join: (event: JoinEvent) => void;
  /** A connection's state changed (or it resumed). */
  update: (event: UpdateEvent) => void;
  /** A connection left (`reason`: leave, disconnect, timeout). */
  leave: (event: LeaveEvent) => void;
  /** The member list was replaced from a snapshot (join, rejoin, resync). */
  sync: (members: Member[]) => void;
  /** The room's state changed, and why. */
  state: (change: StateChange<RoomState, RoomChangeReason>) => void;
  /** Something failed in the background (heartbeat, rejoin). */
  error: (error: RealtimeError) => void;
}

/** Event names the room emits itself: a custom event may not use them. */
export const RESERVED = new Set<string>(['join', 'update', 'leave', 'sync', 'state', 'error']);
