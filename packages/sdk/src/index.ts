export { RealtimeClient } from './client.js';
export type { RealtimeClientOptions, ClientEvents, ConnectionState, StateChange, TokenProvider, ClientSocket } from './client.js';
export { PresenceChannel } from './channel.js';
export type { ChannelOptions, ChannelEvents, ChannelState, Member, MessageMeta, JoinEvent, UpdateEvent, LeaveEvent } from './channel.js';
export { RealtimeError, type ClientErrorCode } from './errors.js';
export { backoffDelay, type BackoffOptions, type Timers } from './timers.js';
export type { ConnectionInfo, ErrorCode, JsonValue, LeaveReason, PresenceEvent, PresenceState, RoomSnapshot, StatePatch } from 'realtime-message-protocol/core';
