export { RealtimeClient } from './client.js';
export type { RealtimeClientOptions, ClientEvents, TokenProvider, ClientSocket } from './client.js';
export { PresenceRoom, PresenceChannel } from './room.js';
export type { RoomOptions, RoomEvents, MessageMeta, JoinEvent, UpdateEvent, LeaveEvent, ChannelOptions, ChannelEvents, ChannelState } from './room.js';
export type { Member } from './members.js';
export type { ConnectionState, RoomState, ConnectionChangeReason, RoomChangeReason, StateChange } from './state.js';
export { RealtimeError, type ClientErrorCode } from './errors.js';
export { backoffDelay, type BackoffOptions, type Timers } from './timers.js';
export type { ConnectionInfo, ErrorCode, JsonValue, LeaveReason, PresenceEvent, PresenceState, RoomSnapshot, StatePatch } from 'realtime-message-protocol/core';
