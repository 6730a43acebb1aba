import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { onTestFinished } from 'vitest';
import { initPresence, type InitPresenceOptions, type PresenceRuntime } from 'realtime-message';
import { RealtimeClient, type RealtimeClientOptions } from '../src/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export interface TestServer {
  url: string;
  io: Server;
  runtime: PresenceRuntime;
  /** Server-side heartbeat count, per room. */
  heartbeats: Map<string, number>;
  /** Epochs carried by the heartbeats the server received, per room. */
  epochs: Map<string, number[]>;
}

/** The real gateway on a free port (memory engine, or Redis when a URL is given). */
export async function startServer(opts: Partial<InitPresenceOptions> & { redisUrl?: string | undefined } = {}): Promise<TestServer> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], cors: { origin: true } });
  const redis = opts.redisUrl ? new Redis(opts.redisUrl, { maxRetriesPerRequest: 1 }).on('error', () => {}) : undefined;
  const runtime = initPresence({ io, redis, keyPrefix: `sdk:${randomUUID().slice(0, 8)}:`, ...opts });
  const heartbeats = new Map<string, number>();
  const epochs = new Map<string, number[]>();
  // The gateway calls heartbeatParsed (it validated the payload already).
  const original = runtime.service.heartbeatParsed.bind(runtime.service);
  runtime.service.heartbeatParsed = (t, patch) => {
    heartbeats.set(t.roomId, (heartbeats.get(t.roomId) ?? 0) + 1);
    epochs.set(t.roomId, [...(epochs.get(t.roomId) ?? []), t.epoch]);
    return original(t, patch);
  };
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    await runtime.dispose({ leave: false });
    await io.close();
    redis?.disconnect();
  });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, io, runtime, heartbeats, epochs };
}

/** A client that is shut down after the test. */
export function client(url: string, opts: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const c = new RealtimeClient({ url, reconnect: { minDelayMs: 20, maxDelayMs: 100 }, ...opts });
  onTestFinished(() => c.shutdown());
  return c;
}

export const room = (): string => `room-${randomUUID()}`;
