import { ChannelError, PresenceError, centrifugoCodeOf } from 'realtime-message-protocol';

/**
 * Centrifugo's client error codes (the `error` of a reply). 100, 111 and
 * 113 are temporary: the client retries. Applications (hooks, proxies) use
 * 400-1999.
 */
export const CLIENT_ERRORS = {
  internal: { code: 100, message: 'internal server error', temporary: true },
  unauthorized: { code: 101, message: 'unauthorized' },
  unknownChannel: { code: 102, message: 'unknown channel' },
  permissionDenied: { code: 103, message: 'permission denied' },
  methodNotFound: { code: 104, message: 'method not found' },
  alreadySubscribed: { code: 105, message: 'already subscribed' },
  limitExceeded: { code: 106, message: 'limit exceeded' },
  badRequest: { code: 107, message: 'bad request' },
  notAvailable: { code: 108, message: 'not available' },
  tokenExpired: { code: 109, message: 'token expired' },
  expired: { code: 110, message: 'expired' },
  tooManyRequests: { code: 111, message: 'too many requests', temporary: true },
  unrecoverablePosition: { code: 112, message: 'unrecoverable position' },
} as const;

/**
 * Centrifugo's disconnect codes, sent as the WebSocket close code with the
 * reason as plain text. 3000-3499 (and 4000-4499) make the client
 * reconnect; 3500-3999 (and 4500-4999) are terminal. The reason is never
 * empty and never JSON: centrifuge-js reconnects forever on a terminal code
 * with an empty reason, and takes a reason that parses as JSON as advice.
 */
export const DISCONNECTS = {
  shutdown: { code: 3001, reason: 'shutdown' },
  internal: { code: 3004, reason: 'internal server error' },
  connectionExpired: { code: 3005, reason: 'connection expired' },
  subscriptionExpired: { code: 3006, reason: 'subscription expired' },
  slow: { code: 3008, reason: 'slow' },
  writeError: { code: 3009, reason: 'write error' },
  insufficientState: { code: 3010, reason: 'insufficient state' },
  forceReconnect: { code: 3011, reason: 'force reconnect' },
  noPong: { code: 3012, reason: 'no pong' },
  tooManyRequests: { code: 3013, reason: 'too many requests' },
  invalidToken: { code: 3500, reason: 'invalid token' },
  badRequest: { code: 3501, reason: 'bad request' },
  stale: { code: 3502, reason: 'stale' },
  forceDisconnect: { code: 3503, reason: 'force disconnect' },
  connectionLimit: { code: 3504, reason: 'connection limit' },
  channelLimit: { code: 3505, reason: 'channel limit' },
  inappropriateProtocol: { code: 3506, reason: 'inappropriate protocol' },
  permissionDenied: { code: 3507, reason: 'permission denied' },
  notAvailable: { code: 3508, reason: 'not available' },
  tooManyErrors: { code: 3509, reason: 'too many errors' },
} as const;

/** Centrifugo's unsubscribe push codes: below 2500 the subscription ends; from 2500 the client subscribes again. */
export const UNSUBSCRIBES = {
  server: { code: 2000, reason: 'server unsubscribe' },
  insufficientState: { code: 2500, reason: 'insufficient state' },
  expired: { code: 2501, reason: 'subscription expired' },
} as const;

/** The `error` member of a reply. */
export interface ReplyError {
  code: number;
  message: string;
  temporary?: boolean;
}

/**
 * A refusal that reaches the client as an error reply with Centrifugo's
 * code. Command handlers and extension hooks (the callback proxies) throw it
 * to answer with a code of their choice (applications: 400-1999).
 * @example throw new CentrifugoError(403, 'permission denied')
 */
export class CentrifugoError extends Error {
  override readonly name = 'CentrifugoError';
  constructor(
    readonly code: number,
    message: string,
    readonly temporary = false,
  ) {
    super(message);
  }

  static of(spec: { code: number; message: string; temporary?: boolean }, detail?: string): CentrifugoError {
    return new CentrifugoError(spec.code, detail ?? spec.message, spec.temporary === true);
  }

  toReply(): ReplyError {
    return this.temporary ? { code: this.code, message: this.message, temporary: true } : { code: this.code, message: this.message };
  }
}

/**
 * A refusal that closes the connection with a Centrifugo disconnect code.
 * Command handlers and extension hooks (the callback proxies) throw it; a
 * proxy's `{ disconnect: { code, reason } }` becomes one.
 * @example throw new CentrifugoDisconnect(4501, 'unauthorized')
 */
export class CentrifugoDisconnect extends Error {
  override readonly name = 'CentrifugoDisconnect';
  readonly reason: string;
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(`disconnect ${code}: ${reason}`);
    this.reason = safeReason(reason, code);
  }

  static of(spec: { code: number; reason: string }, why?: string): CentrifugoDisconnect {
    const d = new CentrifugoDisconnect(spec.code, spec.reason);
    if (why) d.message = `disconnect ${spec.code}: ${why}`;
    return d;
  }
}

/**
 * A close reason the client reads as Centrifugo means it: never empty (a
 * terminal code would be retried), never JSON (it would be taken as legacy
 * advice), and within a close frame's 123 bytes.
 */
export function safeReason(reason: string, code: number): string {
  let r = reason.trim();
  if (r === '') r = `disconnect ${code}`;
  try {
    JSON.parse(r);
    r = `disconnect: ${r}`;
  } catch {
    // not JSON: as wanted
  }
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

/** The reply error (or the disconnect) for a failure of a command: Centrifugo's code for each registry code and channel reason. */
export function toClientFailure(err: unknown): CentrifugoError | CentrifugoDisconnect | undefined {
  if (err instanceof CentrifugoError || err instanceof CentrifugoDisconnect) return err;
  if (err instanceof ChannelError) return new CentrifugoError(err.centrifugoCode, err.message);
  if (err instanceof PresenceError) {
    if (err.code === 'payload_too_large') return new CentrifugoError(CLIENT_ERRORS.badRequest.code, err.message);
    const code = centrifugoCodeOf(err.code) ?? CLIENT_ERRORS.internal.code;
    return new CentrifugoError(code, err.message, code === 100 || code === 111 || code === 113);
  }
  return undefined;
}
