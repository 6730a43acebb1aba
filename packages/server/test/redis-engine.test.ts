import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { KeySpace, ManualClock, PresenceError, PresenceService, RedisEngine, type ConnId, type PresenceEvent, type RoomId, type UserId } from '../src/index.js';
import { Scripts } from '../src/engines/redis/scripts/index.js';
import { heartbeat, heartbeatBatch } from '../src/engines/redis/scripts/heartbeat.js';
import { join } from '../src/engines/redis/scripts/join.js';
import { keysUnder, redisClient, redisFixture, startRedis, waitFor, type RedisTarget } from 'realtime-message-testing';

const TTL = 1_000;

function service(engine: RedisEngine, clock: ManualClock): PresenceService {
  const svc = new PresenceService({ engine, clock, ttlMs: TTL, disconnectGraceMs: 200, reaperLookbackMs: 2_000 });
  onTestFinished(() => svc.dispose());
  return svc;
}

/** Counts EVAL and EVALSHA calls on every master of `client` (INFO commandstats), after loading `preload` there (so no NOSCRIPT retry is counted). */
async function scriptCallCounter(client: Redis | import('ioredis').Cluster, preload: string[]): Promise<() => Promise<number>> {
  const masters = client.isCluster ? (client as import('ioredis').Cluster).nodes('master') : [client as Redis];
  for (const n of masters) for (const lua of preload) await n.script('LOAD', lua);
  return async () => {
    let calls = 0;
    for (const n of masters) for (const m of (await n.info('commandstats')).matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)) calls += Number(m[1]);
    return calls;
  };
}

const targets: Array<[string, () => RedisTarget]> = [
  ['redis', () => ({ url: inject('redisUrl') })],
  ['redis cluster', () => ({ clusterNodes: inject('clusterNodes') })],
];

