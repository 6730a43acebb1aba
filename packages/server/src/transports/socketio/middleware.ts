import type { Namespace } from 'socket.io';
import { EVENTS, PresenceError, type ErrorAck } from 'realtime-message-protocol';
import type { Logger } from '../../core/shared/logger.js';
import type { Extensions, VerifiedToken } from '../../extensions/extension.js';
import type { PresenceMetrics } from '../../observability/metrics.js';
import type { ResolvedRateLimit } from '../shared/rate-limit.js';
import type { SocketSession } from './session.js';

export function errorAck(code: PresenceError['code'], message: string): ErrorAck {
  return { ok: false, error: { code, message } };
}

/**
 * Namespace middleware that runs the extensions' `authenticate` and
 * `onConnect` hooks on the handshake; a refusal is a `connect_error` with
 * `data: { code, message }`. Returns where the verified identities are kept
 * until the connection handler picks them up.
 */
export function authMiddleware(nsp: Namespace, extensions: Extensions, disposed: () => boolean): WeakMap<object, VerifiedToken> {
  const verified = new WeakMap<object, VerifiedToken>();
  nsp.use((socket, next) => {
    if (disposed()) return next();
    const auth = socket.handshake.auth as { token?: unknown } | undefined;
    const ctx = {
      transport: 'socket.io' as const,
      token: typeof auth?.token === 'string' ? auth.token : undefined,
      headers: socket.handshake.headers,
      remoteAddress: socket.handshake.address,
    };
    extensions
      .authenticate(ctx)
      .then(async (v) => {
        await extensions.connect({ ...ctx, userId: v?.userId });
        if (v) verified.set(socket, v);
        next();
      })
      .catch((err: unknown) => {
        const code = err instanceof PresenceError ? err.code : 'unauthorized';
        const message = err instanceof PresenceError ? err.message : 'token invalid';
        const e = new Error(message) as Error & { data: { code: string; message: string } };
        e.data = { code, message };
        next(e);
      });
  });
  return verified;
}

/** setTimeout's longest delay (about 24.8 days); a later expiry re-arms the timer in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Closes the socket with a notice when its token expires, however far away that is. */
export function expireAt(session: SocketSession, expiresAt: number | undefined, now: () => number = Date.now): void {
  if (expiresAt === undefined) return;
  const arm = (): void => {
    const ms = expiresAt - now();
    session.expiryTimer = setTimeout(
      () => {
        if (expiresAt - now() > 0) return arm();
        session.socket.emit(EVENTS.error, { code: 'unauthorized', message: 'token expired; reconnect with a fresh token' });
        session.socket.disconnect(true);
      },
      Math.min(MAX_TIMER_MS, Math.max(0, ms)),
    );
    session.expiryTimer.unref();
  };
  arm();
}

/** What the rate-limit middleware of every socket shares (one object per transport). */
export interface RateLimitDeps {
  limit: ResolvedRateLimit;
  metrics: PresenceMetrics;
  logger: Logger;
  disposed: () => boolean;
  /** Called with each event that passes, before Socket.IO emits it (the transport puts its listener of the event on the socket then). */
  onPass?: (session: SocketSession, event: unknown) => void;
}

/**
 * Socket middleware that charges every incoming event (the application's
 * own included) to the session's token bucket: refused events get a
 * `rate_limited` ack; a socket that keeps flooding is disconnected.
 * The middleware is one shared function bound to the session (a bound
 * function holds no closure context: ~56 bytes per socket less); what every
 * socket shares is in the session's limits.
 */
export function rateLimitMiddleware(session: SocketSession): void {
  if (!session.bucket || !session.limits.rateLimit) return;
  session.socket.use(chargeEvent.bind(session));
  // Socket.IO keeps a socket's middlewares in an array that `use` pushes to, and
  // the first push reserves room for 17 (~150 bytes per socket). When ours is the
  // only one, the socket gets an array of exactly one instead (same contents;
  // Socket.IO copies the array before each run, and a later `use` still pushes).
  const socket = session.socket as unknown as { fns?: unknown };
  if (Array.isArray(socket.fns) && socket.fns.length === 1) socket.fns = [socket.fns[0]];
}

/** The rate-limit middleware of the session it is bound to (see {@link rateLimitMiddleware}). */
function chargeEvent(this: SocketSession, packet: unknown[], next: (err?: Error) => void): void {
  const deps = this.limits.rateLimit!;
  if (deps.disposed()) return next();
  const verdict = this.bucket!.take(Date.now());
  if (verdict === 'ok') {
    deps.onPass?.(this, packet[0]);
    return next();
  }
  const last = packet[packet.length - 1];
  if (typeof last === 'function') {
    deps.metrics.errors.inc({ event: String(packet[0]), code: 'rate_limited' });
    (last as (r: ErrorAck) => void)(errorAck('rate_limited', `more than ${deps.limit.eventsPerSecond} events per second; slow down`));
  }
  if (verdict === 'abuse') {
    const socket = this.socket;
    deps.logger.warn({ socketId: socket.id }, 'disconnecting a socket that keeps flooding');
    socket.emit(EVENTS.error, { code: 'rate_limited', message: 'disconnected: sustained event flood' });
    socket.disconnect(true);
  }
}
