import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { KeySpace, REDIS_BATCHED_COMMANDS, RedisEngine, type ConnId, type RoomFeedItem, type RoomId, type UserId } from '../src/index.js';
import { MAX_ROOM_WRITE_BATCH } from '../src/engines/redis/redis-engine.js';
import { redisNodes, startRedis, type RedisTarget } from 'realtime-message-testing';

const T = { ttlMs: 1_000, lookbackMs: 2_000 };

const targets: Array<[string, () => RedisTarget]> = [
  ['Redis', () => ({ url: inject('redisUrl') })],
  ['Redis Cluster (3 masters)', () => ({ clusterNodes: inject('clusterNodes') })],
];

/** An engine over `target` under a key prefix of its own, with or without the turn's room writes gathered. */
async function engineOn(target: RedisTarget, batchRoomWrites: boolean): Promise<{ engine: RedisEngine; client: Redis; prefix: string }> {
  const { first, clients, prefix } = await redisNodes(target, 'rb', (redis, keyPrefix) => new RedisEngine({ redis, keyPrefix, batchRoomWrites }));
  return { engine: first, client: clients[0] as Redis, prefix };
}

/** Three rooms of one hash slot (they share a call on a Cluster too) and three of other slots. */
function rooms(): RoomId[] {
  const keys = new KeySpace('x:');
  const base = `room-${randomUUID()}`;
  const same = [base];
  for (let i = 0; same.length < 3; i++) if (keys.room(`${base}-${i}` as RoomId).slot === keys.room(base as RoomId).slot) same.push(`${base}-${i}`);
  return [...same, ...Array.from({ length: 3 }, () => `room-${randomUUID()}`)] as RoomId[];
}

/**
 * One scenario of joins, leaves and disconnects, each step's writes sent in
 * one event-loop turn: every outcome, error text included, and every room's
 * events. Fixed ids and clock, so two engines can be compared exactly.
 */
async function scenario(engine: RedisEngine, rs: RoomId[], now: number): Promise<{ outcomes: unknown[]; events: Record<string, RoomFeedItem[]> }> {
  const events: Record<string, RoomFeedItem[]> = {};
  for (const r of rs) await engine.subscribe(r, (e) => (events[r] ??= []).push(e));
  const settle = (p: Promise<unknown>): Promise<unknown> => p.then((v) => v, (err: unknown) => ({ error: String(err) }));
  const c = (r: number, who: string): ConnId => `${who}-${r}` as ConnId;
  const joins = await Promise.all([
    ...rs.map((r, i) => settle(engine.join({ ...T, now, roomId: r, userId: 'ada' as UserId, freshConnId: c(i, 'ada'), state: { i, typing: false } }))),
    // In the same turn and room as ada's join, after it: bob's snapshot holds ada.
    settle(engine.join({ ...T, now, roomId: rs[0]!, userId: 'bob' as UserId, freshConnId: c(0, 'bob') })),
    // eve resumes ada's connection, joined earlier in this turn: refused.
    settle(engine.join({ ...T, now, roomId: rs[1]!, userId: 'eve' as UserId, freshConnId: c(1, 'eve'), resumeConnId: c(1, 'ada') })),
    // ada resumes her own connection in the same turn: an update with a patch.
    settle(engine.join({ ...T, now, roomId: rs[2]!, userId: 'ada' as UserId, freshConnId: c(2, 'new'), resumeConnId: c(2, 'ada'), state: { i: 2, typing: true } })),
  ]);
  const later = now + 100;
  const ends = await Promise.all([
    ...rs.slice(0, 3).map((r, i) => settle(engine.leave({ ...T, now: later, roomId: r, connId: c(i, 'ada'), epoch: i === 2 ? 2 : 1, reason: 'leave' }))),
    ...rs.slice(3).map((r, i) => settle(engine.disconnect({ ...T, now: later, roomId: r, connId: c(i + 3, 'ada'), epoch: 1, graceMs: 200 }))),
    settle(engine.leave({ ...T, now: later, roomId: rs[0]!, connId: c(0, 'bob'), epoch: 5, reason: 'leave' })), // stale epoch
    settle(engine.leave({ ...T, now: later, roomId: rs[4]!, connId: c(4, 'nobody'), epoch: 1, reason: 'leave' })), // never joined
    settle(engine.leave({ ...T, now: later, roomId: rs[0]!, connId: c(0, 'ada'), epoch: 1, reason: 'leave' })), // again: already left, a no-op success
    settle(engine.disconnect({ ...T, now: later, roomId: rs[3]!, connId: c(3, 'ada'), epoch: 1, graceMs: 200 })), // again: changes nothing
  ]);
  // Past every disconnect grace, after the reaper: the disconnected connections leave.
  await engine.reap({ now: later + 1_000, ...T, intervalMs: 100, limit: 100, budgetMs: 1_000 });
  await new Promise((r) => setTimeout(r, 200));
  return { outcomes: [...joins, ...ends], events };
}

