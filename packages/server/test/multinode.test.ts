import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, inject, it, vi } from 'vitest';

vi.setConfig({ testTimeout: 45_000 });
import type { PresenceEvent } from 'realtime-message-protocol';
import { NodeProcess, connect, listen, request, room, settle, startRedis, waitFor, type Client } from 'realtime-message-testing';

/** Events after the snapshot must be contiguous: exactly once, in seq order. */
function expectContiguous(events: PresenceEvent[], fromSeq: number, toSeq: number): void {
  const after = events.filter((e) => e.seq > fromSeq).map((e) => e.seq);
  expect(after).toEqual(Array.from({ length: toSeq - fromSeq }, (_, i) => fromSeq + 1 + i));
}

function keepAlive(socket: Client, everyMs: number): () => void {
  const t = setInterval(() => void request(socket, 'presence:heartbeat').catch(() => {}), everyMs);
  return () => clearInterval(t);
}

const base = (extra: Record<string, string>) => ({ REDIS_KEY_PREFIX: `mn${randomUUID().slice(0, 6)}:`, LOG_LEVEL: 'info', ...extra });

describe.each([
  ['redis', () => ({ REDIS_URL: inject('redisUrl') })],
  ['redis cluster', () => ({ REDIS_CLUSTER_NODES: inject('clusterNodes').map((n) => `${n.host}:${n.port}`).join(',') })],
])('several server processes on one %s', (_name, redisEnv) => {
  it('a member on one node sees the other nodes\u2019 events exactly once, in seq order; custom messages cross nodes', async () => {
    const env = base(redisEnv());
    const nodes = await Promise.all([NodeProcess.start(env), NodeProcess.start(env), NodeProcess.start(env)]);
    const r = room();
    const clients = await Promise.all(nodes.map((n) => connect(n.url)));
    const logs = clients.map((c) => listen(c));
    const acks: any[] = [];
    for (const [i, c] of clients.entries()) acks.push(await request(c, 'presence:join', { roomId: r, userId: `u${i}` }));
    await Promise.all(clients.map((c, i) => request(c, 'presence:heartbeat', { patchState: { n: i } })));
    await request(clients[2]!, 'presence:leave');
    const last = 3 + 3 + 1;
    // Settle through the third node: once its marker arrived, every earlier event of the room has.
    const [e0, e1] = await settle(nodes[2]!.url, r, logs[0]!, logs[1]!);
    expectContiguous(e0!, acks[0].snapshot.seq, last);
    expectContiguous(e1!, acks[1].snapshot.seq, last);
    // The same events above both snapshots; never a socket's own join.
    const both = acks[1].snapshot.seq;
    expect(e0!.filter((e) => e.seq > both)).toEqual(e1!.filter((e) => e.seq > both));
    for (const [i, e] of [e0!, e1!].entries()) expect(e.filter((x) => x.type === 'join' && x.connId === acks[i].self.connId)).toEqual([]);
    // custom event from node 1 to the member on node 0
    expect(await request(clients[1]!, 'presence:message', { event: 'chat:message', data: { text: 'hello' } })).toEqual({ ok: true });
    await waitFor(() => logs[0]!.messages.length === 1, { what: 'cross-node message' });
    expect(logs[0]!.messages[0]).toEqual(expect.objectContaining({ event: 'chat:message', data: { text: 'hello' }, userId: 'u1' }));
  });

  it('kill -9 of a node: its members leave (timeout) on the other nodes within TTL + reaper interval', async () => {
    const env = base({ ...redisEnv(), PRESENCE_TTL_MS: '1500', PRESENCE_REAPER_INTERVAL_MS: '200', PRESENCE_DISCONNECT_GRACE_MS: '300' });
    const [a, b] = await Promise.all([NodeProcess.start(env), NodeProcess.start(env)]);
    const r = room();
    const watcher = await connect(a.url);
    const lw = listen(watcher);
    await request(watcher, 'presence:join', { roomId: r, userId: 'watcher' });
    const stop = keepAlive(watcher, 300);
    try {
      const victim = await connect(b.url);
      const joined = await request(victim, 'presence:join', { roomId: r, userId: 'victim' });
      const lastBeat = Date.now();
      await b.kill('SIGKILL');
      const leave = await lw.waitFor((e) => e.type === 'leave' && e.connId === joined.self.connId, 'victim leave');
      const after = Date.now() - lastBeat;
      expect(leave).toEqual(expect.objectContaining({ reason: 'timeout', userId: 'victim' }));
      expect(after).toBeGreaterThanOrEqual(1_400);
      expect(after).toBeLessThan(1_500 + 200 + 1_000); // TTL + interval, plus slack for a loaded 2-core machine
      // Reapers of the surviving node keep running: still exactly one leave after a settle marker.
      const [events] = await settle(a.url, r, lw);
      expect(events!.filter((e) => e.type === 'leave')).toEqual([leave]);
    } finally {
      stop();
    }
  });

  it('SIGTERM: the drain hands the node\u2019s members to the disconnect grace: a member that does not come back leaves after it (reason disconnect)', { timeout: 40_000 }, async () => {
    const env = base({ ...redisEnv(), PRESENCE_TTL_MS: '30000', PRESENCE_DISCONNECT_GRACE_MS: '1000', PRESENCE_REAPER_INTERVAL_MS: '200' });
    const [a, b] = await Promise.all([NodeProcess.start(env), NodeProcess.start(env)]);
    const r = room();
    const watcher = await connect(a.url);
    const lw = listen(watcher);
    await request(watcher, 'presence:join', { roomId: r, userId: 'watcher' });
    const leaving = await connect(b.url);
    await request(leaving, 'presence:join', { roomId: r, userId: 'leaving' });
    const t0 = Date.now();
    expect(await b.kill('SIGTERM')).toBe(0);
    // Grace 1 s + reaper 0.2 s; the bound leaves room for a loaded CI machine (the full suite on 2 cores
    // once took over 5 s), and is still far below the 30 s TTL a member left behind by a failed drain would need.
    const leave = await waitFor(() => lw.events.find((e) => e.type === 'leave'), { timeoutMs: 12_000, what: 'leave after SIGTERM' });
    expect(leave).toEqual(expect.objectContaining({ userId: 'leaving', reason: 'disconnect' }));
    // Not at once: after the grace (a client that reconnects elsewhere within it resumes; drain.test.ts).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(12_000);
    const [events] = await settle(a.url, r, lw);
    expect(events!.filter((e) => e.type === 'leave')).toEqual([leave]);
  });
});

