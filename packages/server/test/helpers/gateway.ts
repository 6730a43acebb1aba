import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as ioc, type Socket as ClientSocket } from 'socket.io-client';
import { onTestFinished } from 'vitest';
import type { ClientToServerEvents, PresenceEvent, RoomMessage, ServerToClientEvents } from 'realtime-message-protocol';
import { initPresence, type InitPresenceOptions, type PresenceRuntime } from '../../src/index.js';
import { waitFor } from './wait.js';

export type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

export interface Gateway {
  url: string;
  io: Server;
  runtime: PresenceRuntime;
  close(): Promise<void>;
}

/** A real Socket.IO server with presence on a free port; torn down after the test. */
export async function startGateway(opts: Partial<InitPresenceOptions> & { redisUrl?: string; serverOptions?: ConstructorParameters<typeof Server>[1] } = {}): Promise<Gateway> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], ...opts.serverOptions });
  const redis = opts.redisUrl ? new Redis(opts.redisUrl, { maxRetriesPerRequest: 1 }).on('error', () => {}) : undefined;
  const runtime = initPresence({
    io,
    redis,
    keyPrefix: opts.keyPrefix ?? `g:${randomUUID().slice(0, 8)}:`,
    ...opts,
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await runtime.dispose({ leave: false });
    await io.close();
    redis?.disconnect();
  };
  onTestFinished(close);
  return { url, io, runtime, close };
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

/** Collects presence events and messages a client receives. */
export function listen(socket: Client) {
  const events: PresenceEvent[] = [];
  const messages: RoomMessage[] = [];
  socket.on('presence:event', (e) => events.push(e));
  socket.on('presence:message', (m) => messages.push(m));
  return {
    events,
    messages,
    waitFor: (pred: (e: PresenceEvent) => boolean, what = 'event') => waitFor(() => events.find(pred), { what }),
    waitCount: (n: number) => waitFor(() => events.length >= n && events, { what: `${n} events (have ${events.length})` }),
  };
}

export const room = (): string => `room-${randomUUID()}`;
