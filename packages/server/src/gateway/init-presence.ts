import type { Namespace, Server, Socket } from 'socket.io';
import {
  EVENTS,
  PresenceError,
  createPayloadSchemas,
  parsePayload,
  type ConnId,
  type ErrorAck,
  type UserId,
  type HeartbeatAck,
  type JoinAck,
  type JsonValue,
  type LeaveAck,
  type MessageAck,
  type PresenceEvent,
  type RoomId,
  type RoomMessage,
} from 'realtime-message-protocol';
import type { z } from 'zod';
import type { PresenceEngine } from '../core/engine.js';
import { silentLogger } from '../core/logger.js';
import { PresenceService, type PresenceOptions } from '../core/presence-service.js';
import { MemoryEngine } from '../engines/memory/memory-engine.js';
import { RedisEngine, type RedisClient } from '../engines/redis/redis-engine.js';
import type { TokenVerifier } from './auth.js';
import { PresenceMetrics } from './metrics.js';
import { TokenBucket, resolveRateLimit, type RateLimitOptions } from './rate-limit.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the caller's Server may have any event maps */
type AnyServer = Server<any, any, any, any>;
type AnySocket = Socket<any, any, any, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface AuthorizeContext {
  socket: AnySocket;
  /** The user the socket acts as (the token's `sub` when auth is on). */
  userId: string;
  roomId: string;
  action: 'join' | 'message';
  /** The custom event name, for `message`. */
  event?: string;
}

export interface InitPresenceOptions extends Omit<PresenceOptions, 'engine'> {
  /** The application's own Socket.IO server. */
  io: AnySocket['server'] | AnyServer;
  /** An ioredis client (or Cluster): presence is shared by every node on it. Not closed by dispose(). */
  redis?: RedisClient;
  /** An explicit engine instead of `redis`/memory. Not closed by dispose(). */
  engine?: PresenceEngine;
  /** Key and channel prefix in Redis. @default 'rm:' */
  keyPrefix?: string;
  /** Namespace to serve. @default '/' */
  namespace?: string;
  /** Verifies `handshake.auth.token`; when set, every connection needs a valid token and acts as its user. @default open mode */
  verifyToken?: TokenVerifier;
  /** In-process allow/deny for joins and custom messages. @default allow */
  authorize?: (ctx: AuthorizeContext) => boolean | Promise<boolean>;
  /** Per-connection event rate limit, or `false` to turn it off. @default 20/s, burst 40 */
  rateLimit?: RateLimitOptions | false;
  /** Most rooms one socket may be in. @default 64 */
  maxRoomsPerSocket?: number;
  /** Largest custom message `data`, UTF-8 bytes of JSON. @default 65536 */
  maxMessageBytes?: number;
  /** Metrics sink. @default a new PresenceMetrics with its own registry */
  metrics?: PresenceMetrics;
  /** Run the reaper on this node. @default true */
  startReaper?: boolean;
}

/** A socket's presence in one room. */
export interface Membership {
  roomId: RoomId;
  userId: UserId;
  connId: ConnId;
  epoch: number;
}

export interface PresenceRuntime {
  readonly service: PresenceService;
  readonly metrics: PresenceMetrics;
  /**
   * Sends a custom event from the server application to every member socket
   * of a room, on every node (through the Socket.IO adapter).
   * @example runtime.broadcast('doc-1', 'doc:saved', { version: 7 })
   */
  broadcast(roomId: string, event: string, data: JsonValue): void;
  /** The socket's presence in a room (or its only room), if it joined. */
  membership(socket: AnySocket, roomId?: string): Membership | undefined;
  /**
   * Stops serving presence: removes the handlers, (by default) makes every
   * local connection leave at once with reason `disconnect` so other nodes
   * see it immediately, stops the reaper and unsubscribes. The caller's `io`
   * and Redis client stay usable.
   */
  dispose(opts?: { leave?: boolean }): Promise<void>;
}

interface SocketState {
  rooms: Map<RoomId, Membership>;
  queue: Promise<void>;
  pending: number;
  authUserId: string | undefined;
  bucket: TokenBucket | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  handlers: Array<[string, (...args: unknown[]) => void]>;
}

/** Socket.IO room that carries the presence events of a presence room. */
export const socketRoomOf = (roomId: string): string => `presence:${roomId}`;

/** Most queued requests per socket; beyond it requests are refused (the queue is bounded). */
const MAX_PENDING = 64;

