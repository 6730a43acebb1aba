/**
 * The zod-free part of the protocol: limits, error codes and event names.
 * Browsers and the SDK import this entry (`realtime-message-protocol/core`)
 * so that the validator is not bundled into clients.
 */
export * from './limits.js';
export * from './errors.js';
export * from './events.js';
export type { ConnId, JsonValue, PresenceState, RoomId, StatePatch, UserId, JoinRequest, HeartbeatRequest, LeaveRequest, MessageRequest } from './schemas.js';
