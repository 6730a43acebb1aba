import type { Namespace } from 'socket.io';
import { EVENTS, PresenceError, createPayloadSchemas, type Channel, type JsonValue, type RoomId, type RoomMessage } from 'realtime-message-protocol';
import type { PresenceService } from '../../core/presence/service.js';
import { systemClock, type Clock } from '../../core/shared/clock.js';
import { LogSummary } from '../../core/shared/log-summary.js';
import { silentLogger, type Logger } from '../../core/shared/logger.js';
import { retryInBackground, type Retrying } from '../../core/shared/retry.js';
import type { Extensions } from '../../extensions/extension.js';
import type { PresenceMetrics } from '../../observability/metrics.js';
import { TokenBucket, resolveRateLimit, type RateLimitOptions } from '../shared/rate-limit.js';
import { HANDLERS, parse, type Handler, type HandlerContext } from './handlers.js';
import { oneConnectAtATime } from './engine-guard.js';
import { authMiddleware, errorAck, expireAt, rateLimitMiddleware, type RateLimitDeps } from './middleware.js';
import { SocketSession, UserCounts, primaryUser, type AnySocket, type Membership, type SessionLimits, type SocketListener } from './session.js';
import { STATUS_HANDLERS, StatusWatchers, deliverStatus, repushWatched } from './status-handlers.js';
import type { StatusService } from '../../core/status/service.js';
import type { ChannelService } from '../../core/channels/service.js';
import { CHANNEL_HANDLERS, PIPELINED_EVENTS, channelUserOf, unsubscribeAll, unsubscribeBy } from './channel-handlers.js';

/** The per-connection limits of the Socket.IO transport (also options of `initPresence`). */
export interface SocketIoLimits {
  /** Per-connection event rate limit, or `false`. @default 20/s, burst 40 */
  rateLimit?: RateLimitOptions | false;
  /** Most rooms one socket may be in. @default 64 */
  maxRoomsPerSocket?: number;
  /** Largest custom message `data`, UTF-8 bytes of JSON. @default 65536 */
  maxMessageBytes?: number;
  /** Most requests of one socket queued or running at once. @default 64 */
  maxPendingRequests?: number;
  /** Bytes waiting to be sent to one socket beyond which it is disconnected as a slow consumer. @default 1048576 */
  maxOutboundBytes?: number;
  /** Snapshot bytes one socket may pull per second through joins (a burst of 4 s is allowed; one join always gets through when the budget is positive), or `false`. @default 1048576 */
  snapshotBytesPerSecond?: number | false;
  /** Most users one socket may watch with `status:subscribe`. @default 1000 */
  maxWatchedUsersPerSocket?: number;
  /** `token`: only sockets with a verified token may watch status (SPEC §7 `STATUS_READS`). @default 'public' */
  statusReads?: 'public' | 'token';
  /** Most channels one socket may be subscribed to at once. @default 128 */
  maxChannelsPerSocket?: number;
}

export interface SocketIoTransportOptions extends SocketIoLimits {
  /** The namespace to serve. */
  nsp: Namespace;
  service: PresenceService;
  extensions: Extensions;
  metrics: PresenceMetrics;
  /** User status over sockets (`status:*` events); without it they answer `forbidden`. */
  status?: StatusService | undefined;
  /** Channels over sockets (`channel:*` events); without it they answer `forbidden`. */
  channels?: ChannelService | undefined;
  logger?: Logger;
  clock?: Clock;
}

export interface SocketIoTransport {
  /**
   * Sends a custom event from the server to every member socket of a room, on
   * every node, ordered with the room's presence events. Throws
   * `invalid_payload` / `payload_too_large` at once; the promise settles once
   * the engine took the message.
   */
  broadcast(roomId: string, event: string, data: JsonValue): Promise<void>;
  /** The socket's presence in a room (or its only room), if it joined. */
  membership(socket: AnySocket, roomId?: string): Membership | undefined;
  /**
   * Ends the channel subscriptions of `user`'s sockets on this node (the
   * token's `sub`, or in open mode the user the socket joined as) and tells
   * each client with `channel:unsubscribed`; with `client` (a socket id or a
   * presence connId), only that socket's. Returns how many ended.
   */
  unsubscribeUser(user: string, channel: string, client?: string): Promise<number>;
  /**
   * Disconnects a socket for good (the server API's `disconnect`): its rooms
   * are left at once with reason `disconnect`, without the disconnect grace
   * a lost connection gets (a kicked user must not linger in presence).
   */
  kick(socket: AnySocket): void;
  /**
   * The namespace's connected sockets by primary user (what `/api/info`'s
   * `num_users` counts), kept up to date at connect, join, leave and
   * disconnect; undefined once disposed (the sockets are no longer followed).
   */
  users(): UserCounts | undefined;
  /**
   * Stops serving. `leave` (default `true`): every local connection leaves at
   * once with reason `disconnect`; `'grace'`: each one gets the disconnect
   * grace, as a lost client connection does, so that it can resume on another
   * node (the drain of a node shutting down); `false`: presence is left as it is.
   */
  dispose(opts?: { leave?: boolean | 'grace' }): Promise<void>;
}

