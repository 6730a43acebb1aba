import { SignJWT } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import { createJwtVerifier } from 'realtime-message';
import { room, waitFor } from 'realtime-message-testing';
import { RealtimeError, backoffDelay, type ConnectionState, type PresenceEvent, type PresenceRoom, type Timers } from '../src/index.js';
import { client, startServer } from './server.js';

/** Waits for a truthy value with a deadline. */
const until = <T>(check: () => T, what = 'condition', timeoutMs = 5_000) => waitFor(check, { what, timeoutMs });

/**
 * Settle marker: one more member joins `roomId` and this waits until `room`
 * lists it. A room applies events in seq order, so every earlier event has
 * been applied by then: "no leave", "no duplicate" are asserted after this.
 */
async function settle(url: string, room: PresenceRoom): Promise<string> {
  const userId = `marker-${Date.now()}`;
  await client(url).joinRoom(room.roomId, { userId });
  await until(() => room.members().some((m) => m.userId === userId), 'the settle marker');
  return userId;
}

const names = (c: { members(): Array<{ userId: string }> }) => c.members().map((m) => m.userId);

describe('backoff', () => {
  it('is exponential with full jitter between 0 and the ceiling', () => {
    const o = { minDelayMs: 100, maxDelayMs: 1_000 };
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, o, () => 0.999_999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(5, o, () => 0)).toBe(0);
  });
});

