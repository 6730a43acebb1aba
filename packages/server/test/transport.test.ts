import { describe, expect, it, onTestFinished } from 'vitest';
import { PresenceError, type Extension } from '../src/index.js';
import { connect, listen, request, room, startGateway, testEngine, waitFor, type TestEngine } from 'realtime-message-testing';
import { PRESENCE_LINGER_MS } from '../src/app/init-presence.js';

/**
 * Waits for the node to unsubscribe room `r` at the engine: a room whose last local member left stays subscribed
 * for PRESENCE_LINGER_MS first, so the wait allows that plus a margin for a loaded machine.
 */
const released = (engine: TestEngine, r: string, what: string): Promise<unknown> =>
  waitFor(() => !engine.subscriptions.has(r), { what, timeoutMs: PRESENCE_LINGER_MS + 10_000, intervalMs: 50 });

/** Branches of the Socket.IO transport that need storage to be slow or to fail on demand. */
describe('socket.io transport under a gated engine', () => {
  it('the request queue is bounded: beyond 64 waiting requests a socket gets rate_limited at once, and every request is acked exactly once', async () => {
    const engine = testEngine();
    const g = await startGateway({ engine, rateLimit: false });
    const s = await connect(g.url);
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    const release = engine.hold('heartbeat');
    const acks: Array<{ ok: boolean; error?: { code: string } }> = [];
    const sent = 80;
    for (let i = 0; i < sent; i++) s.emit('presence:heartbeat', {}, (ack: { ok: boolean }) => acks.push(ack));
    // The ones beyond the bound are answered without waiting for storage.
    await waitFor(() => acks.length === sent - 64, { what: `${sent - 64} immediate refusals (have ${acks.length})` });
    expect(acks.every((a) => a.error?.code === 'rate_limited')).toBe(true);
    release();
    await waitFor(() => acks.length === sent, { what: `all ${sent} acks (have ${acks.length})` });
    // Settle: one more request after all of them; nothing is acked twice.
    expect((await request(s, 'presence:heartbeat', {})).ok).toBe(true);
    expect(acks.filter((a) => a.ok)).toHaveLength(64);
    expect(acks).toHaveLength(sent);
  });

  it('the rooms-per-socket limit refuses one room more with forbidden, and leaving one makes room', async () => {
    const g = await startGateway({ maxRoomsPerSocket: 2 });
    const s = await connect(g.url);
    const [r1, r2, r3] = [room(), room(), room()];
    expect((await request(s, 'presence:join', { roomId: r1, userId: 'ada' })).ok).toBe(true);
    expect((await request(s, 'presence:join', { roomId: r2, userId: 'ada' })).ok).toBe(true);
    const refused = await request(s, 'presence:join', { roomId: r3, userId: 'ada' });
    expect(refused).toEqual({ ok: false, error: { code: 'forbidden', message: expect.stringContaining('at most 2 rooms') } });
    // Re-joining a room it is already in is not one more room.
    expect((await request(s, 'presence:join', { roomId: r1, userId: 'ada' })).ok).toBe(true);
    expect(await request(s, 'presence:leave', { roomId: r2 })).toEqual({ ok: true });
    expect((await request(s, 'presence:join', { roomId: r3, userId: 'ada' })).ok).toBe(true);
    expect(g.runtime.membership((await g.io.fetchSockets())[0] as never, r3)).toEqual(expect.objectContaining({ roomId: r3, userId: 'ada' }));
  });

  it('a socket that disconnects while its join is in flight ends that connection (leave, reason disconnect) and holds no room subscription', async () => {
    const engine = testEngine();
    const g = await startGateway({ engine, disconnectGraceMs: 0 });
    const r = room();
    const watcher = await connect(g.url);
    expect((await request(watcher, 'presence:join', { roomId: r, userId: 'watcher' })).ok).toBe(true);
    const w = listen(watcher);
    const leaver = await connect(g.url);
    const release = engine.hold('join');
    leaver.emit('presence:join', { roomId: r, userId: 'ada' }, () => {});
    await waitFor(() => engine.calls.join === 2, { what: 'the join to reach storage' });
    leaver.disconnect();
    await waitFor(async () => (await g.io.fetchSockets()).length === 1, { what: 'the server to see the disconnect' });
    release();
    const leave = await w.waitFor((e) => e.type === 'leave' && e.userId === 'ada');
    expect(leave).toEqual(expect.objectContaining({ type: 'leave', reason: 'disconnect' }));
    // Settle: one more change from the watcher; ada joined and left exactly once.
    expect((await request(watcher, 'presence:heartbeat', { patchState: { settle: true } })).ok).toBe(true);
    await w.waitFor((e) => e.type === 'update');
    expect(w.events.filter((e) => e.userId === 'ada').map((e) => e.type)).toEqual(['join', 'leave']);
    // The watcher still holds the room, so the node keeps exactly one subscription.
    expect(engine.subscriptions.get(r)).toBe(1);
    expect(await request(watcher, 'presence:leave', {})).toEqual({ ok: true });
    await released(engine, r, 'the last listener to unsubscribe the room');
  });

  it('a failed room subscription fails only that join (internal) and a retry subscribes again', async () => {
    const engine = testEngine();
    const g = await startGateway({ engine });
    const r = room();
    const s = await connect(g.url);
    engine.failNext('subscribe', new Error('subscriber connection lost'));
    const failed = await request(s, 'presence:join', { roomId: r, userId: 'ada' });
    expect(failed).toEqual({ ok: false, error: { code: 'internal', message: expect.any(String) } });
    expect(engine.subscriptions.size).toBe(0);
    expect((await engine.snapshot(r as never, Date.now())).connections).toEqual([]);
    const ok = await request(s, 'presence:join', { roomId: r, userId: 'ada' });
    expect(ok.ok).toBe(true);
    const b = await connect(g.url);
    const lb = listen(s);
    expect((await request(b, 'presence:join', { roomId: r, userId: 'bob' })).ok).toBe(true);
    await lb.waitFor((e) => e.type === 'join' && e.userId === 'bob');
    expect(engine.subscriptions.get(r)).toBe(1);
  });

  it('sockets of one node share one engine subscription per room, released when the last member goes', async () => {
    const engine = testEngine();
    const g = await startGateway({ engine });
    const r = room();
    const sockets = await Promise.all([1, 2, 3].map(() => connect(g.url)));
    for (const [i, s] of sockets.entries()) expect((await request(s, 'presence:join', { roomId: r, userId: `u${i}` })).ok).toBe(true);
    expect(engine.subscriptions.get(r)).toBe(1);
    sockets[0]!.disconnect();
    expect(await request(sockets[1]!, 'presence:leave', {})).toEqual({ ok: true });
    expect(engine.subscriptions.get(r)).toBe(1);
    expect(await request(sockets[2]!, 'presence:leave', {})).toEqual({ ok: true });
    await released(engine, r, 'room unsubscribed');
  });

  it('extensions run on every request: an onPublish hook can refuse a message with its own code, onConnect can refuse a connection', async () => {
    const seen: string[] = [];
    const audit: Extension = {
      name: 'audit',
      onConnect: async (ctx) => {
        if (ctx.headers['x-block'] === '1') throw new PresenceError('forbidden', 'blocked by the connect hook');
      },
      onSubscribe: async (ctx) => void seen.push(`subscribe:${ctx.target}`),
      onPublish: async (ctx) => {
        seen.push(`publish:${ctx.event}`);
        if (ctx.event === 'chat:spam') throw new PresenceError('forbidden', 'spam is not relayed');
      },
    };
    const g = await startGateway({ extensions: [audit] });
    await expect(connect(g.url, { extraHeaders: { 'x-block': '1' } })).rejects.toThrow('blocked by the connect hook');
    const r = room();
    const a = await connect(g.url);
    const b = await connect(g.url);
    const lb = listen(b);
    expect((await request(a, 'presence:join', { roomId: r, userId: 'ada' })).ok).toBe(true);
    expect((await request(b, 'presence:join', { roomId: r, userId: 'bob' })).ok).toBe(true);
    expect(await request(a, 'presence:message', { event: 'chat:spam', data: {} })).toEqual({ ok: false, error: { code: 'forbidden', message: 'spam is not relayed' } });
    expect(await request(a, 'presence:message', { event: 'chat:message', data: { text: 'hi' } })).toEqual({ ok: true });
    await waitFor(() => lb.messages.length === 1, { what: 'the relayed message' });
    expect(lb.messages.map((m) => m.event)).toEqual(['chat:message']);
    expect(seen).toEqual([`subscribe:${r}`, `subscribe:${r}`, 'publish:chat:spam', 'publish:chat:message']);
  });
  it('a join that storage refuses leaves no room subscription behind; the retry joins', async () => {
    const engine = testEngine();
    const g = await startGateway({ engine });
    const r = room();
    const s = await connect(g.url);
    engine.failNext('join', new Error('storage unreachable'));
    expect(await request(s, 'presence:join', { roomId: r, userId: 'ada' })).toEqual({ ok: false, error: { code: 'internal', message: expect.any(String) } });
    await released(engine, r, 'the room subscription to be released');
    expect(g.runtime.membership((await g.io.fetchSockets())[0] as never, r)).toBeUndefined();
    expect((await request(s, 'presence:join', { roomId: r, userId: 'ada' })).ok).toBe(true);
    expect(engine.subscriptions.get(r)).toBe(1);
  });

  it('leave: after the connection expired it is ok (already gone); after another socket took it over it is stale_epoch and the new owner stays', async () => {
    const g = await startGateway({ ttlMs: 1_000, reaperIntervalMs: 20, disconnectGraceMs: 0 });
    const r = room();
    const leaves: string[] = [];
    const off = await g.runtime.service.subscribe(r, (e) => void (e.type === 'leave' && leaves.push(`${e.userId}:${e.reason}`)));
    onTestFinished(off);
    const expired = await connect(g.url);
    expect((await request(expired, 'presence:join', { roomId: r, userId: 'ada' })).ok).toBe(true);
    await waitFor(() => leaves.includes('ada:timeout'), { what: 'the timeout leave' });
    expect(await request(expired, 'presence:leave', {})).toEqual({ ok: true });
    expect((await request(expired, 'presence:leave', {})).error.code).toBe('not_joined');

    const old = await connect(g.url);
    const first = await request(old, 'presence:join', { roomId: r, userId: 'bob' });
    const owner = await connect(g.url);
    expect((await request(owner, 'presence:join', { roomId: r, userId: 'bob', connId: first.self.connId })).self.epoch).toBe(2);
    expect((await request(old, 'presence:leave', {})).error.code).toBe('stale_epoch');
    expect(await request(owner, 'presence:heartbeat', {})).toEqual({ ok: true, epoch: 2 });
    expect((await g.runtime.service.snapshot(r)).connections).toEqual([expect.objectContaining({ connId: first.self.connId, epoch: 2 })]);
  });
});
