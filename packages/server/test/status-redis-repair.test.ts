import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { RedisServer } from 'realtime-message-testing';
import type { StatusRecord } from 'realtime-message-protocol';
import { RedisBackend, StatusService } from '../src/index.js';
import { ManualClock } from '../src/core/shared/clock.js';
import { RedisStatusStore } from '../src/engines/redis/status-store.js';
import { statusRedisFixture } from './conformance/status-redis-fixture.js';

/**
 * The Redis status store's repair (a real redis-server): a writer that died
 * between its script and the hint update leaves a slot with deadlines that
 * the hint does not list; the repair finds it again, one SCAN page per sweep.
 */

/** A node on its own redis-server: SCAN pages then hold only this test's keys. */
async function node(options: { repairPageSize: number }) {
  const server = await RedisServer.start();
  const keyPrefix = `srp:${randomUUID().slice(0, 8)}:`;
  const redis = new Redis(server.url);
  const backend = new RedisBackend({ redis, keyPrefix, identityCheckIntervalMs: 0 });
  const store = new RedisStatusStore({ backend, repairIntervalMs: 60_000, repairPageSize: options.repairPageSize });
  const clock = new ManualClock(Date.now());
  const service = new StatusService({ store, clock, nodeId: 'repair-test' });
  const events: StatusRecord[] = [];
  await service.subscribe((e) => events.push(e));
  onTestFinished(async () => {
    await service.dispose();
    await backend.close();
    redis.disconnect();
    await server.stop();
  });
  return { redis, backend, service, clock, events };
}

describe('Redis status store: repair of the deadline hint', () => {
  it('slots missing from the hint are found again page by page, and their expiries then sweep', async () => {
    const { redis, backend, service, clock, events } = await node({ repairPageSize: 10 });
    // The first sweep starts a repair pass; finish it (a page per sweep) while nothing is written yet.
    for (let i = 0; i < 20; i++) await service.sweepNow();
    // Connected through a keep-alive of 1 s: each turns offline (an event) when it runs out.
    const users = Array.from({ length: 40 }, (_, i) => `repair-${i}`);
    for (const u of users) await service.set(u, { status: 'online', ttlSeconds: 1 });
    const slots = new Set(users.map((u) => backend.keys.user(u).slot));
    expect(await redis.zcard(backend.keys.statusHint)).toBe(slots.size);
    // As if every writer died before lowering the hint.
    await redis.del(backend.keys.statusHint);
    clock.advance(2_000);
    await expect.poll(() => events.length, { timeout: 500 }).toBe(users.length); // the writes' own events
    events.length = 0;

    // No pass is due yet (one started at the first sweep): the expiries are not seen.
    await service.sweepNow();
    expect(events).toEqual([]);

    // A pass is due: each sweep scans one page of about 10 keys, so the slots come back over several sweeps, not at once.
    clock.advance(60_000);
    await service.sweepNow();
    const afterOne = await redis.zcard(backend.keys.statusHint);
    expect(afterOne).toBeLessThan(slots.size);
    for (let i = 0; i < 200 && events.length < users.length; i++) await service.sweepNow();
    await expect.poll(() => events.length, { timeout: 2_000 }).toBe(users.length);
    expect(new Set(events.map((e) => e.userId))).toEqual(new Set(users));
    expect(events.every((e) => e.status === 'offline' && e.manual === false)).toBe(true);
  });

  it('repair() still re-indexes everything in one call', async () => {
    const { redis, backend, service } = await node({ repairPageSize: 10 });
    const users = Array.from({ length: 30 }, (_, i) => `whole-${i}`);
    for (const u of users) await service.set(u, { status: 'away', ttlSeconds: 60 });
    const hint = await redis.zrange(backend.keys.statusHint, 0, -1, 'WITHSCORES');
    await redis.del(backend.keys.statusHint);
    await redis.config('RESETSTAT');
    await (service.store as RedisStatusStore).repair();
    expect(await redis.zrange(backend.keys.statusHint, 0, -1, 'WITHSCORES')).toEqual(hint);
    // A page is one script and one ZADD, not a command (and a promise) per index found: the node's event loop stays free.
    const stats = await redis.info('commandstats');
    const count = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    const pages = count('eval');
    expect(pages).toBeGreaterThan(1);
    expect(count('zadd')).toBeLessThanOrEqual(pages);
    expect(count('zadd')).toBeLessThan(hint.length / 2);
  });

  it('on a Redis Cluster: the page of each master is read by one script over indexes of many slots', async () => {
    const fixture = await statusRedisFixture({ clusterNodes: inject('clusterNodes') });
    const service = new StatusService({ store: fixture.store, nodeId: 'repair-test' });
    onTestFinished(async () => {
      await service.dispose();
      await fixture.cleanup();
    });
    const store = fixture.store as RedisStatusStore;
    const keys = (store as unknown as { backend: RedisBackend }).backend.keys;
    const redis = fixture.clients[0]!;
    const users = Array.from({ length: 60 }, (_, i) => `cluster-${i}`);
    for (const u of users) await service.set(u, { status: 'busy', ttlSeconds: 120 + (users.indexOf(u) % 7) });
    const hint = await redis.zrange(keys.statusHint, 0, -1, 'WITHSCORES');
    expect(hint.length / 2).toBeGreaterThan(50); // many slots, on all three masters
    await redis.del(keys.statusHint);
    await store.repair();
    expect(await redis.zrange(keys.statusHint, 0, -1, 'WITHSCORES')).toEqual(hint);
  });
});
