import type { ErrorCode } from 'realtime-message-protocol/core';
import type { ClientErrorCode } from './errors.js';

/**
 * What a room does when a heartbeat fails:
 * - `retry`: keep the patch and its waiters, report the error, try again soon;
 * - `wait`: the same without reporting: the connection is gone and the reconnect path rejoins;
 * - `reject`: this patch can never succeed: reject its waiters, report, keep the normal cadence;
 * - `rejoin`: the server no longer has this connection: join again (with the full own state);
 * - `stop`: a newer incarnation owns this connection: report and stop (state `left`), do not fight it.
 */
export type HeartbeatAction = 'retry' | 'wait' | 'reject' | 'rejoin' | 'stop';

/**
 * The heartbeat error policy: one action for every code of the protocol's
 * registry and every client-side code. Adding a code without a case here
 * fails type-checking.
 */
export function heartbeatErrorAction(code: ErrorCode | ClientErrorCode): HeartbeatAction {
  switch (code) {
    case 'stale_epoch':
      return 'stop';
    case 'not_joined':
      return 'rejoin';
    case 'invalid_payload':
    case 'payload_too_large':
    // A heartbeat of our own connection is never forbidden today; if a server
    // refuses one, sending the same patch again would be refused again.
    case 'forbidden':
    // Channel codes: a heartbeat never gets them.
    case 'already_subscribed':
      return 'reject';
    case 'rate_limited':
    case 'internal':
    // A backend (Redis, NATS) is unreachable for now.
    case 'unavailable':
    case 'timeout':
    // Credentials are checked at connect; an expired token disconnects the
    // socket, and the reconnect fetches a fresh one.
    case 'unauthorized':
      return 'retry';
    case 'disconnected':
    // After shutdown() the room has left already and settled its waiters.
    case 'closed':
      return 'wait';
    default: {
      const unhandled: never = code;
      // A newer server may send a code this SDK does not know yet: treat it as transient.
      void unhandled;
      return 'retry';
    }
  }
}

/**
 * What a subscription does when a resubscribe (after a reconnect, a gap or
 * the server's `channel:resubscribe`) fails:
 * - `retry`: report the error and try again after a backoff delay;
 * - `wait`: nothing now: the connection is gone and the reconnect resubscribes;
 * - `unsubscribe_first`: the server still holds this socket's subscription: end it, then subscribe again;
 * - `reset`: the position is unusable: subscribe without it (surfaced as `recovered: false`);
 * - `stop`: this can never succeed: report and end the subscription (`unsubscribed`, reason `error`).
 */
export type ResubscribeAction = 'retry' | 'wait' | 'unsubscribe_first' | 'reset' | 'stop';

/** The resubscribe error policy: one action for every code (exhaustive, like {@link heartbeatErrorAction}). */
export function resubscribeErrorAction(code: ErrorCode | ClientErrorCode): ResubscribeAction {
  switch (code) {
    case 'already_subscribed':
      return 'unsubscribe_first';
    case 'stale_epoch':
      return 'reset';
    case 'invalid_payload':
    case 'payload_too_large':
    case 'forbidden':
    case 'unauthorized':
      return 'stop';
    case 'rate_limited':
    case 'internal':
    case 'unavailable':
    case 'timeout':
      return 'retry';
    // The socket went away during the subscribe; the reconnect resubscribes.
    case 'not_joined':
    case 'disconnected':
    case 'closed':
      return 'wait';
    default: {
      const unhandled: never = code;
      void unhandled;
      return 'retry';
    }
  }
}
