// deploy/nginx/realtime-message.conf in a real nginx (Debian's, a child
// process on loopback) in front of three nodes on one Redis: every protocol
// through it, long-polling stickiness, and the client address (X-Forwarded-For
// believed only from trusted proxies).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Centrifuge, type PublicationContext } from 'centrifuge';
import { RealtimeClient } from 'realtime-message-sdk';
import { io as ioc } from 'socket.io-client';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { NodeProcess, request, room, waitFor, type Client } from 'realtime-message-testing';
import { nginxBinary, renderNginxConf } from '../../../deploy/nginx/render.mjs';
import { Nginx } from './deploy-fixtures.js';

vi.setConfig({ testTimeout: 40_000 });
const exec = promisify(execFile);
const API_KEY = 'nginx-test-api-key-0123456789';

async function cluster(n: number, extra: Record<string, string> = {}): Promise<{ nodes: NodeProcess[]; nginx: Nginx }> {
  const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `ng${randomUUID().slice(0, 6)}:`, TRUST_PROXY: 'loopback', API_KEY, ...extra };
  const nodes = await Promise.all(Array.from({ length: n }, () => NodeProcess.start(env)));
  return { nodes, nginx: await Nginx.start(nodes.map((p) => p.port)) };
}

function socket(url: string, transports: Array<'websocket' | 'polling'>, extraHeaders?: Record<string, string>): Promise<Client> {
  const s: Client = ioc(url, { transports, reconnection: false, forceNew: true, ...(extraHeaders ? { extraHeaders } : {}) });
  onTestFinished(() => void s.disconnect());
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

describe('deploy/nginx recipe', () => {
  it('is a valid nginx configuration (nginx -t), also as a complete file', async () => {
    const prefix = mkdtempSync(join(tmpdir(), 'rm-nginx-t-'));
    onTestFinished(() => rmSync(prefix, { recursive: true, force: true }));
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, renderNginxConf({ nodes: ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'], listen: '127.0.0.1:9', prefix }));
    const { stderr } = await exec(nginxBinary(), ['-t', '-c', conf, '-p', prefix]);
    expect(stderr).toContain('test is successful');
  });

  it('Socket.IO (WebSocket and long-polling), Centrifugo and REST through nginx in front of three nodes', async () => {
    const { nginx } = await cluster(3);
    const r = room();
    // Socket.IO over WebSocket and over long-polling only (sticky: every poll of the session reaches its node).
    const ws = await socket(nginx.url, ['websocket']);
    const polling = await socket(nginx.url, ['polling']);
    expect((await request(ws, 'presence:join', { roomId: r, userId: 'ws-user' })).ok).toBe(true);
    const joined = await request(polling, 'presence:join', { roomId: r, userId: 'poll-user' });
    expect(joined.ok).toBe(true);
    for (let i = 0; i < 10; i++) expect((await request(polling, 'presence:heartbeat', { patchState: { i } })).ok).toBe(true);
    expect(polling.io.engine.transport.name).toBe('polling');
    // REST through nginx: both users are online, whichever node answers.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${nginx.url}/api/v2/presence?users=ws-user,poll-user`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { users: Array<{ status: string }> }).users.map((u) => u.status)).toEqual(['online', 'online']);
    }
    // Channels: a Centrifugo client and an SDK subscriber through nginx get a publication made with the server API through nginx.
    const channel = `chat:${randomUUID().slice(0, 8)}`;
    const centrifuge = new Centrifuge(`${nginx.url.replace('http', 'ws')}/connection/websocket`, { websocket: WebSocket });
    onTestFinished(() => centrifuge.disconnect());
    const cfGot: PublicationContext[] = [];
    const sub = centrifuge.newSubscription(channel);
    sub.on('publication', (p) => cfGot.push(p));
    const subscribed = new Promise((resolve) => sub.once('subscribed', resolve));
    sub.subscribe();
    centrifuge.connect();
    await subscribed;
    const client = new RealtimeClient({ url: nginx.url });
    onTestFinished(() => client.shutdown());
    const sdkSub = await client.subscribe(channel);
    const sdkGot: unknown[] = [];
    sdkSub.on('publication', (p) => sdkGot.push(p.data));
    const res = await fetch(`${nginx.url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify({ channel, data: { hello: 'nginx' } }) });
    expect(res.status).toBe(200);
    await waitFor(() => cfGot.length === 1 && sdkGot.length === 1, { what: 'the publication on both clients' });
    expect(cfGot[0]!.data).toEqual({ hello: 'nginx' });
    expect(sdkGot).toEqual([{ hello: 'nginx' }]);
    // /health and /ready through nginx; /metrics is not exposed there.
    expect((await fetch(`${nginx.url}/ready`)).status).toBe(200);
    expect((await fetch(`${nginx.url}/metrics`)).status).toBe(404);
  });

  it('X-Forwarded-For: nginx replaces a forged one; a node believes it only from TRUST_PROXY', async () => {
    // One node behind nginx: REST rate limit of 1/s, burst 2, per client address.
    const { nodes, nginx } = await cluster(1, { STATUS_RATE_LIMIT: '1', STATUS_RATE_LIMIT_BURST: '2' });
    const get = (url: string, xff: string) => fetch(`${url}/api/v2/presence/ada`, { headers: { 'x-forwarded-for': xff } }).then((res) => res.status);
    // Straight to the node from loopback (trusted here, as nginx is): each forwarded address has its own budget.
    const direct: number[] = [];
    for (let i = 0; i < 5; i++) direct.push(await get(nodes[0]!.url, `203.0.113.${i + 1}`));
    expect(direct).toEqual([200, 200, 200, 200, 200]);
    // Through nginx, forged addresses are replaced by the client's own: one budget, so the third request is limited.
    const viaNginx: number[] = [];
    for (let i = 0; i < 3; i++) viaNginx.push(await get(nginx.url, `198.51.100.${i + 1}`));
    expect(viaNginx).toEqual([200, 200, 429]);
  });

  it('a node ignores X-Forwarded-For from an address not in TRUST_PROXY (REST rate limit, Socket.IO per-address limit)', async () => {
    const node = await NodeProcess.start({ TRUST_PROXY: '192.0.2.1,10.0.0.0/8', STATUS_RATE_LIMIT: '1', STATUS_RATE_LIMIT_BURST: '2', MAX_CONNECTIONS_PER_ADDRESS: '2' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${node.url}/api/v2/presence/ada`, { headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } })).status);
    expect(statuses).toEqual([200, 200, 429]);
    await socket(node.url, ['websocket'], { 'x-forwarded-for': '203.0.113.1' });
    await socket(node.url, ['websocket'], { 'x-forwarded-for': '203.0.113.2' });
    await expect(socket(node.url, ['websocket'], { 'x-forwarded-for': '203.0.113.3' })).rejects.toThrow();
  });

  it('a node behind a trusted proxy counts Socket.IO connections per forwarded address', async () => {
    const node = await NodeProcess.start({ TRUST_PROXY: 'loopback', MAX_CONNECTIONS_PER_ADDRESS: '1' });
    await socket(node.url, ['websocket'], { 'x-forwarded-for': '203.0.113.1' });
    await socket(node.url, ['websocket'], { 'x-forwarded-for': '203.0.113.2' });
    await expect(socket(node.url, ['websocket'], { 'x-forwarded-for': '203.0.113.2' })).rejects.toThrow();
  });
});
