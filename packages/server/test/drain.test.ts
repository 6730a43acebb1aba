// The drain of a node on SIGTERM (SPEC §10 "Graceful drain"), without nginx:
// /ready 503 first, then clients are told to reconnect elsewhere and presence
// connections get the disconnect grace, so they resume on another node with
// no leave and no join seen by anyone. The memory engine leaves at once.
import { randomUUID } from 'node:crypto';
import { Centrifuge } from 'centrifuge';
import { io as ioc } from 'socket.io-client';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import type { PresenceEvent } from 'realtime-message-protocol';
import { NodeProcess, connect, request, room, startServer, waitFor } from 'realtime-message-testing';
import { PresenceObserver, TcpBalancer, sdkMember, type Member } from './deploy-fixtures.js';

vi.setConfig({ testTimeout: 40_000 });

const prefix = (): string => `dr${randomUUID().slice(0, 6)}:`;

describe('drain on SIGTERM (Redis)', () => {
  it('/ready answers 503 for DRAIN_READY_DELAY_MS while the node still serves; then it stops and exits 0', async () => {
    const node = await NodeProcess.start({ REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: prefix(), DRAIN_READY_DELAY_MS: '1000' });
    const s = await connect(node.url);
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    expect((await node.get('/ready')).status).toBe(200);
    const t0 = Date.now();
    node.proc.kill('SIGTERM');
    const ready = await waitFor(async () => {
      const r = await node.get('/ready');
      return r.status === 503 ? r : undefined;
    }, { what: '/ready 503 after SIGTERM' });
    expect(JSON.parse(ready.body)).toEqual({ status: 'unavailable', engine: 'redis', checks: { redis: 'ok', drain: 'unavailable' } });
    // Still serving during the delay: liveness, an existing connection, a new HTTP request.
    expect((await node.get('/health')).status).toBe(200);
    expect((await request(s, 'presence:heartbeat')).ok).toBe(true);
    expect(await node.waitExit()).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(node.logs.join('\n')).toContain('draining: /ready answers 503');
  });

  it('members of the drained node resume on the others: no leave, no join; Socket.IO and Centrifugo clients reconnect through the balancer', async () => {
    const keyPrefix = prefix();
    const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: keyPrefix, PRESENCE_TTL_MS: '6000', PRESENCE_DISCONNECT_GRACE_MS: '3000', PRESENCE_REAPER_INTERVAL_MS: '300' };
    const nodes = await Promise.all([NodeProcess.start(env), NodeProcess.start(env), NodeProcess.start(env)]);
    const victim = nodes[1]!;
    let pool: NodeProcess[] = nodes;
    const lb = await TcpBalancer.start(() => pool.filter((n) => n.proc.exitCode === null).map((n) => n.port));
    const observer = await PresenceObserver.start(inject('redisUrl'), keyPrefix);
    const r = room();
    // Round robin: two members per node.
    const members: Member[] = [];
    for (let i = 0; i < 6; i++) members.push(await sdkMember(lb.url, r, `u${i}`, { heartbeatIntervalMs: 500 }));
    // A plain socket.io-client with its own reconnection, and a Centrifugo client, both through the balancer to the victim.
    pool = [victim];
    const plain = ioc(lb.url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    onTestFinished(() => void plain.disconnect());
    let plainConnects = 0;
    plain.on('connect', () => plainConnects++);
    const centrifuge = new Centrifuge(`${lb.url.replace('http', 'ws')}/connection/websocket`, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 500 });
    onTestFinished(() => centrifuge.disconnect());
    const cfDisconnects: number[] = [];
    let cfConnects = 0;
    centrifuge.on('connected', () => cfConnects++);
    centrifuge.on('connecting', (ctx) => cfDisconnects.push(ctx.code));
    centrifuge.connect();
    await waitFor(() => plainConnects === 1 && cfConnects === 1, { what: 'plain and centrifuge clients connected' });
    pool = nodes;
    expect(await victim.kill('SIGTERM')).toBe(0);
    // Everyone is back (the victim's members on the other nodes), and the grace has run out.
    await waitFor(() => members.every((m) => m.client.state === 'connected' && m.room.state === 'joined') && plainConnects === 2 && cfConnects === 2, { timeoutMs: 10_000, what: 'every client reconnected' }).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify({ members: members.map((m) => [m.client.state, m.room.state, m.outages]), plainConnects, cfConnects, cfDisconnects })}`);
    });
    const moved = members.filter((m) => m.outages.length > 0);
    expect(moved.length).toBeGreaterThanOrEqual(1);
    expect(cfDisconnects).toContain(3001);
    await new Promise((resolve) => setTimeout(resolve, 3_000 + 300 + 700));
    const connIds = members.flatMap((m) => [...m.connIds]);
    expect(members.every((m) => m.connIds.size === 1), 'every member kept its connId').toBe(true);
    expect(observer.flickers(r, connIds)).toEqual([]);
    // No ghost: a fresh snapshot holds exactly the six members.
    const s = await connect(nodes[0]!.url);
    const snap = await request(s, 'presence:join', { roomId: r, userId: 'checker' });
    expect(snap.snapshot.members.map((m: { userId: string }) => m.userId).filter((u: string) => u !== 'checker').sort()).toEqual(members.map((m) => m.userId).sort());
    expect(snap.snapshot.connections.map((c: { connId: string }) => c.connId).filter((c: string) => connIds.includes(c))).toHaveLength(6);
  });

  it('a member that does not come back leaves after the disconnect grace (reason disconnect), not at once', async () => {
    const keyPrefix = prefix();
    const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: keyPrefix, PRESENCE_DISCONNECT_GRACE_MS: '1500', PRESENCE_REAPER_INTERVAL_MS: '200' };
    // The other node's reaper ends the grace (the drained node is gone).
    const [, node] = await Promise.all([NodeProcess.start(env), NodeProcess.start(env)]);
    const observer = await PresenceObserver.start(inject('redisUrl'), keyPrefix);
    const r = room();
    const s = await connect(node!.url);
    const joined = await request(s, 'presence:join', { roomId: r, userId: 'gone' });
    const t0 = Date.now();
    expect(await node!.kill('SIGTERM')).toBe(0);
    const leave = await waitFor(() => observer.of(r).find((e) => e.type === 'leave'), { timeoutMs: 6_000, what: 'the leave after the grace' });
    expect(leave).toEqual(expect.objectContaining({ connId: joined.self.connId, reason: 'disconnect' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
  });
});

describe('drain on the memory engine', () => {
  it('members leave at once with reason disconnect (nothing could resume them elsewhere)', async () => {
    const { server, url } = await startServer({ PRESENCE_DISCONNECT_GRACE_MS: '5000' });
    const events: PresenceEvent[] = [];
    await server.presence.service.subscribe((e) => events.push(e as PresenceEvent));
    const s = await connect(url);
    const r = room();
    const joined = await request(s, 'presence:join', { roomId: r, userId: 'ada' });
    const t0 = Date.now();
    await server.close();
    expect(server.draining).toBe(true);
    expect(events.filter((e) => e.type === 'leave')).toEqual([expect.objectContaining({ connId: joined.self.connId, reason: 'disconnect' })]);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});
