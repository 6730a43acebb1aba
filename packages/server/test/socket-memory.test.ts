import { describe, expect, it } from 'vitest';
import { connect, request, room, startGateway } from 'realtime-message-testing';
import { SmallMap } from '../src/transports/socketio/small-map.js';
import { connectionsPerAddress } from '../src/transports/socketio/engine-guard.js';

// What the Socket.IO transport keeps per connection is kept small (issue 18):
// these check that the savings did not change what a client sees.

describe('SmallMap (the rooms of a socket)', () => {
  it('behaves as a Map for one entry, several, and after the first one left', () => {
    const m = new SmallMap<string, number>();
    expect(m.size).toBe(0);
    expect(m.get('a')).toBeUndefined();
    m.set('a', 1);
    expect([m.size, m.get('a'), m.has('a'), m.has('b')]).toEqual([1, 1, true, false]);
    m.set('a', 2).set('b', 3).set('c', 4);
    expect([...m.entries()]).toEqual([['a', 2], ['b', 3], ['c', 4]]);
    m.set('b', 5);
    expect([m.size, m.get('b')]).toEqual([3, 5]);
    expect(m.delete('a')).toBe(true);
    expect(m.delete('a')).toBe(false);
    expect([...m.keys()]).toEqual(['b', 'c']);
    m.set('d', 6);
    expect([...m.values()].sort()).toEqual([4, 5, 6]);
    expect(m.size).toBe(3);
    // Iteration tolerates changes made while iterating (the callers copy, but it must not break).
    for (const [k] of m) m.delete(k);
    expect(m.size).toBe(0);
    m.set('e', 7);
    m.clear();
    expect([m.size, m.get('e'), [...m]]).toEqual([0, undefined, []]);
  });
});

describe('per-connection listeners and queue', () => {
  it('with the rate limit on, a socket gets our listener of an event when it first sends it, after any application listener, and every request is answered in order', async () => {
    const g = await startGateway({ rateLimit: { eventsPerSecond: 1_000, burst: 1_000 } });
    const seen: string[] = [];
    g.io.on('connection', (s) => s.on('presence:join', () => seen.push('app')));
    const c = await connect(g.url);
    const [server] = await g.io.fetchSockets();
    const socket = g.io.sockets.sockets.get(server!.id)!;
    expect(socket.eventNames().filter((e) => String(e).includes(':'))).toEqual(['presence:join']);
    const r = room();
    // A join and heartbeats sent at once: the heartbeats run after the join, in order.
    const acks = await Promise.all([request(c, 'presence:join', { roomId: r, userId: 'ada' }), ...Array.from({ length: 20 }, () => request(c, 'presence:heartbeat', { roomId: r }))]);
    expect(acks.map((a) => a.ok)).toEqual(Array(21).fill(true));
    expect(seen).toEqual(['app']);
    expect(socket.eventNames().filter((e) => e === 'disconnect' || String(e).includes(':')).sort()).toEqual(['disconnect', 'presence:heartbeat', 'presence:join']);
    // Idle, then more: a queue made again keeps answering.
    await new Promise((r2) => setTimeout(r2, 50));
    expect(await request(c, 'presence:heartbeat', { roomId: r })).toEqual({ ok: true, epoch: 1 });
    expect((await request(c, 'status:subscribe', { userIds: ['ada'] })).ok).toBe(true);
    expect(socket.eventNames()).toContain('status:subscribe');
    expect(await request(c, 'presence:leave', { roomId: r })).toEqual({ ok: true });
    c.disconnect();
    await expect.poll(() => socket.eventNames().filter((e) => String(e).startsWith('presence:') || e === 'disconnect')).toEqual(['presence:join']);
  });

  it('without a rate limit every listener is on the socket from the start', async () => {
    const g = await startGateway({ rateLimit: false });
    await connect(g.url);
    const [server] = await g.io.fetchSockets();
    const names = g.io.sockets.sockets.get(server!.id)!.eventNames();
    expect(names).toEqual(expect.arrayContaining(['presence:join', 'presence:heartbeat', 'presence:leave', 'presence:message', 'status:subscribe', 'channel:subscribe', 'disconnect']));
  });
});

describe('the per-address count on Engine.IO connections', () => {
  it('its close listener comes after Engine.IO’s and Socket.IO’s, and on close every one of them runs: the socket disconnects, the engine forgets the connection, the slot is free', async () => {
    const g = await startGateway({});
    const allow = connectionsPerAddress(g.io, 1);
    const conns: { listeners(e: string): unknown[] }[] = [];
    (g.io.engine as unknown as { on(e: string, l: (c: never) => void): void }).on('connection', (c) => void conns.push(c));
    const disconnected: string[] = [];
    g.io.on('connection', (s) => s.on('disconnect', (reason) => disconnected.push(reason)));
    const c = await connect(g.url);
    const req = { socket: { remoteAddress: '127.0.0.1' } } as never;
    expect(allow(req)).toBe(false);
    // Engine.IO's own (clientsCount), Socket.IO's client, then ours, in that order.
    expect(conns[0]!.listeners('close')).toHaveLength(3);
    c.disconnect();
    await expect.poll(() => [disconnected.length, g.io.engine.clientsCount, allow(req)]).toEqual([1, 0, true]);
  });
});
