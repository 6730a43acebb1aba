import type { ErrorCode } from 'realtime-message-protocol/core';

/** SDK-side failures that the server never sends. */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'closed';

/** Every rejection of the SDK: an Error with the server's `code` (or a client-side one). */
export class RealtimeError extends Error {
  override readonly name = 'RealtimeError';
  constructor(
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
  ) {
    super(message);
  }
}