describe.each([
  ['memory', () => undefined],
  ['redis', () => inject('redisUrl')],
])('SDK against a real server (%s engine)', (_engine, redisUrl) => {
  const server = (opts: Parameters<typeof startServer>[0] = {}) => startServer({ redisUrl: redisUrl(), ...opts });

  it('connects through an explicit state machine; connect() is idempotent', async () => {
    const s = await server();
    const c = client(s.url);
    const changes: Array<[ConnectionState, ConnectionState, string]> = [];
    c.on('state', ({ newState, oldState, reason }) => changes.push([oldState, newState, reason]));
    await Promise.all([c.connect(), c.connect()]);
    await c.connect();
    expect(changes).toEqual([
      ['disconnected', 'connecting', 'connect'],
      ['connecting', 'connected', 'connect'],
    ]);
    await c.shutdown();
    expect(changes.at(-1)).toEqual(['connected', 'disconnected', 'shutdown']);
  });

  it('join resolves with the snapshot; the member list follows joins, updates and leaves of others', async () => {
    const s = await server();
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada', state: { mic: true } });
    expect(names(a)).toEqual(['ada']);
    const seen: string[] = [];
    a.on('join', (e) => seen.push(`join:${e.userId}`));
    a.on('update', (e) => seen.push(`update:${e.userId}`));
    a.on('leave', (e) => seen.push(`leave:${e.userId}:${e.reason}`));
    const bobClient = client(s.url);
    const b = await bobClient.joinRoom(r, { userId: 'bob' });
    const b2 = await client(s.url).joinRoom(r, { userId: 'bob' });
    expect(names(b2)).toEqual(['ada', 'bob']);
    await until(() => a.members().find((m) => m.userId === 'bob')?.connections.length === 2, 'two bob connections');
    await b.updateState({ typing: true });
    await until(() => a.members().find((m) => m.userId === 'bob')?.connections.some((c) => c.state.typing === true), 'bob typing');
    await b2.leave();
    await until(() => a.members().find((m) => m.userId === 'bob')?.connections.length === 1, 'one bob connection');
    expect(a.seq).toBe(5);
    const marker = await settle(s.url, a);
    expect(seen).toEqual(['join:bob', 'join:bob', 'update:bob', 'leave:bob:leave', `join:${marker}`]);
  });

  it('join rejects with a RealtimeError carrying the server code', async () => {
    const s = await server();
    const c = client(s.url);
    const err = await c.joinRoom('bad{room}', { userId: 'ada' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RealtimeError);
    expect(err).toEqual(expect.objectContaining({ code: 'invalid_payload', message: expect.stringContaining('roomId') }));
  });

  it('sends heartbeats at the configured cadence, carrying the latest epoch', async () => {
    const s = await server();
    const r = room();
    const c = client(s.url);
    const ch = await c.joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 40 });
    const t0 = Date.now();
    await until(() => s.engine.heartbeatsOf(r).length >= 5, '5 heartbeats');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4 * 40);
    expect(new Set(s.engine.heartbeatsOf(r).map((h) => h.epoch))).toEqual(new Set([1]));
    // The transport drops; the channel resumes (epoch 2) and its heartbeats carry the new epoch.
    c.socket.io.engine.close();
    await until(() => ch.epoch === 2 && ch.state === 'joined', 'epoch 2 after resume');
    const seen = s.engine.heartbeatsOf(r).length;
    await until(() => s.engine.heartbeatsOf(r).length >= seen + 2, 'heartbeats after resume');
    expect(new Set(s.engine.heartbeatsOf(r).slice(seen).map((h) => h.epoch))).toEqual(new Set([2]));
  });

  it('updateState coalesces a burst into few heartbeats, within the rate limit, and the final state wins', async () => {
    const s = await server({ rateLimit: { eventsPerSecond: 5, burst: 5 } });
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 60_000 });
    const b = await client(s.url).joinRoom(r, { userId: 'bob', heartbeatIntervalMs: 60_000 });
    const before = s.engine.heartbeatsOf(r).length;
    await Promise.all(Array.from({ length: 100 }, (_, i) => a.updateState({ n: i, [`k${i % 3}`]: i })));
    expect(s.engine.heartbeatsOf(r).length - before).toBeLessThanOrEqual(3);
    expect(a.ownState).toEqual({ n: 99, k0: 99, k1: 97, k2: 98 });
    await until(() => b.members().find((m) => m.userId === 'ada')?.connections[0]?.state.n === 99, 'final state at bob');
    expect(b.members().find((m) => m.userId === 'ada')!.connections[0]!.state).toEqual({ n: 99, k0: 99, k1: 97, k2: 98 });
  });

  it('after a forced disconnect it resumes its connId: the others see no leave or join', async () => {
    const s = await server({ disconnectGraceMs: 3_000 });
    const r = room();
    const ac = client(s.url);
    const a = await ac.joinRoom(r, { userId: 'ada', state: { mic: true } });
    const b = await client(s.url).joinRoom(r, { userId: 'bob' });
    const events: PresenceEvent[] = [];
    b.on('join', (e) => events.push(e));
    b.on('leave', (e) => events.push(e));
    b.on('update', (e) => events.push(e));
    const connId = a.connId;
    const states: string[] = [];
    ac.on('state', (c) => states.push(`${c.newState}:${c.reason}`));
    const roomStates: string[] = [];
    a.on('state', (c) => roomStates.push(`${c.newState}:${c.reason}`));
    ac.socket.io.engine.close(); // the transport drops, as on a network change
    await until(() => a.state === 'joined' && a.epoch === 2, 'resumed');
    expect(a.connId).toBe(connId);
    expect(states).toEqual(['reconnecting:disconnect', 'connected:reconnect']);
    expect(roomStates).toEqual(['rejoining:disconnect', 'joined:join']);
    await until(() => events.length === 1, 'one update');
    expect(names(b)).toEqual(['ada', 'bob']);
    const marker = await settle(s.url, b);
    expect(events.map((e) => `${e.type}:${e.userId}`)).toEqual(['update:ada', `join:${marker}`]);
  });

  it('after the connection expired it joins fresh; members are right again', async () => {
    const s = await server({ disconnectGraceMs: 50, ttlMs: 2_000, reaperIntervalMs: 20 });
    const r = room();
    const ac = client(s.url, { reconnect: { minDelayMs: 400, maxDelayMs: 400 }, random: () => 0.999 });
    const a = await ac.joinRoom(r, { userId: 'ada' });
    const b = await client(s.url).joinRoom(r, { userId: 'bob' });
    const types: string[] = [];
    b.on('leave', (e) => types.push(`leave:${e.reason}`));
    b.on('join', (e) => types.push(`join:${e.userId}`));
    ac.socket.io.engine.close();
    await until(() => types.includes('leave:disconnect'), 'leave after grace');
    await until(() => a.state === 'joined' && a.epoch === 2, 'rejoined');
    await until(() => types.includes('join:ada'), 'join again');
    expect(names(b)).toEqual(['ada', 'bob']);
    expect(names(a)).toEqual(['ada', 'bob']);
  });

  it('when its own connection timed out (no heartbeats) it joins again, with reason expired', async () => {
    const s = await server({ ttlMs: 300, reaperIntervalMs: 20 });
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 60_000 });
    const reasons: string[] = [];
    a.on('state', (c) => reasons.push(`${c.newState}:${c.reason}`));
    const left: string[] = [];
    a.on('leave', (e) => left.push(`${e.userId}:${e.reason}`));
    const first = a.connId;
    await until(() => reasons.includes('joined:join'), 'joined again');
    expect(left).toEqual(['ada:timeout']);
    expect(reasons.slice(0, 2)).toEqual(['rejoining:expired', 'joined:join']);
    expect(a.connId).toBe(first); // the server lets a forgotten connId be used again by its user
    expect(names(a)).toEqual(['ada']);
  });

  it('resyncs from a fresh snapshot when a seq is skipped', async () => {
    const s = await server();
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada' });
    const b = await client(s.url).joinRoom(r, { userId: 'bob' });
    await until(() => a.members().length === 2, 'bob');
    let syncs = 0;
    a.on('sync', () => syncs++);
    const reasons: string[] = [];
    a.on('state', (c) => reasons.push(`${c.newState}:${c.reason}`));
    // A forged event far ahead: the channel must not apply it, but resync.
    s.io.to(`presence:${r}`).emit('presence:event', { type: 'join', roomId: r, userId: 'ghost', connId: 'ghost-1', state: {}, ts: Date.now(), epoch: 1, seq: a.seq + 5 });
    // The server's room did not change (the event was forged), so the resume would be upToDate
    // and keep the list; a real change before the rejoin makes it take a fresh snapshot.
    await b.leave();
    await until(() => syncs === 1 && a.state === 'joined', 'resync');
    expect(reasons).toEqual(['rejoining:resync', 'joined:join']);
    expect(names(a)).toEqual(['ada']);
    await client(s.url).joinRoom(r, { userId: 'bob' });
    await until(() => a.members().length === 2, 'bob again');
    expect(names(a)).toEqual(['ada', 'bob']);
    const snap = await s.runtime.service.snapshot(r);
    expect(a.seq).toBe(snap.seq);
  });

  it('custom events: emit/on between members, with acks; reserved names are refused', async () => {
    const s = await server();
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada' });
    const b = await client(s.url).joinRoom(r, { userId: 'bob' });
    const got: unknown[] = [];
    const off = b.on('chat:message', (data, meta) => got.push([data, meta.userId]));
    await a.emit('chat:message', { text: 'hi' });
    await a.emit('chat:message', { text: 'no ack' }, { ack: false });
    await until(() => got.length === 2, 'messages');
    // Messages are ordered with the room's events: after the marker, no duplicate can still come.
    await settle(s.url, b);
    expect(got).toEqual([[{ text: 'hi' }, 'ada'], [{ text: 'no ack' }, 'ada']]);
    off();
    await expect(a.emit('join', 1)).rejects.toMatchObject({ code: 'invalid_payload' });
    await expect(a.emit('bad name', 1)).rejects.toMatchObject({ code: 'invalid_payload' });
  });

  it('shutdown leaves every room and leaves nothing running', async () => {
    const s = await server();
    const r = room();
    const b = await client(s.url).joinRoom(r, { userId: 'bob' });
    const baseline = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const ac = client(s.url);
    await ac.joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 50 });
    await ac.joinRoom(room(), { userId: 'ada', heartbeatIntervalMs: 50 });
    await until(() => b.members().length === 2, 'ada');
    await ac.shutdown();
    await until(() => b.members().length === 1, 'ada left');
    expect(ac.state).toBe('disconnected');
    await new Promise((res) => setTimeout(res, 120));
    expect(process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length).toBeLessThanOrEqual(baseline);
    expect(ac.socket.connected).toBe(false);
    expect(ac.socket.listeners('connect')).toHaveLength(0);
    await expect(ac.connect()).rejects.toMatchObject({ code: 'closed' });
  });
});

