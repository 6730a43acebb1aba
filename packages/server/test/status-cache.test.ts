import { describe, expect, it } from 'vitest';
import type { UserId } from 'realtime-message-protocol';
import { StatusCache } from '../src/index.js';
import type { StatusState } from '../src/core/status/model.js';
import { ClientRateLimiter, humanSeconds } from '../src/transports/http/routes/status-rate-limit.js';

/**
 * The node-local status cache (bounded by size and age, no stale fill after
 * an invalidation) and the status routes' per-client rate limiter, on their
 * own: the REST, socket and conformance tests drive them through the server.
 */

const id = (s: string) => s as UserId;
const state = (version: number, message = `v${version}`): StatusState => ({
  version,
  seq: version,
  connected: false,
  keepAliveUntil: null,
  manual: null,
  manualExpiresAt: null,
  message,
  messageExpiresAt: null,
  lastSeen: null,
  lastActivity: null,
  updatedAt: 1_000,
  nodeId: 'node-1',
});

function clocked(options: { max?: number; ttlMs?: number } = {}) {
  const clock = { t: 1_000_000 };
  const cache = new StatusCache({ ...options, now: () => clock.t });
  const fill = (user: string, s: StatusState | undefined) => cache.beginRead(id(user))(s);
  return { clock, cache, fill };
}

/** Slots in use (internal: proves the slot arrays stay bounded). */
const slotsUsed = (cache: StatusCache) => (cache as unknown as { keys: unknown[] }).keys.length;

describe('StatusCache', () => {
  it('holds at most max users; the earliest filled leave first', () => {
    const { cache, fill } = clocked({ max: 3 });
    for (const u of ['a', 'b', 'c', 'd', 'e']) fill(u, state(1, u));
    expect(cache.size).toBe(3);
    expect(['a', 'b', 'c', 'd', 'e'].map((u) => cache.peekStale(id(u))?.message ?? null)).toEqual([null, null, 'c', 'd', 'e']);
    expect(slotsUsed(cache)).toBe(3);
    // A user the store does not know is cached too (as null), and counts toward the bound.
    fill('f', undefined);
    expect([cache.size, cache.peekStale(id('f')), cache.peekStale(id('c'))]).toEqual([3, null, undefined]);
  });

  it('serves an entry for at most ttlMs after its fill, and keeps it past that for stale answers (the store unreachable)', () => {
    const { clock, cache, fill } = clocked({ ttlMs: 60_000 });
    fill('a', state(1));
    clock.t += 30_000;
    fill('b', state(1));
    clock.t += 29_999;
    expect([cache.get(id('a'), clock.t)?.version, cache.get(id('b'), clock.t)?.version]).toEqual([1, 1]);
    clock.t += 1;
    expect([cache.get(id('a'), clock.t), cache.get(id('b'), clock.t)?.version, cache.hit(id('a'), clock.t)]).toEqual([undefined, 1, undefined]);
    expect([cache.hits, cache.misses]).toEqual([3, 1]);
    // Past ttlMs, still held: a stale answer may use it.
    expect([cache.peekStale(id('a'))?.version, cache.size]).toEqual([1, 2]);
    // A fill again starts a new age.
    fill('a', state(2));
    clock.t += 59_999;
    expect([cache.get(id('a'), clock.t)?.version, cache.get(id('b'), clock.t)]).toEqual([2, undefined]);
  });

  it('hit() counts hits only: the read that follows a miss counts it', () => {
    const { cache, fill } = clocked();
    expect(cache.hit(id('a'), 0)).toBe(undefined);
    fill('a', undefined);
    expect(cache.hit(id('a'), 0)).toBe(null);
    expect([cache.hits, cache.misses]).toEqual([1, 0]);
  });

  it('a read that raced a write does not fill the old value; a write fills only if not older than what is cached', () => {
    const { cache } = clocked();
    const done = cache.beginRead(id('a'));
    cache.invalidate(id('a'), 5);
    done(state(4));
    expect(cache.peekStale(id('a'))).toBe(undefined);
    const again = cache.beginRead(id('a'));
    again(state(5));
    expect(cache.peekStale(id('a'))?.version).toBe(5);
    cache.fillFromWrite(id('a'), state(3));
    expect(cache.peekStale(id('a'))?.version).toBe(5);
    cache.fillFromWrite(id('a'), state(6));
    expect(cache.peekStale(id('a'))?.version).toBe(6);
    // The invalidation of this node's own write (same version) keeps the entry; a later one drops it.
    cache.invalidate(id('a'), 6);
    expect(cache.peekStale(id('a'))?.version).toBe(6);
    cache.invalidate(id('a'), 7);
    expect(cache.peekStale(id('a'))).toBe(undefined);
    // onlyIfCached (a connection change): no new entry, but an entry the user has is replaced.
    cache.fillFromWrite(id('a'), state(8), true);
    expect(cache.peekStale(id('a'))).toBe(undefined);
    cache.fillFromWrite(id('a'), state(8));
    cache.fillFromWrite(id('a'), state(9), true);
    expect(cache.peekStale(id('a'))?.version).toBe(9);
    // clear(): everything goes, and reads in flight may not fill.
    const inFlight = cache.beginRead(id('b'));
    cache.fillFromWrite(id('c'), state(1));
    cache.clear();
    inFlight(state(1));
    expect([cache.size, cache.peekStale(id('b'))]).toEqual([0, undefined]);
  });

  it('stays bounded under invalidations and refills (freed slots are reused) and always serves the latest fill', () => {
    const max = 50;
    const { clock, cache, fill } = clocked({ max, ttlMs: 1_000_000 });
    let version = 0;
    for (let round = 0; round < 200; round++) {
      for (let u = 0; u < 60; u++) {
        version++;
        cache.invalidate(id(`u${u}`), version);
        fill(`u${u}`, state(version));
      }
      clock.t += 10;
      expect(cache.size).toBeLessThanOrEqual(max);
      expect(slotsUsed(cache)).toBeLessThanOrEqual(max);
    }
    // Each invalidation freed the slot its refill took: the last 50 users filled are the ones held, at their latest version.
    const held = Array.from({ length: 60 }, (_, u) => cache.get(id(`u${u}`), clock.t)?.version);
    expect(held.filter((v) => v !== undefined)).toHaveLength(max);
    for (let u = 0; u < 60; u++) if (held[u] !== undefined) expect(held[u]).toBe(version - 59 + u);
    // Every entry ages out together, and a new user takes a slot again.
    clock.t += 1_000_000;
    expect(Array.from({ length: 60 }, (_, u) => cache.get(id(`u${u}`), clock.t)).every((s) => s === undefined)).toBe(true);
    fill('new', state(1));
    expect([cache.size, slotsUsed(cache), cache.get(id('new'), clock.t)?.version]).toEqual([max, max, 1]);
  });

  it('a full cache replaces the oldest placed entries first when new users come', () => {
    const { clock, cache, fill } = clocked({ max: 4 });
    for (const u of ['a', 'b', 'c', 'd']) fill(u, state(1, u));
    fill('b', state(2, 'b2')); // a refill keeps its slot
    fill('e', state(1, 'e'));
    fill('f', state(1, 'f'));
    expect(['a', 'b', 'c', 'd', 'e', 'f'].map((u) => cache.get(id(u), clock.t)?.message ?? null)).toEqual([null, null, 'c', 'd', 'e', 'f']);
  });
});

