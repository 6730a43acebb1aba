import type { RoomId } from '../shared/ids.js';
import type { HeartbeatAck, JoinAck, LeaveAck, MessageAck } from './acks.js';
import type { PresenceWireEvent, RoomMessage, ServerNotice } from './events.js';
import type { HeartbeatRequest, JoinRequest, LeaveRequest, MessageRequest } from './payloads.js';
import type { StatusActivityAck, StatusActivityRequest, StatusSetAck, StatusSetRequest, StatusSubscribeAck, StatusUnsubscribeAck, StatusWatchRequest } from '../status/events.js';
import type { StatusEvent } from '../status/types.js';
import type {
  ChannelHistoryAck,
  ChannelHistoryRequest,
  ChannelPublishAck,
  ChannelPublishRequest,
  ChannelResubscribeNotice,
  ChannelUnsubscribedNotice,
  ChannelSubscribeAck,
  ChannelSubscribeRequest,
  ChannelUnsubscribeAck,
  ChannelUnsubscribeRequest,
} from '../channels/events.js';
import type { ChannelPublication } from '../channels/types.js';

/** Socket.IO events a client sends. Payloads are typed as a client writes them; the server validates them. */
export interface ClientToServerEvents {
  'presence:join': (payload: JoinRequest, ack: (res: JoinAck) => void) => void;
  'presence:heartbeat': (payload: HeartbeatRequest | undefined, ack: (res: HeartbeatAck) => void) => void;
  'presence:leave': (payload: LeaveRequest | undefined, ack: (res: LeaveAck) => void) => void;
  'presence:message': (payload: MessageRequest, ack?: (res: MessageAck) => void) => void;
  'status:subscribe': (payload: StatusWatchRequest, ack: (res: StatusSubscribeAck) => void) => void;
  'status:unsubscribe': (payload: StatusWatchRequest, ack: (res: StatusUnsubscribeAck) => void) => void;
  'status:set': (payload: StatusSetRequest, ack: (res: StatusSetAck) => void) => void;
  'status:activity': (payload: StatusActivityRequest | undefined, ack?: (res: StatusActivityAck) => void) => void;
  'channel:subscribe': (payload: ChannelSubscribeRequest, ack: (res: ChannelSubscribeAck) => void) => void;
  'channel:unsubscribe': (payload: ChannelUnsubscribeRequest, ack: (res: ChannelUnsubscribeAck) => void) => void;
  'channel:publish': (payload: ChannelPublishRequest, ack: (res: ChannelPublishAck) => void) => void;
  'channel:history': (payload: ChannelHistoryRequest, ack: (res: ChannelHistoryAck) => void) => void;
}

/** Socket.IO events the server sends. */
export interface ServerToClientEvents {
  /** Full-form events by default; updates in patch form for rooms joined with `updates: 'patch'`. */
  'presence:event': (event: PresenceWireEvent) => void;
  'presence:message': (message: RoomMessage) => void;
  'presence:error': (notice: ServerNotice) => void;
  /** Drop the room's member list and `seq` and join again (with the `connId`) for a fresh snapshot. */
  'presence:resync': (notice: ResyncNotice) => void;
  /** A watched user's record right after a change of their status or message. */
  'status:event': (event: StatusEvent) => void;
  /** A publication of a channel this socket subscribed to, in offset order. */
  'channel:publication': (publication: ChannelPublication) => void;
  /** The server ended a subscription it could no longer keep gap-free: subscribe again from the last position applied. */
  'channel:resubscribe': (notice: ChannelResubscribeNotice) => void;
  /** The server ended a subscription on the application's request: do not subscribe again on your own. */
  'channel:unsubscribed': (notice: ChannelUnsubscribedNotice) => void;
}

/**
 * `presence:resync`: the server's storage was reset (Redis restarted from an
 * older snapshot, or failed over to a replica that lagged), so `seq`s of the
 * room may have gone back and the member list the client holds may be wrong
 * for good. The client joins the room again with its `connId` and replaces
 * its list and `seq` with the join's snapshot, even when that `seq` is lower.
 */
export interface ResyncNotice {
  roomId: RoomId;
  reason: 'storage_reset';
}

/** Socket.IO event names of the presence protocol. */
export const EVENTS = {
  join: 'presence:join',
  heartbeat: 'presence:heartbeat',
  leave: 'presence:leave',
  event: 'presence:event',
  message: 'presence:message',
  error: 'presence:error',
  resync: 'presence:resync',
} as const;
