/** The store knows the hub cannot be reached right now (the link probe or the connection said so). */
export class StatusLinkDownError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StatusLinkDownError';
  }
}

/** Errors of nats.js that mean "cannot be reached" (the service answers `unavailable`, 503). */
const UNAVAILABLE = new Set([
  'StatusLinkDownError',
  // No JetStream answered in the domain: the hub is down or the leaf's link to it is cut (fails in milliseconds).
  'JetStreamNotEnabled',
  'NoRespondersError',
  'TimeoutError',
  'ClosedConnectionError',
  'ConnectionError',
  'DrainingConnectionError',
]);

export function isNatsUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (UNAVAILABLE.has(e.name)) return true;
    if (e.name === 'RequestError' && (e as { isNoResponders?: () => boolean }).isNoResponders?.()) return true;
  }
  return false;
}

/** A compare-and-set that lost: the key changed since it was read. */
export function isWrongLastSequence(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  // 10071: wrong last sequence; 10164: wrong last sequence, unknown (newer servers).
  return (err as Error | undefined)?.name === 'JetStreamApiError' && (code === 10071 || code === 10164);
}
