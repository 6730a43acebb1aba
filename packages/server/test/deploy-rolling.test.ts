// Three nodes behind the nginx recipe on one Redis: a rolling restart (SIGTERM,
// drain, start again, one node after the other) while presence members
// heartbeat and a channel gets publications, and a kill -9 of one node.
// Measured here and reported in docs/benchmarks.md ("Rolling restart").
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Centrifuge } from 'centrifuge';
import type { Subscription } from 'realtime-message-sdk';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { NodeProcess, connect, listen, request, room, waitFor, type Listener } from 'realtime-message-testing';
import { Nginx, PresenceObserver, percentile, sdkMember, type Member } from './deploy-fixtures.js';

vi.setConfig({ testTimeout: 90_000 });
const API_KEY = 'rolling-test-api-key-0123456789';
const MEMBERS = Number(process.env.ROLLING_MEMBERS ?? 30);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function startNodes(env: Record<string, string>): Promise<NodeProcess[]> {
  return Promise.all([0, 1, 2].map(() => NodeProcess.start(env)));
}

/** Publishes `{ n }` to `channel` through nginx every `everyMs` until stopped; the offsets of the acknowledged ones by n. */
function publisher(url: string, channel: string, everyMs: number): { stop(): Promise<void>; acked: Map<number, number>; failed: number[] } {
  const acked = new Map<number, number>();
  const failed: number[] = [];
  let n = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const i = ++n;
      try {
        const res = await fetch(`${url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify({ channel, data: { n: i } }) });
        const body = (await res.json()) as { result?: { offset?: number } };
        if (res.status === 200 && typeof body.result?.offset === 'number') acked.set(i, body.result.offset);
        else failed.push(i);
      } catch {
        failed.push(i);
      }
      await sleep(everyMs);
    }
  })();
  return {
    acked,
    failed,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** The `n` values a subscriber received, in order of arrival. */
function received(sub: Subscription): number[] {
  const got: number[] = [];
  sub.on('publication', (p) => got.push((p.data as { n: number }).n));
  return got;
}

describe('rolling restart of three nodes behind nginx', () => {
  it(`${MEMBERS} heartbeating members and a channel: no flicker, no ghost, no lost or duplicated publication`, async () => {
    const keyPrefix = `rr${randomUUID().slice(0, 6)}:`;
    const env = {
      REDIS_URL: inject('redisUrl'),
      REDIS_KEY_PREFIX: keyPrefix,
      API_KEY,
      TRUST_PROXY: 'loopback',
      PRESENCE_TTL_MS: '15000',
      PRESENCE_DISCONNECT_GRACE_MS: '5000',
      PRESENCE_REAPER_INTERVAL_MS: '500',
      DRAIN_READY_DELAY_MS: '200',
    };
    let nodes = await startNodes(env);
    const nginx = await Nginx.start(nodes.map((n) => n.port));
    const observer = await PresenceObserver.start(inject('redisUrl'), keyPrefix);
    const r = room();
    const channel = `chat:${randomUUID().slice(0, 8)}`;
    const members: Member[] = [];
    for (let i = 0; i < MEMBERS; i++) members.push(await sdkMember(nginx.url, r, `u${i}`, { heartbeatIntervalMs: 1_000 }));
    // A third of the members also follow the channel, and so do three Centrifugo clients.
    const followers = await Promise.all(members.filter((_, i) => i % 3 === 0).map(async (m) => received(await m.client.subscribe(channel))));
    const cfGot: number[][] = [];
    const cfOutages: number[] = [];
    for (let i = 0; i < 3; i++) {
      const c = new Centrifuge(`${nginx.url.replace('http', 'ws')}/connection/websocket`, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 1_000 });
      onTestFinished(() => c.disconnect());
      let lostAt: number | undefined;
      c.on('connecting', () => (lostAt ??= Date.now()));
      c.on('connected', () => {
        if (lostAt !== undefined) cfOutages.push(Date.now() - lostAt);
        lostAt = undefined;
      });
      const got: number[] = [];
      cfGot.push(got);
      // Recoverable: after a reconnect the client asks for what it missed since its position.
      const sub = c.newSubscription(channel, { recoverable: true });
      sub.on('publication', (p) => got.push((p.data as { n: number }).n));
      const ok = new Promise((resolve) => sub.once('subscribed', resolve));
      sub.subscribe();
      c.connect();
      await ok;
      lostAt = undefined;
    }
    const pub = publisher(nginx.url, channel, 50);

    // The rolling restart: each node in turn drains (SIGTERM) and starts again on its port.
    const t0 = Date.now();
    for (let i = 0; i < nodes.length; i++) {
      const old = nodes[i]!;
      expect(await old.kill('SIGTERM')).toBe(0);
      const fresh = await NodeProcess.start(env, { port: old.port });
      nodes = nodes.map((n) => (n === old ? fresh : n));
      await waitFor(async () => (await fresh.get('/ready')).status === 200, { timeoutMs: 10_000, what: 'the restarted node ready' });
      // Let the moved clients settle before the next node goes.
      await waitFor(() => members.every((m) => m.client.state === 'connected' && m.room.state === 'joined'), { timeoutMs: 10_000, what: 'every member back' });
      await sleep(1_000);
    }
    const restartMs = Date.now() - t0;
    await pub.stop();
    // Past the disconnect grace plus a reaper pass: any connection not resumed would have left by now.
    await sleep(5_000 + 500 + 1_000);

    const connIds = members.flatMap((m) => [...m.connIds]);
    const flickers = observer.flickers(r, connIds);
    // Publications: every acknowledged one exactly once on every follower (after recovery), in order.
    const acked = [...pub.acked.keys()];
    const last = Math.max(...acked);
    const all = [...followers, ...cfGot];
    await waitFor(() => all.every((got) => got.includes(last)), { timeoutMs: 10_000, what: 'the last publication on every follower' });
    const lost = all.map((got) => acked.filter((n) => !got.includes(n)).length);
    const duplicated = all.map((got) => got.length - new Set(got).size);
    const outages = members.flatMap((m) => m.outages);
    const result = {
      members: MEMBERS,
      restartMs,
      sdkOutages: { count: outages.length, p50: percentile(outages, 50), p99: percentile(outages, 99), max: percentile(outages, 100) },
      centrifugoOutages: { count: cfOutages.length, p50: percentile(cfOutages, 50), p99: percentile(cfOutages, 99), max: percentile(cfOutages, 100) },
      flickers: flickers.length,
      publications: { acked: acked.length, failed: pub.failed.length, lost: lost.reduce((a, b) => a + b, 0), duplicated: duplicated.reduce((a, b) => a + b, 0), followers: all.length },
    };
    console.info(`rolling restart: ${JSON.stringify(result)}`);
    const out = fileURLToPath(new URL('../../../test-output/', import.meta.url));
    mkdirSync(out, { recursive: true });
    writeFileSync(`${out}rolling-restart.json`, `${JSON.stringify(result, null, 2)}\n`);

    expect(outages.length, 'members moved during the restart').toBeGreaterThanOrEqual(MEMBERS);
    expect(flickers).toEqual([]);
    expect(members.filter((m) => m.connIds.size !== 1).map((m) => m.userId)).toEqual([]);
    expect(lost).toEqual(all.map(() => 0));
    expect(duplicated).toEqual(all.map(() => 0));
    for (const got of all) expect(got).toEqual([...got].sort((a, b) => a - b));
    // No ghost: the room holds exactly the members, one connection each.
    const s = await connect(nginx.url);
    const snap = await request(s, 'presence:join', { roomId: r, userId: 'checker' });
    const conns = (snap.snapshot.connections as Array<{ userId: string; connId: string }>).filter((c) => c.userId !== 'checker');
    expect(conns.map((c) => c.connId).sort()).toEqual(members.map((m) => m.room.connId!).sort());
  });
});

describe('kill -9 of one node behind nginx', () => {
  it('its members that do not come back leave once (timeout) on every other node; SDK clients resume through nginx', async () => {
    const keyPrefix = `k9${randomUUID().slice(0, 6)}:`;
    const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: keyPrefix, PRESENCE_TTL_MS: '3000', PRESENCE_REAPER_INTERVAL_MS: '200', PRESENCE_DISCONNECT_GRACE_MS: '1000' };
    const nodes = await startNodes(env);
    const nginx = await Nginx.start(nodes.map((n) => n.port));
    const observer = await PresenceObserver.start(inject('redisUrl'), keyPrefix);
    const r = room();
    // SDK members through nginx first; the victim is the node that got most of them
    // (nginx's least_conn is per worker, so the spread is not even: a fixed victim may hold none).
    const members: Member[] = [];
    for (let i = 0; i < 6; i++) members.push(await sdkMember(nginx.url, r, `sdk${i}`, { heartbeatIntervalMs: 500 }));
    const held = await Promise.all(
      nodes.map(async (n) => Number(/^rm_connections (\d+)/m.exec(await (await fetch(`${n.url}/metrics`)).text())?.[1] ?? 0)),
    );
    const victimIndex = held.indexOf(Math.max(...held));
    const victim = nodes[victimIndex]!;
    const others = nodes.filter((_, i) => i !== victimIndex);
    // A watcher on each surviving node, heartbeating.
    const watchers: Listener[] = [];
    const beats: Array<ReturnType<typeof setInterval>> = [];
    for (const n of others) {
      const w = await connect(n.url);
      watchers.push(listen(w));
      await request(w, 'presence:join', { roomId: r, userId: `watcher-${n.port}` });
      beats.push(setInterval(() => void request(w, 'presence:heartbeat').catch(() => {}), 500));
    }
    onTestFinished(() => beats.forEach((b) => clearInterval(b)));
    // Two members straight on the victim that will not come back.
    const gone: string[] = [];
    for (let i = 0; i < 2; i++) {
      const s = await connect(victim.url);
      gone.push((await request(s, 'presence:join', { roomId: r, userId: `gone${i}` })).self.connId);
    }
    const t0 = Date.now();
    await victim.kill('SIGKILL');
    // Every SDK client is connected again (through nginx, to a live node) and still in the room with its connId.
    // (Right after the kill the clients may not have seen their sockets close yet: wait for the members
    // of the victim to have lost and regained their connection, not only for everyone to look connected.)
    await waitFor(() => members.some((m) => m.outages.length > 0) && members.every((m) => m.client.state === 'connected' && m.room.state === 'joined'), {
      timeoutMs: 10_000,
      what: 'the SDK members of the killed node back through nginx',
    });
    expect(held[victimIndex], 'SDK members on the killed node').toBeGreaterThan(0);
    // The members that did not come back: exactly one leave each (timeout) on every surviving node.
    for (const w of watchers) {
      for (const connId of gone) await w.waitFor((e) => e.type === 'leave' && e.connId === connId, `leave of ${connId}`);
    }
    expect(Date.now() - t0).toBeLessThan(3_000 + 200 + 3_000);
    await sleep(1_000);
    for (const w of watchers) {
      const leaves = w.events.filter((e) => e.type === 'leave' && e.roomId === r);
      expect(leaves.map((e) => e.connId).sort()).toEqual([...gone].sort());
      expect(leaves.every((e) => e.type === 'leave' && e.reason === 'timeout')).toBe(true);
    }
    expect(observer.flickers(r, members.flatMap((m) => [...m.connIds]))).toEqual([]);
  });
});