/**
 * The presence protocol (docs/protocol.md) on a Socket.IO namespace: one
 * {@link SocketSession} per connection, one handler per event, every request
 * through the session's bounded queue and acked exactly once. The transport
 * owns no storage: it parses, runs the extension hooks, calls the service and
 * encodes the answer.
 */
export function attachSocketIo(options: SocketIoTransportOptions): SocketIoTransport {
  const { nsp, service, extensions, metrics } = options;
  const logger = options.logger ?? silentLogger;
  const rateLimit = options.rateLimit === false ? undefined : resolveRateLimit(options.rateLimit);
  const maxPending = options.maxPendingRequests ?? 64;
  const snapshotRate = options.snapshotBytesPerSecond === false ? undefined : (options.snapshotBytesPerSecond ?? 1_048_576);
  const sessions = new Map<AnySocket, SocketSession>();
  /** Sockets disconnected by the server API: they leave at once, not after the grace. */
  const kicked = new WeakSet<AnySocket>();
  // Failures that come in bursts (an outage, a flood) are logged once per kind, then summarised.
  const problems = new LogSummary(logger, 'socket.io transport');
  let disposed = false;
  const ctx: HandlerContext = {
    service,
    extensions,
    metrics,
    schemas: createPayloadSchemas({ maxStateBytes: service.options.maxStateBytes, maxMessageBytes: options.maxMessageBytes }),
    clock: options.clock ?? systemClock,
    maxRoomsPerSocket: options.maxRoomsPerSocket ?? 64,
    maxOutboundBytes: options.maxOutboundBytes ?? 1_048_576,
    onSlowConsumer: (session, bytes) => {
      if (!session.socket.connected) return;
      problems.note('slow consumer disconnected', { socketId: session.socket.id, bytes });
      metrics.errors.inc({ event: 'outbound', code: 'rate_limited' });
      session.socket.emit(EVENTS.error, { code: 'rate_limited', message: `disconnected: more than ${ctx.maxOutboundBytes} bytes were waiting to be sent; the connection reads too slowly` });
      session.socket.disconnect(true);
    },
    disposed: () => disposed,
    status: options.status
      ? {
          service: options.status,
          watchers: new StatusWatchers((n) => metrics.statusWatches.set(n)),
          maxWatchedPerSocket: positive('maxWatchedUsersPerSocket', options.maxWatchedUsersPerSocket ?? 1_000),
          reads: options.statusReads ?? 'public',
        }
      : undefined,
    channels: options.channels ? { service: options.channels, maxChannelsPerSocket: positive('maxChannelsPerSocket', options.maxChannelsPerSocket ?? 128) } : undefined,
  };
  // One listener for every status event of every user: sockets watching the user get it.
  // Storage down at start: retried in the background (watchers on this node get no events until it works).
  const statusFeed = ctx.status ? retryInBackground(() => options.status!.subscribe((event) => deliverStatus(ctx, event)), { logger, what: 'status events for socket watchers', delaysMs: [500, 1_000, 2_000] }) : undefined;
  // The subscriber can be back before the command connection (its reconnect
  // backoff, a refused AUTH): a re-push that fails is retried until it works,
  // or a newer resume replaces it, so no watcher keeps a change of the gap missed.
  let repush: Retrying<number> | undefined;
  const offResume = options.status?.onFeedResumed(() => {
    repush?.stop();
    const attempt = (repush = retryInBackground(() => repushWatched(ctx), { logger, what: 'status re-push after a feed gap', delaysMs: [250, 500, 1_000, 2_000] }));
    void attempt.result.then((n) => {
      if (n !== undefined) logger.info({ users: n }, 'status feed resumed: watched users were read again and pushed');
    });
  });

  /**
   * The listener of one event, shared by every socket (Socket.IO calls it with
   * the socket as `this`): a request runs in the session's queue and is always
   * acked exactly once. One function per event for the whole transport, not a
   * closure per socket and event (saves ~2 KB per connection).
   */
  function listenerFor(event: string, fn: Handler): SocketListener {
    const pipelined = PIPELINED_EVENTS.has(event);
    return function (this: AnySocket, ...args: unknown[]): void {
      const last = args[args.length - 1];
      const ack = typeof last === 'function' ? (args.pop() as (res: unknown) => void) : undefined;
      const session = sessions.get(this);
      const answer = (res: { ok: boolean }): void => {
        // An idle connection keeps no queue (made again by its next request).
        session?.dropIdleQueue();
        if (!res.ok) metrics.errors.inc({ event, code: (res as ReturnType<typeof errorAck>).error.code });
        try {
          ack?.(res);
        } catch (err) {
          logger.warn({ err, event }, 'ack callback threw');
        }
      };
      // Listeners are removed (detach) before the session is forgotten; this is only a guard.
      if (!session) return answer(errorAck('internal', 'presence is shutting down'));
      // One continuation for both outcomes (this runs for every request).
      const run = (release?: () => void): Promise<{ ok: boolean }> =>
        disposed ? Promise.reject(new PresenceError('internal', 'presence is shutting down')) : fn(ctx, session, args[0], release);
      const queue = session.queue;
      void (pipelined ? queue.pushReleasing(run) : queue.push(run))
        .then(answer, (err: unknown) => {
          if (err instanceof PresenceError) return answer(errorAck(err.code, err.message));
          problems.note('handler failed', { err, event, socketId: session.socket.id });
          answer(errorAck('internal', 'the server failed to handle the request'));
        });
    };
  }
  /** The listener of every event this transport answers, and the bit that marks it installed on a session. */
  const listeners: ReadonlyArray<readonly [string, SocketListener]> = [...HANDLERS, ...STATUS_HANDLERS, ...CHANNEL_HANDLERS].map(([event, fn]) => [event, listenerFor(event, fn)] as const);
  const byEvent = new Map(listeners.map(([event, fn], i) => [event, { fn, bit: 2 ** i }]));
  if (listeners.length > 30) throw new Error('more events than SocketSession.installed has bits');
  /**
   * Puts this transport's listener of `event` on the socket, the first time
   * the socket sends it (called by the socket's middleware before Socket.IO
   * emits the event). A socket only has listeners for the events it uses: an
   * event name on a socket costs a slot in its listener table, and most
   * sockets use 2 or 3 of the 12.
   */
  const install = (session: SocketSession, event: unknown): void => {
    const l = typeof event === 'string' ? byEvent.get(event) : undefined;
    if (!l || (session.installed & l.bit) !== 0) return;
    session.installed |= l.bit;
    session.socket.prependListener(event as string, l.fn);
  };
  const onDisconnectListener = function (this: AnySocket): void {
    const session = sessions.get(this);
    if (session) onDisconnect(session);
  };
  const detachable: ReadonlyArray<readonly [string, SocketListener]> = [...listeners, ['disconnect', onDisconnectListener]];
  const limiterDeps: RateLimitDeps | undefined = rateLimit ? { limit: rateLimit, metrics, logger, disposed: () => disposed, onPass: install } : undefined;
  const users = new UserCounts();
  const sessionLimits: SessionLimits = { maxPending, users, snapshotBytesPerSecond: snapshotRate, rateLimit: limiterDeps };
  // Sockets connected before the transport was attached get no session; they count as they are until they disconnect.
  for (const socket of nsp.sockets.values()) {
    const user = primaryUser(socket);
    users.add(user);
    socket.once('disconnect', () => users.remove(user));
  }

  /** A lost connection: every membership gets the disconnect grace, after the requests already queued. */
  function onDisconnect(session: SocketSession): void {
    metrics.connections.dec();
    session.detach();
    ctx.status?.watchers.removeAll(session);
    void session.drain().then(async () => {
      await unsubscribeAll(session).catch((err: unknown) => problems.note('channel unsubscribe at disconnect failed', { err }));
      const rooms = [...session.rooms.values()];
      session.rooms.clear();
      sessions.delete(session.socket);
      await Promise.all(
        rooms.map(async (m) => {
          try {
            if (kicked.has(session.socket)) await service.leaveParsed(m, { reason: 'disconnect' });
            else await service.disconnectParsed(m);
            if (kicked.has(session.socket) || service.options.disconnectGraceMs === 0) metrics.leaves.inc({ reason: 'disconnect' });
          } catch (err) {
            // stale_epoch: resumed elsewhere; not_joined: already gone. Both are fine here.
            if (!(err instanceof PresenceError) || err.code === 'internal' || err.code === 'unavailable') problems.note('disconnect cleanup failed', { err, roomId: m.roomId });
          }
        }),
      );
      // Feeds of joins that never completed are released too.
      await Promise.all(session.feedRooms().map((roomId) => session.unfollow(roomId)));
    });
  }

  oneConnectAtATime(nsp.server, () => problems.note('second CONNECT while one was pending: connection closed', {}));
  const verified = extensions.authenticates || extensions.hasConnectHooks ? authMiddleware(nsp, extensions, () => disposed) : undefined;

  const onConnection = (socket: AnySocket): void => {
    // An earlier 'connection' listener may have disconnected it already: it would never see its 'disconnect'.
    if (disposed || !socket.connected) return;
    const auth = verified?.get(socket);
    const bucket = rateLimit ? new TokenBucket(rateLimit, Date.now()) : undefined;
    const session = new SocketSession(socket, auth?.userId, bucket, sessionLimits);
    sessions.set(socket, session);
    metrics.connections.inc();
    session.syncData();
    session.count();
    expireAt(session, auth?.expiresAt);
    // With a rate limit, its middleware sees every event first and installs our
    // listener of it then; without, every listener is installed now.
    if (limiterDeps) rateLimitMiddleware(session);
    else for (const [event, fn] of listeners) socket.on(event, fn);
    // Socket.IO emits 'disconnect' once; detach() removes every listener again.
    socket.on('disconnect', onDisconnectListener);
    session.handlers = detachable;
  };
  nsp.on('connection', onConnection);

  // The storage was reset: seqs may have gone back and lists may be wrong, so
  // every socket that follows a room (joined, or joining: its snapshot may
  // predate the reset) takes a fresh snapshot. Memberships keep their epochs:
  // the resume join the client sends re-establishes them.
  const offReset = service.onReset((reset) => {
    let notices = 0;
    for (const session of sessions.values()) {
      for (const roomId of session.feedRooms()) {
        session.socket.emit(EVENTS.resync, { roomId, reason: 'storage_reset' });
        notices++;
      }
    }
    logger.warn({ reason: reset.reason, node: reset.node, notices }, 'presence storage was reset: members were told to resync');
  });

  return {
    broadcast(roomId, event, data) {
      // Validation errors throw at once; a storage failure rejects the promise
      // (and is logged, so a caller that does not await it loses nothing silently).
      const p = parse(ctx.schemas.message, { roomId, event, data });
      const msg: RoomMessage = { roomId: p.roomId!, event: p.event, data: p.data, ts: ctx.clock.now() };
      const sent = service.publishParsed(msg);
      sent.catch((err: unknown) => problems.note('broadcast failed', { err, roomId: msg.roomId, event: msg.event }));
      return sent;
    },
    kick(socket) {
      kicked.add(socket);
      socket.disconnect(true);
    },
    users: () => (disposed ? undefined : users),
    async unsubscribeUser(user, channel, client) {
      const named = (s: SocketSession): boolean => client === undefined || s.socket.id === client || [...s.rooms.values()].some((m) => m.connId === client);
      const ended = await Promise.all(
        [...sessions.values()].filter((s) => channelUserOf(s) === user && named(s)).map((s) => unsubscribeBy(ctx, s, channel as Channel)),
      );
      return ended.filter(Boolean).length;
    },
    membership(socket, roomId) {
      const session = sessions.get(socket);
      if (!session) return undefined;
      try {
        return { ...session.membership(roomId as RoomId | undefined) };
      } catch {
        return undefined;
      }
    },
    async dispose({ leave = true } = {}) {
      if (disposed) return;
      disposed = true;
      nsp.off('connection', onConnection);
      offReset();
      offResume?.();
      repush?.stop();
      statusFeed?.stop();
      await (await statusFeed?.result)?.();
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(
        all.map(async (session) => {
          session.detach();
          ctx.status?.watchers.removeAll(session);
          await session.drain();
          await unsubscribeAll(session).catch(() => undefined);
          const rooms = [...session.rooms.values()];
          session.rooms.clear();
          await Promise.all(session.feedRooms().map((roomId) => session.unfollow(roomId)));
          if (!leave) return;
          await Promise.all(
            rooms.map((m) =>
              (leave === 'grace' ? service.disconnectParsed(m) : service.leaveParsed(m, { reason: 'disconnect' })).then(
                () => {
                  if (leave !== 'grace' || service.options.disconnectGraceMs === 0) metrics.leaves.inc({ reason: 'disconnect' });
                },
                (err: unknown) => {
                  // stale_epoch: the client resumed on another node already.
                  if (!(err instanceof PresenceError) || err.code !== 'stale_epoch') problems.note('leave at dispose failed', { err, roomId: m.roomId });
                },
              ),
            ),
          );
        }),
      );
      problems.stop();
    },
  };
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be an integer >= 1 (got ${String(value)})`);
  return value;
}