describe('ClientRateLimiter', () => {
  it('counts a fixed window per client and restarts it after windowMs', () => {
    const clock = { t: 10_000 };
    const limiter = new ClientRateLimiter(3, 2_000, 100, () => clock.t);
    expect([1, 2, 3, 4].map(() => limiter.hit('ip:a').count)).toEqual([1, 2, 3, 4]);
    expect(limiter.hit('ip:b').count).toBe(1); // another client, its own budget
    clock.t += 500;
    const w = limiter.hit('ip:a');
    expect([w.count, limiter.resetInSeconds(w)]).toEqual([5, 2]);
    clock.t += 1_499;
    expect(limiter.resetInSeconds(limiter.hit('ip:a'))).toBe(1);
    clock.t += 1;
    expect(limiter.hit('ip:a').count).toBe(1);
  });

  it('holds at most maxClients; the least recently seen is forgotten and starts afresh', () => {
    const limiter = new ClientRateLimiter(1, 60_000, 2);
    limiter.hit('a');
    limiter.hit('b');
    limiter.hit('a'); // a is now the most recently seen
    limiter.hit('c'); // b goes
    expect([limiter.hit('a').count, limiter.hit('c').count, limiter.hit('b').count]).toEqual([3, 2, 1]);
  });

  it('says how long to wait in words', () => {
    expect([1, 3, 59, 60, 90, 3_599, 3_600, 7_200].map(humanSeconds)).toEqual(['1 second', '3 seconds', '59 seconds', '1 minute', '2 minutes', '60 minutes', '1 hour', '2 hours']);
  });
});