describe.each(targets)('redis engine specifics: %s', (_name, target) => {
  async function setup() {
    const fx = await redisFixture(target());
    const clock = new ManualClock(Date.now());
    return { fx, clock, svc: service(fx.engine as RedisEngine, clock) };
  }

  it('recovers from NOSCRIPT after SCRIPT FLUSH on every node', async () => {
    const { fx, svc } = await setup();
    const r = `room-${randomUUID()}`;
    const a = await svc.join({ roomId: r, userId: 'ada' });
    const client = fx.clients[0]!;
    const nodes = client.isCluster ? (client as import('ioredis').Cluster).nodes('master') : [client as Redis];
    for (const n of nodes) expect(await n.call('SCRIPT', 'FLUSH')).toBe('OK');
    expect(await svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1, patchState: { x: 1 } })).toEqual({ epoch: 1 });
    const b = await svc.join({ roomId: r, userId: 'bob' });
    expect(b.snapshot.members.map((m) => m.userId)).toEqual(['ada', 'bob']);
  });

  it('a resume with the current knownSeq reads no rows: the join script answers upToDate (issue 12)', async () => {
    const { fx, svc, clock } = await setup();
    const r = `room-${randomUUID()}`;
    const a = await svc.join({ roomId: r, userId: 'ada', state: { big: 'x'.repeat(1_000) } });
    await svc.join({ roomId: r, userId: 'bob' });
    const scripts = new Scripts(fx.clients[0]!, { join }, { keys: new KeySpace(fx.prefix), keySlackMs: 60_000 });
    const cmd = { roomId: r as RoomId, userId: 'ada' as UserId, freshConnId: 'fresh' as ConnId, resumeConnId: a.connId, now: clock.now(), ttlMs: TTL, lookbackMs: 2_000 };
    expect(await scripts.run('join', { ...cmd, knownSeq: 2 })).toEqual({ ok: true, connId: a.connId, epoch: 2, mode: 'resumed', seq: 3, lowered: undefined, upToDate: true, connections: [] });
    const behind = await scripts.run('join', { ...cmd, knownSeq: 2 });
    expect(behind).toEqual(expect.objectContaining({ ok: true, seq: 4, upToDate: false }));
    expect(behind.ok && behind.connections.map((c) => c.userId).sort()).toEqual(['ada', 'bob']);
  });

  it('every key it writes has a TTL, except the reaper hint which the reaper empties', async () => {
    const { fx, svc, clock } = await setup();
    const rooms = Array.from({ length: 8 }, () => `room-${randomUUID()}`);
    for (const r of rooms) {
      const a = await svc.join({ roomId: r, userId: 'ada', state: { k: 1 } });
      const b = await svc.join({ roomId: r, userId: 'bob' });
      await svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1, patchState: { k: 2 } });
      await svc.leave({ roomId: r, connId: b.connId, epoch: 1 });
      await svc.disconnect({ roomId: r, connId: a.connId, epoch: 1 });
    }
    const client = fx.clients[0]!;
    const keys = await keysUnder(client, fx.prefix);
    expect(keys.length).toBeGreaterThan(8 * 4);
    for (const key of keys) {
      const pttl = await client.pttl(key);
      if (key === `${fx.prefix}reaphint`) expect(pttl).toBe(-1);
      else expect(pttl, key).toBeGreaterThan(0);
    }
    clock.advance(10_000);
    expect(await svc.reapNow()).toBe(8); // grace ended: leaves, and epoch records for the lookback
    expect((await keysUnder(client, fx.prefix)).length).toBeGreaterThan(0);
    clock.advance(10_000);
    await svc.reapNow();
    expect(await keysUnder(client, fx.prefix)).toEqual([]);
  });

  it("a room's reaper index entry is never later than its earliest deadline after joins, resumes, leaves and rejoins", async () => {
    const { fx, clock } = await setup();
    const engine = fx.engine as RedisEngine;
    const client = fx.clients[0]!;
    const keys = new KeySpace(fx.prefix);
    const short = new PresenceService({ engine, clock, ttlMs: 300, disconnectGraceMs: 200, reaperLookbackMs: 2_000 });
    onTestFinished(() => short.dispose());
    const long = service(engine, clock);
    const r = `room-${randomUUID()}`;
    const k = keys.room(r as RoomId);
    /** The index score, and the earliest of exp and tomb, of the room. */
    const check = async (step: string): Promise<void> => {
      const score = await client.zscore(k.slotIndex, r);
      const firsts = [...(await client.zrange(k.exp, 0, 0, 'WITHSCORES')), ...(await client.zrange(k.tomb, 0, 0, 'WITHSCORES'))];
      const earliest = Math.min(...firsts.filter((_, i) => i % 2 === 1).map(Number));
      expect(score, step).not.toBeNull();
      expect(Number(score), step).toBeLessThanOrEqual(earliest);
    };
    const a = await long.join({ roomId: r, userId: 'ada' });
    await check('first join');
    clock.advance(50);
    const b = await long.join({ roomId: r, userId: 'bob', state: { k: 1 } });
    await check('second join');
    // A member with a shorter TTL (another node's setting): its deadline is before the entry, which must move down.
    const c = await short.join({ roomId: r, userId: 'cy' });
    expect(Number(await client.zscore(k.slotIndex, r))).toBe(clock.now() + 300);
    await check('join with an earlier deadline');
    clock.advance(100);
    await long.join({ roomId: r, userId: 'bob', connId: b.connId, state: { k: 2 } });
    await check('resume');
    await long.leave({ roomId: r, connId: a.connId, epoch: 1 });
    await check('leave');
    // cy's connection expires unreaped; its rejoin ends the old incarnation first (epoch record) and starts again.
    clock.advance(400);
    const again = await short.join({ roomId: r, userId: 'cy', connId: c.connId });
    expect(again.resumed).toBe(false);
    await check('rejoin of an expired connection');
    await long.leave({ roomId: r, connId: b.connId, epoch: 2 });
    await check('last long-TTL member left');
  });

  it('the sweep re-indexes a slot whose hint update was lost (a node died between script and hint)', async () => {
    const fx = await redisFixture(target());
    const clock = new ManualClock(Date.now());
    const engine = new RedisEngine({ redis: fx.clients[0]!, keyPrefix: fx.prefix, sweepIntervalMs: 5_000 });
    const svc = service(engine, clock);
    await svc.reapNow(); // first pass sweeps; the next sweep is due 5 s (clock) later
    const r = `room-${randomUUID()}`;
    const events: PresenceEvent[] = [];
    await svc.subscribe(r, (e) => events.push(e));
    await svc.join({ roomId: r, userId: 'ada' });
    await fx.clients[0]!.del(`${fx.prefix}reaphint`);
    clock.advance(TTL + 1);
    expect(await svc.reapNow()).toBe(0); // the hint is gone: nothing looks due yet
    clock.advance(5_000);
    expect(await svc.reapNow()).toBe(1); // the sweep found the slot
    await waitFor(() => events.some((e) => e.type === 'leave' && e.reason === 'timeout'), { what: 'timeout leave' });
  });

  it('heartbeats of one event-loop turn go in as few script calls as their slots allow, each with its own outcome (issue 18)', async () => {
    const { fx, svc, clock } = await setup();
    const engine = fx.engine as RedisEngine;
    const client = fx.clients[0]!;
    const scriptCalls = await scriptCallCounter(client, [heartbeatBatch.lua]);
    // Three rooms in one hash slot (they may share a call on a Cluster too) and three others.
    const keys = new KeySpace(fx.prefix);
    const base = `room-${randomUUID()}`;
    const slotOf = (r: string) => keys.room(r as RoomId).slot;
    const sameSlot = [base];
    for (let i = 0; sameSlot.length < 3; i++) if (slotOf(`${base}-${i}`) === slotOf(base)) sameSlot.push(`${base}-${i}`);
    const rooms = [...sameSlot, ...Array.from({ length: 3 }, () => `room-${randomUUID()}`)];
    const events: PresenceEvent[] = [];
    for (const r of rooms) await svc.subscribe(r, (e) => events.push(e));
    // One connection expires before the batch (joined first, its deadline passes; no reaper runs).
    const expired = await svc.join({ roomId: rooms[5]!, userId: 'eve' });
    clock.advance(TTL / 2);
    const live = [];
    for (const r of rooms) live.push({ roomId: r, ...(await svc.join({ roomId: r, userId: 'ada' })) });
    const gone = await svc.join({ roomId: rooms[1]!, userId: 'dan' });
    clock.advance(TTL / 2 + 10);
    await svc.disconnect({ roomId: rooms[1]!, connId: gone.connId, epoch: gone.epoch });
    const now = clock.now();
    const t = { ttlMs: TTL, lookbackMs: 2_000, maxStateBytes: 16_384 };
    const hb = (roomId: string, connId: ConnId, epoch: number, patch?: Array<[string, string]>) =>
      engine.heartbeat({ ...t, now, roomId: roomId as RoomId, connId, epoch, patch });
    const before = await scriptCalls();
    const outcomes = await Promise.all([
      ...live.map((c) => hb(c.roomId, c.connId, c.epoch)),
      hb(rooms[0]!, live[0]!.connId, 7), // a stale epoch
      hb(rooms[2]!, 'nobody' as ConnId, 1), // never joined
      hb(rooms[1]!, gone.connId, gone.epoch), // in disconnect grace
      hb(rooms[5]!, expired.connId, expired.epoch), // expired, not reaped: leaves now, once
      hb(rooms[3]!, live[3]!.connId, live[3]!.epoch, [['k', '1']]), // a patch goes alone, in its own call
    ]);
    const calls = (await scriptCalls()) - before;
    expect(outcomes).toEqual([
      ...live.map((c) => ({ ok: true, epoch: c.epoch })),
      { ok: false, code: 'stale_epoch' },
      { ok: false, code: 'not_joined' },
      { ok: false, code: 'not_joined', message: expect.stringMatching(/disconnected/) },
      { ok: false, code: 'not_joined' },
      { ok: true, epoch: live[3]!.epoch },
    ]);
    // Single Redis: one call for the ten heartbeats without a patch. Cluster: one per slot among them.
    const slots = new Set([...rooms, rooms[0]!, rooms[2]!, rooms[1]!, rooms[5]!].map(slotOf));
    expect(calls).toBe((client.isCluster ? slots.size : 1) + 1);
    // Each live connection's deadline moved to the batch's now + TTL.
    for (const c of live) expect(Number(await client.zscore(keys.room(c.roomId as RoomId).exp, c.connId))).toBe(now + TTL);
    await waitFor(() => events.some((e) => e.type === 'leave' && e.connId === expired.connId), { what: 'the leave of the expired connection' });
    await new Promise((r) => setTimeout(r, 100)); // settle: no second leave arrives
    expect(events.filter((e) => e.type === 'leave' && e.connId === expired.connId)).toEqual([expect.objectContaining({ reason: 'timeout', ts: now })]);
    expect(events.filter((e) => e.type === 'update').map((e) => e.connId)).toEqual([live[3]!.connId]);
    expect(await svc.reapNow()).toBe(0); // nothing was left for the reaper
  });

  it('heartbeatWindowMs: flushes at least a window apart; a heartbeat after a quiet spell goes at once (issue 18)', async () => {
    const { fx, clock } = await setup();
    const WINDOW = 300;
    const engine = new RedisEngine({ redis: fx.clients[0]!, keyPrefix: fx.prefix, heartbeatWindowMs: WINDOW });
    onTestFinished(() => engine.close());
    const svc = service(engine, clock);
    const scriptCalls = await scriptCallCounter(fx.clients[0]!, [heartbeat.lua, heartbeatBatch.lua]);
    const room = `room-${randomUUID()}`;
    const conns: Array<{ connId: ConnId; epoch: number }> = [];
    for (const u of ['ada', 'bob', 'cy', 'dan']) conns.push(await svc.join({ roomId: room, userId: u }));
    const t = { ttlMs: TTL, lookbackMs: 2_000, maxStateBytes: 16_384, roomId: room as RoomId };
    const hb = async (i: number) => {
      const c = conns[i]!;
      const started = performance.now();
      const outcome = await engine.heartbeat({ ...t, now: clock.now(), connId: c.connId, epoch: c.epoch });
      return { outcome, at: performance.now(), ms: performance.now() - started };
    };
    const before = await scriptCalls();
    // The first goes at once (no flush before it).
    const first = await hb(0);
    expect(first.outcome).toEqual({ ok: true, epoch: conns[0]!.epoch });
    expect(first.ms).toBeLessThan(WINDOW / 2);
    // Two more in two later turns, within the window: they wait for its end and go in one call.
    const second = hb(1);
    await new Promise((r) => setImmediate(r));
    const third = hb(2);
    const [b, c] = await Promise.all([second, third]);
    expect([b.outcome, c.outcome]).toEqual([{ ok: true, epoch: conns[1]!.epoch }, { ok: true, epoch: conns[2]!.epoch }]);
    // Not before the window's end (timers round to whole ms: 2 ms of slack).
    expect(b.at - first.at).toBeGreaterThanOrEqual(WINDOW - 2 - first.ms);
    expect(Math.abs(b.at - c.at)).toBeLessThan(WINDOW / 2);
    expect((await scriptCalls()) - before).toBe(2);
    // After a quiet spell longer than the window, a heartbeat goes at once again.
    await new Promise((r) => setTimeout(r, WINDOW + 50));
    const late = await hb(3);
    expect(late.outcome).toEqual({ ok: true, epoch: conns[3]!.epoch });
    expect(late.ms).toBeLessThan(WINDOW / 2);
    expect((await scriptCalls()) - before).toBe(3);
  });
});

