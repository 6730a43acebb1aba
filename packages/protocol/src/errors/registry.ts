/**
 * The one registry of error codes. Every failure the server reports, on any
 * transport, carries one of these codes; `docs/protocol.md` documents the
 * same list (with the HTTP status) and a test keeps the two in step.
 */

/** What the registry knows about one code. */
export interface ErrorSpec {
  /** What happened and what the developer should do about it. */
  readonly doc: string;
  /** The status of an HTTP answer that carries this code. */
  readonly http: 400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 503;
  /**
   * The client error code of the Centrifugo protocol (100-113) for this
   * failure, where Centrifugo has one with the same meaning. Undefined where
   * it has none; the Centrifugo transport decides those cases itself.
   */
  readonly centrifugo?: number;
}

export const ERROR_REGISTRY = {
  invalid_payload: {
    doc: 'The payload does not match the schema of the event (wrong type, missing field, bad id, bad state).',
    http: 400,
    centrifugo: 107, // bad request
  },
  stale_epoch: {
    doc: 'The write carried an epoch other than the current one of the connection: a newer incarnation exists. Stop using this connection; the newer one wins.',
    // The request is well formed but conflicts with the current state of the
    // connection (a newer incarnation); retrying the same request cannot succeed.
    http: 409,
  },
  not_joined: {
    doc: 'The socket is not in the room, or the connection has left or expired (or storage was reset). Join again; pass the previous connId to resume.',
    // 404, not 409: the connection the request names does not exist (any more),
    // and the remedy is to create it again (join), as with any missing resource.
    // 409 is kept for stale_epoch, where the resource exists in a newer version.
    http: 404,
  },
  unauthorized: {
    doc: 'No valid credentials were presented for a server that requires them.',
    http: 401,
    centrifugo: 101, // unauthorized
  },
  forbidden: {
    doc: 'The credentials are valid but do not allow this action (for example resuming a connection of another user).',
    http: 403,
    centrifugo: 103, // permission denied
  },
  rate_limited: {
    doc: 'Too many events from this connection; slow down and retry later.',
    http: 429,
    centrifugo: 111, // too many requests (temporary)
  },
  already_subscribed: {
    doc: 'The socket is subscribed to this channel already; unsubscribe first, or keep the subscription it has.',
    http: 409,
    centrifugo: 105, // already subscribed
  },
  payload_too_large: {
    doc: 'The state (after merging the patch) or the message is larger than the configured limit.',
    http: 413,
  },
  unavailable: {
    doc: 'A backend such as Redis or NATS cannot be reached; retry with backoff.',
    http: 503,
    // Centrifugo has no code of its own for this: a failing broker or proxy
    // reaches clients as 100 "internal server error" with temporary: true, which
    // makes them retry. (108 "not available" means a feature that is switched off.)
    centrifugo: 100,
  },
  internal: {
    doc: 'The server failed to complete the request (for example presence storage is unreachable). Retry with backoff.',
    http: 500,
    centrifugo: 100, // internal server error (temporary)
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

export const ERROR_CODE_LIST = Object.keys(ERROR_REGISTRY) as ErrorCode[];

/** Code → doc text, for compatibility; the registry holds the rest. */
export const ERROR_CODES = Object.fromEntries(ERROR_CODE_LIST.map((code) => [code, ERROR_REGISTRY[code].doc])) as {
  readonly [C in ErrorCode]: (typeof ERROR_REGISTRY)[C]['doc'];
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_REGISTRY, value);
}

/**
 * The HTTP status of an answer that carries `code`.
 * @example httpStatusOf('rate_limited') // 429
 */
export function httpStatusOf<C extends ErrorCode>(code: C): (typeof ERROR_REGISTRY)[C]['http'] {
  return ERROR_REGISTRY[code].http;
}

/**
 * The Centrifugo client error code for `code`, or undefined when Centrifugo
 * has no code with the same meaning.
 * @example centrifugoCodeOf('forbidden') // 103
 */
export function centrifugoCodeOf(code: ErrorCode): number | undefined {
  const spec: ErrorSpec = ERROR_REGISTRY[code];
  return spec.centrifugo;
}

/** The `error` member of a failure: in an ack, a `presence:error` notice, or an HTTP answer. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** The ack of any request that failed. */
export interface ErrorAck {
  ok: false;
  error: ErrorBody;
}

/** An error with a stable `code` from {@link ERROR_REGISTRY}. */
export class PresenceError extends Error {
  override readonly name = 'PresenceError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The `error` member of a failure ack. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}
