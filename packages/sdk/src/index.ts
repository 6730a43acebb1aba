export { RealtimeClient } from './client.js';
export type { RealtimeClientOptions, ClientEvents, TokenProvider, ClientSocket } from './client.js';
export { PresenceRoom } from './room.js';
export { StatusWatch, type StatusWatchEvents } from './status.js';
export { Subscription } from './subscription.js';
export type {
  SubscriptionOptions,
  SubscriptionEvents,
  SubscriptionState,
  SubscriptionChangeReason,
  SubscriptionHistoryOptions,
  PublicationContext,
  SubscribedContext,
  UnsubscribedContext,
} from './subscription-types.js';
export type { ActivityTarget } from './activity.js';
export { PresenceChannel } from './deprecated.js';
export type { ChannelOptions, ChannelEvents, ChannelState } from './deprecated.js';
export type { RoomOptions, RoomEvents, MessageMeta, JoinEvent, UpdateEvent, LeaveEvent } from './room-types.js';
export type { Member } from './members.js';
export type { ConnectionState, RoomState, ConnectionChangeReason, RoomChangeReason, StateChange } from './state.js';
export { RealtimeError, type ClientErrorCode } from './errors.js';
export { backoffDelay, type BackoffOptions, type Timers } from './timers.js';
export type { ClientInfo, ConnectionInfo, ErrorCode, HistoryResult, JsonValue, Publication, StreamPosition, LeaveReason, PresenceEvent, PresenceState, RoomSnapshot, StatePatch, StatusRecord, StatusUpdate, UserStatus } from 'realtime-message-protocol/core';
