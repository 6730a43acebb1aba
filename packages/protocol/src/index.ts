/**
 * The wire contract of realtime-message, with its zod schemas. The server
 * imports this entry; clients import `realtime-message-protocol/core`, its
 * zod-free subset.
 */
// shared: ids, JSON values, limits, parsing into coded errors
export * from './shared/limits.js';
export { ConnIdSchema, RoomIdSchema, UserIdSchema, type ConnId, type RoomId, type UserId } from './shared/ids.js';
export { utf8Length, type JsonPrimitive, type JsonValue } from './shared/json.js';
export { parsePayload, type ParseResult } from './shared/parse.js';
// errors: the one registry
export * from './errors/registry.js';
// presence
export type { PresenceState, StatePatch } from './presence/state.js';
export {
  EpochSchema,
  KnownSeqSchema,
  UpdateFormSchema,
  createPayloadSchemas,
  type PayloadLimits,
  type PayloadSchemas,
  type JoinPayload,
  type HeartbeatPayload,
  type LeavePayload,
  type MessagePayload,
  type JoinRequest,
  type HeartbeatRequest,
  type LeaveRequest,
  type MessageRequest,
} from './presence/payloads.js';
export * from './presence/events.js';
export * from './presence/acks.js';
export * from './presence/event-map.js';
export { PresenceEventSchema, PresencePatchEventSchema, PresenceWireEventSchema, RoomMessageSchema, RoomSnapshotSchema } from './presence/event-schemas.js';
// user status
export * from './status/types.js';
export * from './status/events.js';
export {
  StatusUserIdSchema,
  UserStatusSchema,
  StatusMessageSchema,
  StatusUpdateSchema,
  StatusRecordSchema,
  StatusEventSchema,
  StatusWatchRequestSchema,
  StatusSetRequestSchema,
  StatusActivityRequestSchema,
  ttlSecondsSchema,
} from './status/schemas.js';
// channels
export * from './channels/types.js';
export * from './channels/events.js';
export {
  ChannelSchema,
  OffsetSchema,
  EpochTextSchema,
  StreamPositionSchema,
  TagsSchema,
  ClientInfoSchema,
  PublicationSchema,
  ChannelPublicationSchema,
  publicationDataSchema,
  historyLimitSchema,
  createChannelSchemas,
  type Channel,
  type ChannelSchemaLimits,
  type ChannelSchemas,
  type PublishPayload,
  type HistoryPayload,
  type SubscribePayload,
} from './channels/schemas.js';
export { CHANNEL_ERROR_REASONS, ChannelError, type ChannelErrorReason } from './channels/errors.js';