describe('redis cluster layout', () => {
  it('rooms spread over all masters and each room stays in one slot', async () => {
    const fx = await redisFixture({ clusterNodes: inject('clusterNodes') });
    const svc = service(fx.engine as RedisEngine, new ManualClock());
    for (let i = 0; i < 30; i++) await svc.join({ roomId: `spread-${i}`, userId: 'ada' });
    const nodes = (fx.clients[0] as import('ioredis').Cluster).nodes('master');
    const perNode = await Promise.all(nodes.map((n) => n.keys(`${fx.prefix}*`)));
    expect(perNode.every((keys) => keys.length > 0)).toBe(true);
    for (const keys of perNode) {
      for (const key of keys.filter((k) => k.includes('{room:'))) {
        const room = /\{room:([^}]*)\}/.exec(key)![1];
        // every key of a room (seq, exp, connection) lives on the same node
        expect(keys.filter((k) => k.includes(`{room:${room}}`)).length).toBeGreaterThanOrEqual(3);
      }
    }
  });
});

describe('redis restart mid-test', () => {
  // Reconnect and re-subscribe take longer when the whole suite loads both cores: deadlines, not sleeps.
  it('never acks a write falsely, does not crash, and works again after Redis comes back empty', { timeout: 60_000 }, async () => {
    const server = await startRedis();
    const clock = new ManualClock(Date.now());
    const a = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 }).on('error', () => {});
    const b = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 }).on('error', () => {});
    onTestFinished(() => {
      a.disconnect();
      b.disconnect();
    });
    const engineA = new RedisEngine({ redis: a, keyPrefix: 'restart:' });
    const engineB = new RedisEngine({ redis: b, keyPrefix: 'restart:' });
    onTestFinished(async () => {
      await engineA.close();
      await engineB.close();
    });
    const nodeA = service(engineA, clock);
    const nodeB = service(engineB, clock);
    const r = `room-${randomUUID()}`;
    const seen: PresenceEvent[] = [];
    await nodeA.subscribe(r, (e) => seen.push(e));
    const ada = await nodeA.join({ roomId: r, userId: 'ada' });

    await server.kill();
    const during = await nodeA.heartbeat({ roomId: r, connId: ada.connId, epoch: 1 }).then(
      () => 'ok',
      (e: unknown) => e,
    );
    expect(during).toBeInstanceOf(PresenceError);
    expect((during as PresenceError).code).toBe('unavailable');
    await expect(engineA.ping()).rejects.toThrow();

    await server.launch();
    await waitFor(() => engineA.ping().then(() => true), { what: 'reconnect of node A', timeoutMs: 15_000 });
    await waitFor(() => engineB.ping().then(() => true), { what: 'reconnect of node B', timeoutMs: 15_000 });
    // Redis came back empty: the live client is told to rejoin, never a false ok.
    const after = await nodeA.heartbeat({ roomId: r, connId: ada.connId, epoch: 1 }).then(
      () => 'ok',
      (e: unknown) => e,
    );
    expect((after as PresenceError).code).toBe('not_joined');
    const rejoined = await nodeA.join({ roomId: r, userId: 'ada', connId: ada.connId });
    expect(rejoined.resumed).toBe(false);
    // The subscription was restored by the reconnect: node B's join reaches node A's listener.
    const bob = await waitFor(() => nodeB.join({ roomId: r, userId: 'bob' }), { what: 'join on node B', timeoutMs: 15_000 });
    // Pub/sub keeps nothing for a subscriber that is still reconnecting (clients
    // recover such gaps through seq), so keep changing until events flow again.
    let n = 0;
    await waitFor(
      async () => {
        if (!seen.some((e) => e.connId === bob.connId)) await nodeB.heartbeat({ roomId: r, connId: bob.connId, epoch: bob.epoch, patchState: { n: ++n } });
        return seen.some((e) => e.connId === bob.connId);
      },
      { what: 'events from node B reach node A again', timeoutMs: 15_000, intervalMs: 100 },
    );
    expect((await nodeB.snapshot(r)).members.map((m) => m.userId)).toEqual(['ada', 'bob']);
  });
});

describe('engine selection', () => {
  it('reports its kind', async () => {
    const single = redisClient({ url: inject('redisUrl') });
    const cluster = redisClient({ clusterNodes: inject('clusterNodes') });
    onTestFinished(() => {
      single.disconnect();
      cluster.disconnect();
    });
    expect(new RedisEngine({ redis: single }).kind).toBe('redis');
    expect(new RedisEngine({ redis: cluster }).kind).toBe('redis-cluster');
  });
});