/** Timers that only fire when the test says so. */
class ManualTimers implements Timers {
  private queue: Array<{ at: number; fn: () => void; id: number }> = [];
  private now = 0;
  private ids = 0;
  readonly requested: number[] = [];
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.requested.push(ms);
    this.queue.push({ at: this.now + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.queue = this.queue.filter((t) => t.id !== handle);
  }
  get pending(): number {
    return this.queue.length;
  }
  /** Moves time forward and runs what came due, in order. */
  advance(ms: number): void {
    this.now += ms;
    for (;;) {
      const due = this.queue.filter((t) => t.at <= this.now).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.queue = this.queue.filter((t) => t !== due);
      due.fn();
    }
  }
}

describe('SDK with injected timers (deterministic time)', () => {
  it('sends exactly one heartbeat per interval, and nothing in between', async () => {
    const s = await startServer();
    const r = room();
    const timers = new ManualTimers();
    const ch = await client(s.url, { timers }).joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 10_000 });
    expect(timers.requested.at(-1)).toBe(10_000);
    timers.advance(9_999);
    await new Promise((res) => setTimeout(res, 50));
    expect(s.engine.heartbeatsOf(r)).toHaveLength(0);
    for (let i = 1; i <= 3; i++) {
      timers.advance(10_000);
      await until(() => s.engine.heartbeatsOf(r).length === i, `heartbeat ${i}`);
      await until(() => timers.pending === 1, 'next heartbeat scheduled');
    }
    expect(s.engine.heartbeatsOf(r).map((h) => h.epoch)).toEqual([1, 1, 1]);
    expect(ch.state).toBe('joined');
  });

