import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { Redis } from 'ioredis';
import { MemoryEngine, PresenceEventSchema, PresenceService, type PresenceEvent } from '../src/index.js';
import { redisClient, waitFor, type RedisTarget } from 'realtime-message-testing';

const targets: Array<[string, () => RedisTarget]> = [
  ['redis', () => ({ url: inject('redisUrl') })],
  ['redis cluster', () => ({ clusterNodes: inject('clusterNodes') })],
];

/** Connections the Redis server holds, by client name prefix (to see what a service opened and closed). */
async function connectionCount(url: string): Promise<number> {
  const admin = new Redis(url);
  try {
    return String(await admin.client('LIST')).split('\n').filter(Boolean).length - 1;
  } finally {
    admin.disconnect();
  }
}

describe.each(targets)('the original library form on %s: new PresenceService(redis, options)', (_name, target) => {
  function client() {
    const c = redisClient(target());
    onTestFinished(() => c.disconnect());
    return c;
  }

  /** Two services on one key prefix: a watcher that runs the reaper (TTL 600 ms), and a node that does not. */
  function watcherAndNode() {
    const keyPrefix = `lib:${randomUUID().slice(0, 8)}:`;
    const watcher = new PresenceService(client(), { ttlMs: 600, reaperIntervalMs: 50, reaperLookbackMs: 2_000, keyPrefix });
    const node = new PresenceService(client(), { ttlMs: 600, reaperIntervalMs: 50, reaperLookbackMs: 2_000, keyPrefix, startReaper: false });
    onTestFinished(async () => {
      await Promise.all([watcher.stop(), node.stop()]);
    });
    return { watcher, node, keyPrefix };
  }

  it('takes the original option names, sees every event of every room from every node in seq order per room, and runs its own reaper', async () => {
    const { watcher, node } = watcherAndNode();
    expect(watcher.options).toEqual(expect.objectContaining({ ttlMs: 600, reaperIntervalMs: 50, reaperLookbackMs: 2_000 }));
    const seen: PresenceEvent[] = [];
    await watcher.subscribe((e) => seen.push(e));
    const rooms = [`a-${randomUUID()}`, `b-${randomUUID()}`, `c-${randomUUID()}`];
    const joins = await Promise.all(rooms.map((roomId) => node.join({ roomId, userId: 'ada' })));
    await node.heartbeat({ roomId: rooms[0]!, connId: joins[0]!.connId, epoch: 1, patchState: { typing: true } });
    // rooms[0] stays alive for the whole test.
    const keepAlive = setInterval(() => void node.heartbeat({ roomId: rooms[0]!, connId: joins[0]!.connId, epoch: 1 }).catch(() => {}), 150);
    onTestFinished(() => clearInterval(keepAlive));
    await node.leave({ roomId: rooms[1]!, connId: joins[1]!.connId, epoch: 1 });
    // rooms[2]'s connection never heartbeats: the watcher's own reaper makes it leave (timeout).
    await waitFor(() => seen.some((e) => e.roomId === rooms[2] && e.type === 'leave'), { timeoutMs: 5_000, what: 'the timeout leave' });
    // Settle: one more event in each room, after everything else.
    const marks = await Promise.all(rooms.map((roomId) => node.join({ roomId, userId: `marker-${randomUUID()}` })));
    await waitFor(() => marks.every((m) => seen.some((e) => e.connId === m.connId)), { what: 'the markers' });
    for (const e of seen) expect(PresenceEventSchema.safeParse(e).success, JSON.stringify(e)).toBe(true);
    const byRoom = (roomId: string) => seen.filter((e) => e.roomId === roomId && !e.userId.startsWith('marker-')).map((e) => `${e.type}${e.type === 'leave' ? `:${e.reason}` : ''}@${e.seq}`);
    expect(byRoom(rooms[0]!)).toEqual(['join@1', 'update@2']);
    expect(byRoom(rooms[1]!)).toEqual(['join@1', 'leave:leave@2']);
    expect(byRoom(rooms[2]!)).toEqual(['join@1', 'leave:timeout@2']);
    for (const roomId of rooms) {
      const seqs = seen.filter((e) => e.roomId === roomId).map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
  });

  it("subscribe(listener, { only: 'leave' }) gets every leave of every room (timeouts too) and nothing else, and Redis sends the node no other event", async () => {
    const { watcher, node, keyPrefix } = watcherAndNode();
    const leaves: PresenceEvent[] = [];
    await watcher.subscribe((e) => leaves.push(e), { only: 'leave' });
    const t = target();
    if ('url' in t && t.url) {
      // The watcher's subscriber connection listens to the leaves' channel alone: joins and updates are not sent to it.
      const admin = client();
      expect(await admin.pubsub('NUMSUB', `${keyPrefix}leaves`, `${keyPrefix}events`)).toEqual([`${keyPrefix}leaves`, 1, `${keyPrefix}events`, 0]);
    }
    const rooms = [`a-${randomUUID()}`, `b-${randomUUID()}`];
    const [left, lost] = await Promise.all(rooms.map((roomId) => node.join({ roomId, userId: 'ada' })));
    await node.heartbeat({ roomId: rooms[0]!, connId: left!.connId, epoch: 1, patchState: { typing: true } });
    await node.leave({ roomId: rooms[0]!, connId: left!.connId, epoch: 1 });
    // rooms[1]'s connection never heartbeats: the watcher's reaper makes it leave (timeout).
    await waitFor(() => leaves.some((e) => e.connId === lost!.connId), { timeoutMs: 5_000, what: 'the timeout leave' });
    // Settle: a marker joins and leaves after everything else; its leave is the last event.
    const marker = await node.join({ roomId: rooms[0]!, userId: 'marker' });
    await node.leave({ roomId: rooms[0]!, connId: marker.connId, epoch: 1 });
    await waitFor(() => leaves.some((e) => e.connId === marker.connId), { what: "the marker's leave" });
    expect(leaves.map((e) => `${e.roomId === rooms[0] ? 'a' : 'b'}:${e.type}:${e.type === 'leave' ? e.reason : ''}:${e.userId}`)).toEqual([
      'a:leave:leave:ada',
      'b:leave:timeout:ada',
      'a:leave:leave:marker',
    ]);
  });

  it('stop() releases what the service opened (its subscriber connection, its reaper) and leaves the caller’s client open', async () => {
    const url = 'url' in target() ? (target() as { url: string }).url : undefined;
    const redis = client();
    await redis.ping();
    const before = url ? await connectionCount(url) : undefined;
    const presence = new PresenceService(redis, { ttlMs: 1_000, keyPrefix: `lib:${randomUUID().slice(0, 8)}:` });
    await presence.subscribe(() => {});
    await presence.subscribe(`r-${randomUUID()}`, () => {});
    if (url) expect(await connectionCount(url)).toBe(before! + 1);
    await presence.stop();
    if (url) await waitFor(async () => (await connectionCount(url)) === before, { what: 'the subscriber connection to close' });
    expect(await redis.ping()).toBe('PONG');
    await expect(presence.join({ roomId: 'x', userId: 'ada' })).rejects.toMatchObject({ code: 'internal' });
  });
});

describe('PresenceService construction', () => {
  it.each([
    ['a URL string', 'redis://localhost:6379'],
    ['nothing', undefined],
    ['an empty object', {}],
    ['options without an engine', { ttlMs: 1_000 }],
    ['a number', 6379],
  ])('refuses %s with a clear TypeError at construction', (_what, arg) => {
    expect(() => new PresenceService(arg as never)).toThrow(TypeError);
    expect(() => new PresenceService(arg as never)).toThrow('needs an ioredis client or cluster');
  });

  it('the engine form keeps working, and subscribe(listener) sees every room there too', async () => {
    const presence = new PresenceService({ engine: new MemoryEngine() });
    onTestFinished(() => presence.stop());
    const seen: string[] = [];
    await presence.subscribe((e) => seen.push(`${e.roomId}:${e.type}`));
    await presence.join({ roomId: 'one', userId: 'ada' });
    await presence.join({ roomId: 'two', userId: 'bob' });
    await waitFor(() => seen.length === 2, { what: 'two events' });
    expect(seen).toEqual(['one:join', 'two:join']);
  });

  it("the engine form: subscribe(listener, { only: 'leave' }) sees the leaves alone", async () => {
    const presence = new PresenceService({ engine: new MemoryEngine() });
    onTestFinished(() => presence.stop());
    const seen: string[] = [];
    await presence.subscribe((e) => seen.push(`${e.roomId}:${e.type}`), { only: 'leave' });
    const a = await presence.join({ roomId: 'one', userId: 'ada' });
    await presence.heartbeat({ roomId: 'one', connId: a.connId, epoch: a.epoch, patchState: { typing: true } });
    await presence.leave({ roomId: 'one', connId: a.connId, epoch: a.epoch });
    const b = await presence.join({ roomId: 'two', userId: 'bob' });
    await presence.leave({ roomId: 'two', connId: b.connId, epoch: b.epoch });
    await waitFor(() => seen.length === 2, { what: 'two leaves' });
    expect(seen).toEqual(['one:leave', 'two:leave']);
  });
});
