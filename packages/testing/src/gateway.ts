import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as ioc, type Socket as ClientSocket } from 'socket.io-client';
import { onTestFinished } from 'vitest';
import type { ClientToServerEvents, PresenceEvent, PresenceWireEvent, RoomMessage, ServerToClientEvents } from 'realtime-message-protocol';
import { initPresence, MemoryEngine, RedisEngine, type InitPresenceOptions, type PresenceRuntime } from 'realtime-message';
import { TestEngine } from './test-engine.js';
import { waitFor } from './wait.js';

export type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

export interface Gateway {
  url: string;
  io: Server;
  runtime: PresenceRuntime;
  close(): Promise<void>;
}

export type GatewayOptions = Partial<InitPresenceOptions> & { redisUrl?: string | undefined; serverOptions?: ConstructorParameters<typeof Server>[1] };

/**
 * A real Socket.IO server with presence (`initPresence`, as documented) on
 * port 0; torn down after the test. With `redisUrl` it passes a Redis client,
 * with `engine` that engine, else the memory engine.
 */
export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const { redisUrl, serverOptions, ...presence } = opts;
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], ...serverOptions });
  const redis = redisUrl ? new Redis(redisUrl, { maxRetriesPerRequest: 1 }).on('error', () => {}) : undefined;
  const runtime = initPresence({ io, redis, keyPrefix: `g:${randomUUID().slice(0, 8)}:`, ...presence });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      await runtime.dispose({ leave: false });
      await io.close();
      redis?.disconnect();
    })());
  onTestFinished(close);
  return { url, io, runtime, close };
}

/**
 * A {@link TestEngine} over the memory engine, or over a RedisEngine on its
 * own client and key prefix when `redisUrl` is given; closed after the test.
 */
export function testEngine(redisUrl?: string): TestEngine {
  if (!redisUrl) {
    const engine = new TestEngine(new MemoryEngine());
    onTestFinished(() => engine.close());
    return engine;
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 }).on('error', () => {});
  const engine = new TestEngine(new RedisEngine({ redis, keyPrefix: `te:${randomUUID().slice(0, 8)}:` }));
  onTestFinished(async () => {
    await engine.close();
    redis.disconnect();
  });
  return engine;
}

/** A connected socket.io-client socket (WebSocket), disconnected after the test. */
export async function connect(url: string, opts: Parameters<typeof ioc>[1] = {}): Promise<Client> {
  const socket: Client = ioc(url, { transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
  onTestFinished(() => {
    socket.disconnect();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Emits with an ack and a deadline. */
export function request<T = any>(socket: Client, event: string, ...args: unknown[]): Promise<T> {
  return (socket.timeout(5_000) as unknown as { emitWithAck(e: string, ...a: unknown[]): Promise<T> }).emitWithAck(event, ...args);
}

export interface Listener<E extends PresenceWireEvent = PresenceEvent> {
  /** Presence events in arrival order. */
  events: E[];
  /** Custom room messages in arrival order. */
  messages: RoomMessage[];
  /** The first event that matches, waiting for it with a deadline. */
  waitFor(pred: (e: E) => boolean, what?: string): Promise<E>;
  /** Waits until `n` events arrived. */
  waitCount(n: number): Promise<E[]>;
}

/**
 * Collects the presence events and messages a client receives. Events are
 * typed in the full form, which is what a socket gets unless it joined with
 * `updates: 'patch'`; for such a socket, `listen<PresenceWireEvent>(socket)`.
 */
export function listen<E extends PresenceWireEvent = PresenceEvent>(socket: Client): Listener<E> {
  const events: E[] = [];
  const messages: RoomMessage[] = [];
  socket.on('presence:event', (e) => events.push(e as E));
  socket.on('presence:message', (m) => messages.push(m));
  return {
    events,
    messages,
    waitFor: (pred: (e: E) => boolean, what = 'event') => waitFor(() => events.find(pred), { what }),
    waitCount: (n: number) => waitFor(() => (events.length >= n ? events : undefined), { what: `${n} events (have ${events.length})` }),
  };
}

/**
 * Settle marker: a new member joins `roomId` through `url` (any node) and
 * this waits until every listener got its join event. Events of a room
 * arrive in order, on every node, so everything emitted before the marker has
 * arrived by then. Returns, per listener, that room's events before the
 * marker: assert "exactly once", "no leave" or "no duplicate" on these, not
 * right after the first event.
 */
export async function settle<E extends PresenceWireEvent = PresenceEvent>(url: string, roomId: string, ...listeners: Listener<E>[]): Promise<E[][]> {
  const marker = await connect(url);
  const ack = await request(marker, 'presence:join', { roomId, userId: `marker-${randomUUID()}` });
  if (!ack?.ok) throw new Error(`the settle marker could not join ${roomId}: ${JSON.stringify(ack)}`);
  const connId: string = ack.self.connId;
  return Promise.all(
    listeners.map(async (l) => {
      await waitFor(() => l.events.some((e) => e.connId === connId), { what: `the settle marker in ${roomId}` });
      return l.events.slice(0, l.events.findIndex((e) => e.connId === connId)).filter((e) => e.roomId === roomId);
    }),
  );
}

/** A fresh room id, so tests never share a room. */
export const room = (): string => `room-${randomUUID()}`;