  it('schedules reconnects with full-jitter backoff from the injected random source', async () => {
    const s = await startServer();
    const timers = new ManualTimers();
    const c = client(s.url, { timers, random: () => 0.5, reconnect: { minDelayMs: 1_000, maxDelayMs: 4_000 } });
    const ch = await c.joinRoom(room(), { userId: 'ada', heartbeatIntervalMs: 60_000 });
    await s.io.close(); // the server goes away: every attempt fails
    await until(() => c.state === 'reconnecting', 'reconnecting');
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      await until(() => timers.requested.length > 0 && timers.pending > 0, 'a scheduled retry');
      delays.push(timers.requested.at(-1)!);
      timers.advance(timers.requested.at(-1)!);
      await until(() => c.state !== 'connected', 'attempt failed');
      await new Promise((res) => setTimeout(res, 100));
    }
    // 0.5 × min(4000, 1000 × 2^n): 500, 1000, 2000, 2000
    expect(delays.filter((d) => d !== 60_000)).toEqual([500, 1_000, 2_000, 2_000]);
    expect(ch.state).toBe('rejoining');
  });
});

describe('auth and token refresh', () => {
  it('calls the token function again on every reconnect', async () => {
    const secret = 'sdk-test-secret-of-at-least-32-bytes!!';
    const s = await startServer({ verifyToken: createJwtVerifier({ secret }) });
    let calls = 0;
    const token = async () => {
      calls++;
      return new SignJWT({ sub: 'ada', n: calls }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
    };
    const c = client(s.url, { token });
    const ch = await c.joinRoom(room(), { userId: 'ada' });
    expect(calls).toBe(1);
    c.socket.io.engine.close();
    await until(() => ch.state === 'joined' && ch.epoch === 2, 'rejoined');
    expect(calls).toBe(2);
    const errors: string[] = [];
    const bad = client(s.url, { token: 'nope', reconnect: { maxAttempts: 1, minDelayMs: 10, maxDelayMs: 10 } });
    bad.on('error', (e) => errors.push(e.code));
    await expect(bad.connect()).rejects.toMatchObject({ code: 'disconnected' });
    expect(errors[0]).toBe('unauthorized');
  });
});
