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
