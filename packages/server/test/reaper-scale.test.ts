import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { PresenceService, RedisEngine, type PresenceEvent, type ReapPassResult } from '../src/index.js';
import { redisClient, startRedis, waitFor, type RedisTarget } from 'realtime-message-testing';

// Default settings scaled down 15×, keeping their ratio: TTL 30 s / interval
// 3 s becomes 2 s / 200 ms. The old reaper visited at most 64 slots per pass
// and each live room comes due about once per TTL, so it kept up with at most
// 64 × TTL / interval = 640 active rooms; this test runs 1,200.
const TTL = 2_000;
const INTERVAL = 200;
const ROOMS = 1_200;
const SILENT = 40;
/** Key slack scaled down too, so that the room keys' life (TTL + lookback + slack) passes during the test. */
const KEY_SLACK = 400;
/**
 * The promise is TTL + interval plus the pass's own run time; on a shared
 * two-core test machine timers and Redis calls jitter by a few hundred ms.
 * The old reaper is seconds late here (it falls further behind every pass).
 */
const SLACK = 700;

describe('reaper at scale (Redis)', () => {
  it(`${ROOMS} active rooms at default-like settings: leaves within TTL + interval, and no room's seq restarts while members heartbeat`, { timeout: 60_000 }, async () => {
    const redis = await startRedis();
    const client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
    onTestFinished(() => void client.disconnect());
    const engine = new RedisEngine({ redis: client, keyPrefix: 'scale:', keySlackMs: KEY_SLACK });
    const passes: ReapPassResult[] = [];
    const svc = new PresenceService({
      engine,
      ttlMs: TTL,
      reaperIntervalMs: INTERVAL,
      observeReap: (r) => {
        if (!('error' in r)) passes.push(r);
      },
    });
    onTestFinished(async () => {
      await svc.dispose();
      await engine.close();
    });

    const lastSeq = new Map<string, number>();
    const leftAt = new Map<string, number>();
    let restarts = 0;
    await svc.subscribe((e: PresenceEvent) => {
      const prev = lastSeq.get(e.roomId) ?? 0;
      if (e.seq <= prev) restarts++;
      lastSeq.set(e.roomId, e.seq);
      if (e.type === 'leave') leftAt.set(e.connId, Date.now());
    });

    // One member per room that heartbeats every TTL / 3 for the whole test.
    const live: Array<{ roomId: string; connId: string; epoch: number }> = [];
    for (let i = 0; i < ROOMS; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, ROOMS - i) }, (_, j) => svc.join({ roomId: `room-${i + j}`, userId: 'ada' }).then((r) => ({ roomId: `room-${i + j}`, connId: r.connId, epoch: r.epoch }))),
      );
      live.push(...batch);
    }
    svc.start();
    let beating = true;
    const beat = (async () => {
      while (beating) {
        const round = Date.now();
        for (let i = 0; i < live.length && beating; i += 200) {
          await Promise.all(live.slice(i, i + 200).map((m) => svc.heartbeat(m)));
        }
        await new Promise((r) => setTimeout(r, Math.max(0, TTL / 3 - (Date.now() - round))));
      }
    })();

    // Let the reaper face the full load for one TTL, then add silent members
    // (joined, never heartbeating) over one more TTL, in rooms that stay live.
    await new Promise((r) => setTimeout(r, TTL));
    const silent: Array<{ connId: string; joinedAt: number }> = [];
    for (let i = 0; i < SILENT; i++) {
      const joinedAt = Date.now();
      const r = await svc.join({ roomId: `room-${(i * 29) % ROOMS}`, userId: 'bob' });
      silent.push({ connId: r.connId, joinedAt });
      await new Promise((res) => setTimeout(res, TTL / SILENT));
    }
    // Past the room keys' life (TTL + lookback + slack = 6.4 s from the joins).
    const endAt = Date.now() + 4_500;
    await waitFor(() => silent.every((s) => leftAt.has(s.connId)) && Date.now() >= endAt, { timeoutMs: 30_000, intervalMs: 50, what: 'every silent member left' });
    beating = false;
    await beat;

    const lateness = silent.map((s) => leftAt.get(s.connId)! - (s.joinedAt + TTL));
    expect(Math.max(...lateness), `leave lateness beyond TTL (ms): ${lateness.join(' ')}`).toBeLessThanOrEqual(INTERVAL + SLACK);

    // Every room still numbers on: a state change now gets the next seq, not 1.
    for (const m of live) await svc.heartbeat({ ...m, patchState: { k: 1 } });
    await waitFor(() => live.every((m) => (lastSeq.get(m.roomId) ?? 0) >= 2), { what: 'an update from every room' });
    expect(restarts).toBe(0);
    for (const m of live.slice(0, 50)) expect(Number(await client.get(`scale:{room:${m.roomId}}:seq`))).toBe(lastSeq.get(m.roomId));

    // The passes kept up: no backlog at the end, and their cost is reported.
    const tail = passes.slice(-5);
    expect(tail.every((p) => p.backlog === 0 && p.lagMs === 0)).toBe(true);
    expect(passes.reduce((n, p) => n + p.visitedRooms, 0)).toBeGreaterThan(ROOMS);
    expect(passes.reduce((n, p) => n + p.visitedSlots, 0)).toBeGreaterThan(0);
    expect(passes.every((p) => p.durationMs >= 0)).toBe(true);
  });
});

const targets: Array<[string, () => RedisTarget]> = [
  ['redis', () => ({ url: inject('redisUrl') })],
  ['redis cluster', () => ({ clusterNodes: inject('clusterNodes') })],
];

describe.each(targets)('room keys outlive a reaper that is far behind: %s', (_name, target) => {
  it('with no reaper at all, heartbeats keep seq, exp and the index entry alive past their TTL, so numbering continues', { timeout: 30_000 }, async () => {
    const client = redisClient(target());
    onTestFinished(() => void client.disconnect());
    const prefix = `rk:${randomUUID().slice(0, 8)}:`;
    // keep = TTL + lookback + slack = 1 s + 2 s + 0.1 s: the keys' life passes during the test.
    const engine = new RedisEngine({ redis: client, keyPrefix: prefix, keySlackMs: 100 });
    const svc = new PresenceService({ engine, ttlMs: 1_000 }); // never started: no reaper runs
    onTestFinished(async () => {
      await svc.dispose();
      await engine.close();
    });
    const roomId = `room-${randomUUID()}`;
    const events: PresenceEvent[] = [];
    await svc.subscribe(roomId, (e) => events.push(e));
    const a = await svc.join({ roomId, userId: 'ada' });
    const until = Date.now() + 4_000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 300));
      await svc.heartbeat({ roomId, connId: a.connId, epoch: a.epoch });
    }
    await svc.heartbeat({ roomId, connId: a.connId, epoch: a.epoch, patchState: { k: 1 } });
    const b = await svc.join({ roomId, userId: 'bob' });
    expect(b.snapshot.seq).toBe(a.snapshot.seq + 2);
    await waitFor(() => events.length >= 3, { what: 'join, update and join events' });
    expect(events.map((e) => [e.type, e.seq])).toEqual([['join', 1], ['update', 2], ['join', 3]]);
    // The room is still in its slot's reaper index, so a silent member is found.
    const slotIndexes = (await Promise.all((client.isCluster ? (client as import('ioredis').Cluster).nodes('master') : [client as Redis]).map((n) => n.keys(`${prefix}reap:*`)))).flat();
    const scores = await Promise.all(slotIndexes.map((k) => client.zscore(k, roomId)));
    expect(scores.filter((x) => x !== null)).toHaveLength(1);
  });
});
