/**
 * The one registry of error codes. Every failure the server reports carries
 * one of these codes; `docs/protocol.md` documents the same list and a test
 * keeps the two in step.
 */
export const ERROR_CODES = {
  invalid_payload: 'The payload does not match the schema of the event (wrong type, missing field, bad id, bad state).',
  stale_epoch: 'The write carried an epoch other than the current one of the connection: a newer incarnation exists. Stop using this connection; the newer one wins.',
  not_joined: 'The socket is not in the room, or the connection has left or expired (or storage was reset). Join again; pass the previous connId to resume.',
  unauthorized: 'No valid credentials were presented for a server that requires them.',
  forbidden: 'The credentials are valid but do not allow this action (for example resuming a connection of another user).',
  rate_limited: 'Too many events from this connection; slow down and retry later.',
  payload_too_large: 'The state (after merging the patch) or the message is larger than the configured limit.',
  internal: 'The server failed to complete the request (for example presence storage is unreachable). Retry with backoff.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** An error with a stable `code` from {@link ERROR_CODES}. */
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