function errorAck(code: PresenceError['code'], message: string): ErrorAck {
  return { ok: false, error: { code, message } };
}

/**
 * Wires the presence protocol (docs/protocol.md) onto the caller's own
 * Socket.IO server. Without `redis` it uses the in-process memory engine.
 *
 * @example
 * const io = new Server(httpServer);
 * const presence = initPresence({ io, redis: new Redis(process.env.REDIS_URL) });
 * io.on('connection', (socket) => socket.on('chat:message', ...)); // your own handlers beside it
 * // later: await presence.dispose();
 */
export function initPresence(options: InitPresenceOptions): PresenceRuntime {
  const io = options.io as AnyServer;
  const nsp: Namespace = io.of(options.namespace ?? '/');
  const logger = options.logger ?? silentLogger;
  const metrics = options.metrics ?? new PresenceMetrics();
  const ownsEngine = !options.engine;
  const engine: PresenceEngine =
    options.engine ??
    (options.redis ? new RedisEngine({ redis: options.redis, keyPrefix: options.keyPrefix, logger }) : new MemoryEngine());
  // Labelled children are resolved once: prom-client hashes label objects on every call otherwise.
  const latency = new Map<string, { observe(v: number): void }>();
  const heartbeatsOk = metrics.heartbeats.labels('ok');
  const service = new PresenceService({
    ...options,
    engine,
    logger,
    observe: (op, ms, outcome) => {
      const key = `${op}:${outcome}`;
      let child = latency.get(key);
      if (!child) latency.set(key, (child = metrics.engineLatency.labels(op, outcome)));
      child.observe(ms / 1000);
      options.observe?.(op, ms, outcome);
    },
    observeReap: (result) => {
      if ('error' in result) {
        metrics.reaperRuns.inc({ outcome: 'error' });
      } else {
        metrics.reaperRuns.inc({ outcome: 'ok' });
        if (result.leaves > 0) {
          metrics.reaperLeaves.inc(result.leaves);
          metrics.leaves.inc({ reason: 'expired' }, result.leaves);
        }
      }
      options.observeReap?.(result);
    },
  });
  const schemas = createPayloadSchemas({ maxStateBytes: service.options.maxStateBytes, maxMessageBytes: options.maxMessageBytes });
  const rateLimit = options.rateLimit === false ? undefined : resolveRateLimit(options.rateLimit);
  const maxRooms = options.maxRoomsPerSocket ?? 64;
  const states = new Map<AnySocket, SocketState>();
  let disposed = false;

  // -- fan-out: one engine subscription per room per node ----------------

  const fanout = new Map<RoomId, { refs: number; ready: Promise<() => Promise<void>> }>();
  const deliver = (event: PresenceEvent): void => {
    metrics.eventsReceived.inc({ type: event.type });
    const room = socketRoomOf(event.roomId);
    const local = nsp.adapter.rooms.get(room)?.size ?? 0;
    if (local === 0) return;
    // `.local`: every node receives the event from the engine itself; the
    // adapter must not forward it again, or sockets would get it twice.
    nsp.to(room).local.emit(EVENTS.event, event);
    metrics.fanout.inc(local);
  };
  async function acquire(roomId: RoomId): Promise<void> {
    let entry = fanout.get(roomId);
    if (!entry) {
      entry = { refs: 0, ready: service.subscribe(roomId, deliver) };
      fanout.set(roomId, entry);
      const created = entry;
      created.ready.catch(() => {
        if (fanout.get(roomId) === created) fanout.delete(roomId);
      });
    }
    const mine = entry;
    mine.refs++;
    try {
      await mine.ready;
    } catch (err) {
      // Undo only our own reference on *this* entry: the failed entry is
      // already out of the map, and a newer one for the room (created by
      // another socket meanwhile) must not lose a reference it holds.
      mine.refs--;
      if (fanout.get(roomId) === mine && mine.refs === 0) fanout.delete(roomId);
      throw err;
    }
  }
  function release(roomId: RoomId): void {
    const entry = fanout.get(roomId);
    if (!entry || --entry.refs > 0) return;
    fanout.delete(roomId);
    void entry.ready.then((unsubscribe) => unsubscribe()).catch(() => {});
  }

  // -- helpers ------------------------------------------------------------

  function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
    const res = parsePayload(schema, input);
    if (!res.ok) throw new PresenceError(res.error.code, res.error.message);
    return res.value;
  }

  function syncData(socket: AnySocket, st: SocketState): void {
    const list = [...st.rooms.values()].map((m) => ({ ...m }));
    const data = socket.data as Record<string, unknown>;
    data.presenceRooms = list;
    data.presenceRoomId = list.length === 1 ? list[0]!.roomId : undefined;
    data.presenceUserId = list.length === 1 ? list[0]!.userId : st.authUserId;
  }

  function resolve(st: SocketState, roomId: RoomId | undefined): Membership {
    if (roomId !== undefined) {
      const m = st.rooms.get(roomId);
      if (!m) throw new PresenceError('not_joined', `this socket has not joined room '${roomId}'`);
      return m;
    }
    if (st.rooms.size === 1) return st.rooms.values().next().value!;
    if (st.rooms.size === 0) throw new PresenceError('not_joined', 'this socket has not joined any room');
    throw new PresenceError('invalid_payload', 'roomId is required when the socket is in several rooms');
  }

  function drop(socket: AnySocket, st: SocketState, m: Membership): void {
    if (st.rooms.get(m.roomId) !== m) return;
    st.rooms.delete(m.roomId);
    void socket.leave(socketRoomOf(m.roomId));
    release(m.roomId);
    syncData(socket, st);
  }

  async function allowed(ctx: AuthorizeContext): Promise<boolean> {
    if (!options.authorize) return true;
    return (await options.authorize(ctx)) === true;
  }

  // -- handlers -----------------------------------------------------------

  async function onJoin(socket: AnySocket, st: SocketState, raw: unknown): Promise<JoinAck> {
    const p = parse(schemas.join, raw);
    if (st.authUserId !== undefined && p.userId !== st.authUserId) {
      throw new PresenceError('forbidden', 'userId must be the subject of your token; a client cannot act as another user');
    }
    const existing = st.rooms.get(p.roomId);
    if (existing && existing.userId !== p.userId) {
      throw new PresenceError('forbidden', `this socket is in room '${p.roomId}' as another user; leave first`);
    }
    if (!existing && st.rooms.size >= maxRooms) {
      throw new PresenceError('forbidden', `a socket may be in at most ${maxRooms} rooms; leave one first`);
    }
    if (!(await allowed({ socket, userId: p.userId, roomId: p.roomId, action: 'join' }))) {
      throw new PresenceError('forbidden', `not allowed to join room '${p.roomId}'`);
    }
    if (!existing) {
      // Subscribe and enter the Socket.IO room *before* the join, so that no
      // event after the snapshot's seq can be missed. Events that arrive
      // before the ack are buffered by the client (docs/protocol.md).
      await acquire(p.roomId);
      await socket.join(socketRoomOf(p.roomId));
    }
    let res;
    try {
      res = await service.joinParsed({ roomId: p.roomId, userId: p.userId, state: p.state, connId: existing?.connId ?? p.connId });
    } catch (err) {
      if (!existing) {
        void socket.leave(socketRoomOf(p.roomId));
        release(p.roomId);
      }
      throw err;
    }
    if (!socket.connected || disposed) {
      // The socket went away while the join was in flight: treat it as a disconnect.
      if (!existing) release(p.roomId);
      await service.disconnectParsed({ roomId: p.roomId, connId: res.connId, epoch: res.epoch }).catch(() => {});
      throw new PresenceError('not_joined', 'the socket disconnected during the join');
    }
    const m: Membership = { roomId: p.roomId, userId: p.userId, connId: res.connId, epoch: res.epoch };
    st.rooms.set(p.roomId, m);
    syncData(socket, st);
    metrics.joins.inc({ outcome: res.resumed ? 'resumed' : 'joined' });
    return { ok: true, self: { connId: res.connId, epoch: res.epoch, resumed: res.resumed }, snapshot: res.snapshot };
  }

  async function onHeartbeat(socket: AnySocket, st: SocketState, raw: unknown): Promise<HeartbeatAck> {
    const p = parse(schemas.heartbeat, raw);
    const m = resolve(st, p.roomId);
    if (p.epoch !== undefined && p.epoch !== m.epoch) {
      metrics.staleEpochs.inc();
      throw new PresenceError('stale_epoch', `epoch ${p.epoch} is not current; this socket holds epoch ${m.epoch}`);
    }
    try {
      const res = await service.heartbeatParsed(m, p.patchState);
      heartbeatsOk.inc();
      return { ok: true, epoch: res.epoch };
    } catch (err) {
      if (err instanceof PresenceError && (err.code === 'stale_epoch' || err.code === 'not_joined')) {
        // Fenced by a newer incarnation, or gone: this socket no longer holds the connection.
        if (err.code === 'stale_epoch') metrics.staleEpochs.inc();
        drop(socket, st, m);
      }
      throw err;
    }
  }

  async function onLeave(socket: AnySocket, st: SocketState, raw: unknown): Promise<LeaveAck> {
    const p = parse(schemas.leave, raw);
    const m = resolve(st, p.roomId);
    try {
      await service.leaveParsed(m);
      metrics.leaves.inc({ reason: 'leave' });
    } catch (err) {
      if (!(err instanceof PresenceError) || (err.code !== 'not_joined' && err.code !== 'stale_epoch')) throw err;
      drop(socket, st, m);
      // Already gone is what the client wanted; a newer incarnation is not ours to end.
      if (err.code === 'stale_epoch') throw err;
      return { ok: true };
    }
    drop(socket, st, m);
    return { ok: true };
  }

  async function onMessage(socket: AnySocket, st: SocketState, raw: unknown): Promise<MessageAck> {
    const p = parse(schemas.message, raw);
    const m = resolve(st, p.roomId);
    if (!(await allowed({ socket, userId: m.userId, roomId: m.roomId, action: 'message', event: p.event }))) {
      throw new PresenceError('forbidden', `not allowed to send '${p.event}' to room '${m.roomId}'`);
    }
    const msg: RoomMessage = { roomId: m.roomId, event: p.event, data: p.data, userId: m.userId, connId: m.connId, ts: Date.now() };
    socket.to(socketRoomOf(m.roomId)).emit(EVENTS.message, msg);
    metrics.messages.inc();
    return { ok: true };
  }

  /** Registers a handler that runs in the socket's queue and always acks exactly once. */
  function handle(socket: AnySocket, st: SocketState, event: string, fn: (socket: AnySocket, st: SocketState, raw: unknown) => Promise<{ ok: boolean }>): void {
    const listener = (...args: unknown[]): void => {
      const last = args[args.length - 1];
      const ack = typeof last === 'function' ? (args.pop() as (res: unknown) => void) : undefined;
      const reply = (res: { ok: boolean }): void => {
        if (!res.ok) metrics.errors.inc({ event, code: (res as ErrorAck).error.code });
        try {
          ack?.(res);
        } catch (err) {
          logger.warn({ err, event }, 'ack callback threw');
        }
      };
      if (st.pending >= MAX_PENDING) return reply(errorAck('rate_limited', `more than ${MAX_PENDING} requests are waiting on this connection`));
      st.pending++;
      st.queue = st.queue.then(async () => {
        let res: { ok: boolean };
        try {
          res = disposed ? errorAck('internal', 'presence is shutting down') : await fn(socket, st, args[0]);
        } catch (err) {
          if (err instanceof PresenceError) res = errorAck(err.code, err.message);
          else {
            logger.error({ err, event, socketId: socket.id }, 'presence handler failed');
            res = errorAck('internal', 'the server failed to handle the request');
          }
        } finally {
          st.pending--;
        }
        reply(res);
      });
    };
    socket.on(event, listener);
    st.handlers.push([event, listener]);
  }

  // -- connection lifecycle ----------------------------------------------

  const onDisconnect = (socket: AnySocket, st: SocketState) => (): void => {
    metrics.connections.dec();
    if (st.expiryTimer) clearTimeout(st.expiryTimer);
    st.queue = st.queue.then(async () => {
      const rooms = [...st.rooms.values()];
      st.rooms.clear();
      states.delete(socket);
      await Promise.all(
        rooms.map(async (m) => {
          try {
            await service.disconnectParsed(m);
            if (service.options.disconnectGraceMs === 0) metrics.leaves.inc({ reason: 'disconnect' });
          } catch (err) {
            // stale_epoch: resumed elsewhere; not_joined: already gone. Both are fine here.
            if (!(err instanceof PresenceError) || err.code === 'internal') logger.warn({ err, roomId: m.roomId }, 'disconnect cleanup failed');
          } finally {
            release(m.roomId);
          }
        }),
      );
    });
  };

  const pendingAuth = new WeakMap<object, { userId: string; expiresAt?: number | undefined }>();
  if (options.verifyToken) {
    const verify = options.verifyToken;
    nsp.use((socket, next) => {
      if (disposed) return next();
      const auth = socket.handshake.auth as { token?: unknown } | undefined;
      verify(auth?.token as string).then(
        (v) => {
          pendingAuth.set(socket, v);
          next();
        },
        (err: unknown) => {
          const message = err instanceof PresenceError ? err.message : 'token invalid';
          const e = new Error(message) as Error & { data: { code: string; message: string } };
          e.data = { code: 'unauthorized', message };
          next(e);
        },
      );
    });
  }

  const onConnection = (socket: AnySocket): void => {
    if (disposed) return;
    const auth = pendingAuth.get(socket);
    const st: SocketState = {
      rooms: new Map(),
      queue: Promise.resolve(),
      pending: 0,
      authUserId: auth?.userId,
      bucket: rateLimit ? new TokenBucket(rateLimit, Date.now()) : undefined,
      expiryTimer: undefined,
      handlers: [],
    };
    states.set(socket, st);
    metrics.connections.inc();
    syncData(socket, st);
    if (auth?.expiresAt !== undefined) {
      const ms = auth.expiresAt - Date.now();
      if (ms < 2 ** 31 - 1) {
        st.expiryTimer = setTimeout(() => {
          socket.emit(EVENTS.error, { code: 'unauthorized', message: 'token expired; reconnect with a fresh token' });
          socket.disconnect(true);
        }, Math.max(0, ms));
        st.expiryTimer.unref();
      }
    }
    if (st.bucket) {
      const bucket = st.bucket;
      socket.use((packet, next) => {
        if (disposed) return next();
        const verdict = bucket.take(Date.now());
        if (verdict === 'ok') return next();
        const last = packet[packet.length - 1];
        if (typeof last === 'function') {
          metrics.errors.inc({ event: String(packet[0]), code: 'rate_limited' });
          (last as (r: ErrorAck) => void)(errorAck('rate_limited', `more than ${rateLimit!.eventsPerSecond} events per second; slow down`));
        }
        if (verdict === 'abuse') {
          logger.warn({ socketId: socket.id }, 'disconnecting a socket that keeps flooding');
          socket.emit(EVENTS.error, { code: 'rate_limited', message: 'disconnected: sustained event flood' });
          socket.disconnect(true);
        }
      });
    }
    handle(socket, st, EVENTS.join, onJoin);
    handle(socket, st, EVENTS.heartbeat, onHeartbeat);
    handle(socket, st, EVENTS.leave, onLeave);
    handle(socket, st, EVENTS.message, onMessage);
    const disconnect = onDisconnect(socket, st);
    socket.once('disconnect', disconnect);
    st.handlers.push(['disconnect', disconnect]);
  };
  nsp.on('connection', onConnection);

  if (options.startReaper !== false) service.start();

  return {
    service,
    metrics,
    broadcast(roomId, event, data) {
      const p = parse(schemas.message, { roomId, event, data });
      const msg: RoomMessage = { roomId: p.roomId!, event: p.event, data: p.data, ts: Date.now() };
      nsp.to(socketRoomOf(p.roomId!)).emit(EVENTS.message, msg);
    },
    membership(socket, roomId) {
      const st = states.get(socket);
      if (!st) return undefined;
      try {
        const m = resolve(st, roomId as RoomId | undefined);
        return { ...m };
      } catch {
        return undefined;
      }
    },
    async dispose({ leave = true } = {}) {
      if (disposed) return;
      disposed = true;
      nsp.off('connection', onConnection);
      const all = [...states.entries()];
      states.clear();
      await Promise.all(
        all.map(async ([socket, st]) => {
          for (const [event, fn] of st.handlers) socket.off(event, fn);
          if (st.expiryTimer) clearTimeout(st.expiryTimer);
          await st.queue;
          const rooms = [...st.rooms.values()];
          st.rooms.clear();
          for (const m of rooms) void socket.leave(socketRoomOf(m.roomId));
          if (leave) {
            await Promise.all(
              rooms.map((m) =>
                service.leaveParsed(m, { reason: 'disconnect' }).then(
                  () => metrics.leaves.inc({ reason: 'disconnect' }),
                  (err: unknown) => logger.warn({ err, roomId: m.roomId }, 'leave at dispose failed'),
                ),
              ),
            );
          }
        }),
      );
      fanout.clear();
      await service.dispose();
      if (ownsEngine) await engine.close();
    },
  };
}
