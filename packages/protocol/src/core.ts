/**
 * The zod-free part of the protocol: limits, error codes, event names and
 * the types of every payload. Browsers and the SDK import this entry
 * (`realtime-message-protocol/core`) so that the validator is not bundled
 * into clients; nothing here may import zod at run time (type-only exports
 * are erased).
 */
export * from './shared/limits.js';
export * from './errors/registry.js';
export * from './presence/events.js';
export * from './presence/acks.js';
export * from './presence/event-map.js';
export type { ConnId, RoomId, UserId } from './shared/ids.js';
export type { JsonValue } from './shared/json.js';
export type { PresenceState, StatePatch } from './presence/state.js';
export type { JoinRequest, HeartbeatRequest, LeaveRequest, MessageRequest } from './presence/payloads.js';
export * from './status/types.js';
export * from './status/events.js';
export * from './channels/types.js';
export * from './channels/events.js';
export type { Channel } from './channels/schemas.js';
export { CHANNEL_ERROR_REASONS, ChannelError, type ChannelErrorReason } from './channels/errors.js';