describe.each(targets)('joins, leaves and disconnects of one turn in batch calls (%s)', (_name, target) => {
  it('answer and publish exactly what one call each does, in order per room', async () => {
    const rs = rooms();
    const now = Date.now();
    const batched = await engineOn(target(), true);
    const single = await engineOn(target(), false);
    const a = await scenario(batched.engine, rs, now);
    const b = await scenario(single.engine, rs, now);
    expect(a).toEqual(b);
    // And what that is: the scenario's rules, not only agreement.
    const joins = a.outcomes.slice(0, 9) as Array<{ ok: boolean; mode?: string; snapshot?: { members: Array<{ userId: string }> }; code?: string }>;
    expect(joins.slice(0, 6).map((j) => j.mode)).toEqual(['new', 'new', 'new', 'new', 'new', 'new']);
    expect(joins[6]!.snapshot!.members.map((m) => m.userId)).toEqual(['ada', 'bob']);
    expect(joins[7]).toEqual({ ok: false, code: 'forbidden' });
    expect(joins[8]).toMatchObject({ ok: true, mode: 'resumed', epoch: 2 });
    expect(a.outcomes.slice(9)).toEqual([
      { ok: true, epoch: 1 }, { ok: true, epoch: 1 }, { ok: true, epoch: 2 },
      { ok: true, epoch: 1 }, { ok: true, epoch: 1 }, { ok: true, epoch: 1 },
      { ok: false, code: 'stale_epoch' }, { ok: false, code: 'not_joined' }, { ok: true, epoch: 1 }, { ok: true, epoch: 1 },
    ]);
    expect(a.events[rs[2]!]!.map((e) => [e.type, 'patch' in e ? e.patch : undefined])).toEqual([['join', undefined], ['update', { typing: true }], ['leave', undefined]]);
    for (const r of rs.slice(3)) expect(a.events[r]!.map((e) => [e.type, e.type === 'leave' ? e.reason : ''])).toEqual([['join', ''], ['leave', 'disconnect']]);
  });
});

describe('room write batches on a Redis of their own (calls counted)', () => {
  /** Script calls, EVAL and EVALSHA (ioredis sends a script's first call on a client as EVAL), on this test's own Redis. */
  const evalCalls = async (client: Redis): Promise<number> => {
    const stats = await client.info('commandstats');
    let n = 0;
    for (const m of stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)) n += Number(m[1]);
    return n;
  };

  it(`twenty joins of one turn cost ${Math.ceil(20 / MAX_ROOM_WRITE_BATCH)} calls (at most ${MAX_ROOM_WRITE_BATCH} each), twenty leaves as many; without batching twenty each`, async () => {
    const server = await startRedis();
    const target = { url: server.url };
    for (const batch of [true, false]) {
      const { engine, client } = await engineOn(target, batch);
      const r = `room-${randomUUID()}` as RoomId;
      const now = Date.now();
      const ids = Array.from({ length: 20 }, (_, i) => `c${i}` as ConnId);
      let before = await evalCalls(client);
      const joined = await Promise.all(ids.map((id, i) => engine.join({ ...T, now, roomId: r, userId: `u${i}` as UserId, freshConnId: id })));
      const joinCalls = (await evalCalls(client)) - before;
      // In order: each join's snapshot holds the joins before it in the turn, and itself.
      expect(joined.map((j) => (j.ok && !j.upToDate ? j.snapshot.members.length : -1))).toEqual(ids.map((_, i) => i + 1));
      before = await evalCalls(client);
      const left = await Promise.all(ids.map((id) => engine.leave({ ...T, now: now + 1, roomId: r, connId: id, epoch: 1, reason: 'leave' })));
      const leaveCalls = (await evalCalls(client)) - before;
      expect(left.every((l) => l.ok)).toBe(true);
      expect([joinCalls, leaveCalls]).toEqual(batch ? [3, 3] : [20, 20]);
    }
  });

  it('a write that Redis refuses fails alone: the others of its call apply', async () => {
    const server = await startRedis();
    const { engine, client, prefix } = await engineOn({ url: server.url }, true);
    const rs = Array.from({ length: 4 }, () => `room-${randomUUID()}` as RoomId);
    // The second room's seq key holds a hash: its join's INCR fails with WRONGTYPE.
    await client.hset(new KeySpace(prefix).room(rs[1]!).seq, 'x', '1');
    const now = Date.now();
    const out = await Promise.allSettled(rs.map((r, i) => engine.join({ ...T, now, roomId: r, userId: 'ada' as UserId, freshConnId: `c${i}` as ConnId })));
    expect(out.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(String((out[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    for (const i of [0, 2, 3]) expect((await engine.snapshot(rs[i]!, now)).connections.map((c) => c.connId)).toEqual([`c${i}`]);
  });
});

describe('REDIS_BATCHED_COMMANDS (for a client with auto-pipelining)', () => {
  it('names the heartbeat, join, leave and disconnect commands, single and batch, that the engine defines on its client', async () => {
    const { client } = await engineOn({ url: inject('redisUrl') }, true);
    const defined = REDIS_BATCHED_COMMANDS.filter((name) => typeof (client as unknown as Record<string, unknown>)[name] === 'function');
    expect(defined).toEqual(REDIS_BATCHED_COMMANDS);
    expect(REDIS_BATCHED_COMMANDS).toHaveLength(8);
    expect(new Set(REDIS_BATCHED_COMMANDS).size).toBe(8);
  });
});
