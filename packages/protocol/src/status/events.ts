import type { ErrorAck } from '../errors/registry.js';
import type { StatusRecord, StatusUpdate } from './types.js';

/** Socket.IO event names of the user status protocol (SPEC §7, docs/protocol.md). */
export const STATUS_EVENTS = {
  subscribe: 'status:subscribe',
  unsubscribe: 'status:unsubscribe',
  set: 'status:set',
  activity: 'status:activity',
  event: 'status:event',
} as const;

/** Limits of the status socket protocol. */
export const STATUS_SOCKET_LIMITS = {
  /** Most user ids in one `status:subscribe` / `status:unsubscribe`. */
  maxIdsPerRequest: 1_000,
  /** Default of the most users one socket may watch at once (server option `maxWatchedUsersPerSocket`). */
  maxWatchedPerSocket: 1_000,
} as const;

/** `status:subscribe` / `status:unsubscribe`: the users to start or stop watching (1 to 1,000 unique ids). */
export interface StatusWatchRequest {
  userIds: string[];
}

/**
 * `status:set`: the socket's own user's status. With a token, the user is
 * the token's `sub` (a different `userId` is `forbidden`); in open mode,
 * `userId` names the user, and defaults to the user the socket joined its
 * rooms as.
 */
export interface StatusSetRequest extends StatusUpdate {
  userId?: string;
}

/** `status:activity`: activity of the socket's own user, for automatic away. `userId` as in {@link StatusSetRequest}. */
export interface StatusActivityRequest {
  userId?: string;
}

/**
 * The answer to `status:subscribe`: the watched users' records, in request
 * order. Events of these users that arrive after the ack may be older than
 * a record (they raced it): keep the record with the higher `seq`.
 */
export type StatusSubscribeAck = { ok: true; users: StatusRecord[] } | ErrorAck;
export type StatusUnsubscribeAck = { ok: true } | ErrorAck;
/** The answer to `status:set`: the user's new record. */
export type StatusSetAck = { ok: true; user: StatusRecord } | ErrorAck;
export type StatusActivityAck = { ok: true } | ErrorAck;