describe('Redis restart under a running node', () => {
  it('no crash; /ready goes 503 then 200; a live client is told to rejoin, never a false ok; presence works again', async () => {
    const redis = await startRedis();
    const node = await NodeProcess.start(base({ REDIS_URL: redis.url }));
    expect((await node.get('/ready')).status).toBe(200);
    const s = await connect(node.url);
    const r = room();
    expect((await request(s, 'presence:join', { roomId: r, userId: 'ada' })).ok).toBe(true);
    await redis.kill();
    await waitFor(async () => (await node.get('/ready')).status === 503, { timeoutMs: 8_000, what: '/ready 503' });
    expect((await node.get('/health')).status).toBe(200);
    const during = await request(s, 'presence:heartbeat');
    expect(during).toEqual({ ok: false, error: { code: 'unavailable', message: expect.any(String) } });
    await redis.launch();
    await waitFor(async () => (await node.get('/ready')).status === 200, { timeoutMs: 10_000, what: '/ready 200' });
    const after = await waitFor(async () => {
      const a = await request(s, 'presence:heartbeat');
      return a.error?.code === 'unavailable' ? undefined : a;
    }, { timeoutMs: 10_000, what: 'heartbeat after restart' });
    expect(after).toEqual({ ok: false, error: { code: 'not_joined', message: expect.any(String) } });
    const rejoin = await request(s, 'presence:join', { roomId: r, userId: 'ada' });
    expect(rejoin.ok).toBe(true);
    const other = await connect(node.url);
    const lo = listen(other);
    await request(other, 'presence:join', { roomId: r, userId: 'bob' });
    await request(s, 'presence:heartbeat', { patchState: { back: true } });
    await lo.waitFor((e) => e.type === 'update' && e.userId === 'ada', 'update after restart');
    expect(node.proc.exitCode).toBeNull();
  });
});

describe('WORKERS: several processes on one port', () => {
  it('workers share the port and presence through Redis', async () => {
    const node = await NodeProcess.start(base({ REDIS_URL: inject('redisUrl'), WORKERS: '2' }), { waitReady: false });
    await waitFor(() => node.logs.filter((l) => l.includes('realtime-message listening')).length === 2, { timeoutMs: 20_000, what: 'two workers listening' });
    const pids = new Set(node.logs.filter((l) => l.includes('listening')).map((l) => JSON.parse(l).pid));
    expect(pids.size).toBe(2);
    const r = room();
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect(node.url)));
    const first = listen(clients[0]!);
    for (const [i, c] of clients.entries()) expect((await request(c, 'presence:join', { roomId: r, userId: `u${i}` })).ok).toBe(true);
    await first.waitFor((e) => e.userId === 'u5', 'join seen across workers');
    const snap = await request(clients[5]!, 'presence:join', { roomId: r, userId: 'u5' });
    expect(snap.snapshot.members).toHaveLength(6);
    expect(await node.kill('SIGTERM')).toBe(0);
  });

  // Behaviour users rely on (Node's cluster module and the worker's 'disconnect'
  // handler both provide it); the primary also SIGKILLs workers still running at
  // its shutdown deadline, so a slow graceful shutdown cannot leave any behind.
  it('workers do not outlive their primary: kill -9 of the primary makes them shut down', async () => {
    const node = await NodeProcess.start(base({ REDIS_URL: inject('redisUrl'), WORKERS: '2' }), { waitReady: false });
    await waitFor(() => node.logs.filter((l) => l.includes('realtime-message listening')).length === 2, { timeoutMs: 20_000, what: 'two workers listening' });
    const pids = node.logs.filter((l) => l.includes('listening')).map((l) => Number(JSON.parse(l).pid));
    const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
    expect(pids.every(alive)).toBe(true);
    await node.kill('SIGKILL');
    await waitFor(() => pids.every((pid) => !alive(pid)), { timeoutMs: 15_000, what: 'workers to exit after their primary died' });
  });
});
