import type { HeartbeatAck, JoinAck, LeaveAck, MessageAck } from './acks.js';
import type { PresenceEvent, RoomMessage, ServerNotice } from './events.js';
import type { HeartbeatRequest, JoinRequest, LeaveRequest, MessageRequest } from './payloads.js';

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
