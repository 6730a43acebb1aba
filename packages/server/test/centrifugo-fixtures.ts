import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RealtimeServer } from 'realtime-message';
import { Centrifuge, type Options, type PublicationContext, type Subscription } from 'centrifuge';
import { SignJWT, type JWTPayload } from 'jose';
import { onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { startServer, waitFor } from 'realtime-message-testing';

/** The HMAC secret the Centrifugo tests sign tokens with (AUTH_JWT_SECRET). */
export const SECRET = 'centrifugo-test-secret-of-at-least-32-bytes';

export const channel = (ns = 'chat'): string => `${ns}:${randomUUID().slice(0, 8)}`;

export const wsUrl = (httpUrl: string): string => `${httpUrl.replace(/^http/, 'ws')}/connection/websocket`;

/** A Centrifugo-style HS256 JWT (connection or subscription claims), expiring in `ttlSec` unless `exp` is given. */
export async function token(claims: JWTPayload & Record<string, unknown>, opts: { ttlSec?: number; secret?: string; alg?: string } = {}): Promise<string> {
  const { exp, ...rest } = claims;
  const jwt = new SignJWT(rest).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).setIssuedAt();
  jwt.setExpirationTime(exp ?? Math.floor(Date.now() / 1_000) + (opts.ttlSec ?? 3_600));
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

/** The standalone server with the Centrifugo endpoint; `auth: true` sets AUTH_JWT_SECRET. */
export async function centrifugoServer(env: Record<string, string> = {}, opts: { auth?: boolean } = {}): Promise<{ url: string; ws: string; server: RealtimeServer }> {
  const { url, server } = await startServer({ DEMO_DIR: 'off', ...(opts.auth ? { AUTH_JWT_SECRET: SECRET } : {}), ...env });
  return { url, ws: wsUrl(url), server };
}

/** Drops a client's connection on the server side without a close frame (as a network failure would): the client reconnects. */
export function dropConnection(server: RealtimeServer, clientId: string): void {
  const conn = [...server.centrifugo!.connections].find((c) => c.client === clientId);
  if (!conn) throw new Error(`no connection ${clientId} on this server`);
  conn.ws.terminate();
}

/** A channels config file (Centrifugo's shape) in a temporary folder. */
export function channelsConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'cf-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** The official client in Node (with `ws`), disconnected after the test. Not connected yet. */
export function client(ws: string, options: Partial<Options> = {}): Centrifuge {
  const c = new Centrifuge(ws, { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 300, timeout: 3_000, ...options });
  onTestFinished(() => c.disconnect());
  return c;
}

/** Collects a subscription's publications (data). */
export function publications(sub: Subscription): PublicationContext[] {
  const seen: PublicationContext[] = [];
  sub.on('publication', (ctx) => seen.push(ctx));
  return seen;
}

/** Waits until `n` items are collected. */
export function waitLength<T>(list: T[], n: number, what = `${n} items`): Promise<true> {
  return waitFor(() => (list.length >= n ? true : undefined), { what, timeoutMs: 8_000 });
}

/** A raw WebSocket to the endpoint: frames received, and the close code and reason. */
export interface RawSocket {
  ws: WebSocket;
  frames: string[];
  closed: Promise<{ code: number; reason: string }>;
  send(...lines: string[]): void;
  /** The next frame received after this call (or one already waiting at `from`). */
  next(from?: number): Promise<string>;
}

export async function raw(ws: string, opts: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<RawSocket> {
  const sock = new WebSocket(ws, opts.protocols ?? [], opts);
  onTestFinished(() => sock.terminate());
  const frames: string[] = [];
  sock.on('message', (d) => frames.push(String(d)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => sock.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  await new Promise<void>((resolve, reject) => {
    sock.once('open', () => resolve());
    sock.once('error', reject);
  });
  return {
    ws: sock,
    frames,
    closed,
    send: (...lines) => sock.send(lines.join('\n')),
    next: async (from = frames.length) => waitFor(() => frames[from], { what: 'a frame', timeoutMs: 5_000 }),
  };
}
