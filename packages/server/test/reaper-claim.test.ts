import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { ManualClock, PresenceService, RedisEngine, type PresenceEvent } from '../src/index.js';
import { redisFixture, waitFor, type RedisTarget } from 'realtime-message-testing';

const TTL = 30_000;
const INTERVAL = 3_000;
/** A claim's score in the reaper hint: 1e15 + claim time (see redis-engine.ts). */
const CLAIM_BASE = 1e15;

const targets: Array<[string, () => RedisTarget]> = [
  ['redis', () => ({ url: inject('redisUrl') })],
  ['redis cluster', () => ({ clusterNodes: inject('clusterNodes') })],
];

describe.each(targets)('a reaper killed while holding a claim: %s', (_name, target) => {
  it('blocks its slots for at most two reaper intervals, not 30 s', async () => {
    const fx = await redisFixture(target());
    const clock = new ManualClock(Date.now());
    const engine = new RedisEngine({ redis: fx.clients[0]!, keyPrefix: fx.prefix });
    const svc = new PresenceService({ engine, clock, ttlMs: TTL, reaperIntervalMs: INTERVAL });
    onTestFinished(() => svc.dispose());
    const roomId = `room-${randomUUID()}`;
    const events: PresenceEvent[] = [];
    await svc.subscribe(roomId, (e) => events.push(e));
    await svc.join({ roomId, userId: 'ada' });
    const joinedAt = clock.now();
    // The first pass of a reaper runs the sweep (every 60 s), which would also lower a stale claim: get it done.
    expect(await svc.reapNow()).toBe(0);

    // A reaper claims the slot just as the member comes due, then dies before releasing it.
    clock.advance(TTL);
    const hint = `${fx.prefix}reaphint`;
    const client = fx.clients[0]!;
    const slots = await client.zrange(hint, 0, -1);
    expect(slots).toHaveLength(1);
    await client.zadd(hint, CLAIM_BASE + clock.now(), slots[0]!);

    // Passes of the live reapers, one per interval: the dead reaper's claim holds for two intervals.
    let leftAt: number | undefined;
    for (let pass = 1; pass <= 4 && leftAt === undefined; pass++) {
      clock.advance(INTERVAL);
      if ((await svc.reapNow()) === 1) leftAt = clock.now();
    }
    expect(leftAt, 'the leave came within TTL + 3 intervals').toBeDefined();
    expect(leftAt! - joinedAt).toBeLessThanOrEqual(TTL + 3 * INTERVAL);
    expect(leftAt! - joinedAt).toBeGreaterThan(TTL + INTERVAL); // the claim did hold while it could be a live reaper's
    await waitFor(() => events.some((e) => e.type === 'leave' && e.reason === 'timeout'), { what: 'timeout leave' });
    expect(events.filter((e) => e.type === 'leave')).toHaveLength(1);
  });
});
