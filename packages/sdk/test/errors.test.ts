import { describe, expect, it } from 'vitest';
import { createJwtVerifier } from 'realtime-message';
import { connect, request, room, waitFor } from 'realtime-message-testing';
import { RealtimeError, type RoomState } from '../src/index.js';
import { client, startServer } from './server.js';

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof RealtimeError ? e.code : `not a RealtimeError: ${String(e)}`),
  );

/** The SDK's answers to the server's heartbeat errors (policy.ts), against a real server whose engine fails on demand. */
describe('SDK under heartbeat errors', () => {
  it('internal (storage down for a moment): the patch is kept and sent again, the update resolves, the error is reported', async () => {
    const s = await startServer();
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 200 });
    const b = await client(s.url).joinRoom(r, { userId: 'bob', heartbeatIntervalMs: 60_000 });
    const errors: string[] = [];
    a.on('error', (e) => errors.push(e.code));
    s.engine.failNext('heartbeat', new Error('storage unreachable'), 2);
    await a.updateState({ typing: true });
    expect(errors).toEqual(['internal', 'internal']);
    expect(a.state).toBe('joined');
    await waitFor(() => b.members().find((m) => m.userId === 'ada')?.connections[0]?.state.typing === true, { what: 'the retried patch at bob' });
  });

  it('payload_too_large: only that update is rejected; the room stays joined and later updates go through', async () => {
    const s = await startServer({ maxStateBytes: 64 });
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 60_000 });
    const errors: string[] = [];
    a.on('error', (e) => errors.push(e.code));
    expect(await codeOf(a.updateState({ big: 'x'.repeat(100) }))).toBe('payload_too_large');
    expect(errors).toEqual(['payload_too_large']);
    expect(a.state).toBe('joined');
    await a.updateState({ big: null, small: 1 });
    const snap = await s.runtime.service.snapshot(r);
    expect(snap.connections[0]!.state).toEqual({ small: 1 });
  });

  it('stale_epoch (another socket took the connection over): the room leaves with reason stale_epoch and does not fight back', async () => {
    const s = await startServer();
    const r = room();
    const a = await client(s.url).joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 60_000 });
    const states: string[] = [];
    a.on('state', (c) => states.push(`${c.newState}:${c.reason}`));
    const errors: string[] = [];
    a.on('error', (e) => errors.push(e.code));
    const other = await connect(s.url);
    const takeover = await request(other, 'presence:join', { roomId: r, userId: 'ada', connId: a.connId });
    expect(takeover.self).toEqual(expect.objectContaining({ connId: a.connId, epoch: 2 }));
    expect(await codeOf(a.updateState({ typing: true }))).toBe('stale_epoch');
    expect(a.state).toBe<RoomState>('left');
    expect(states).toEqual(['left:stale_epoch']);
    expect(errors).toEqual(['stale_epoch']);
    // The new owner keeps the connection: one connection, epoch 2, and the stale room sends nothing more.
    const before = s.engine.heartbeatsOf(r).length;
    expect(await request(other, 'presence:heartbeat', { patchState: { mine: true } })).toEqual({ ok: true, epoch: 2 });
    expect((await s.runtime.service.snapshot(r)).connections).toEqual([expect.objectContaining({ connId: a.connId, epoch: 2, state: { mine: true } })]);
    expect(s.engine.heartbeatsOf(r).length).toBe(before + 1);
  });
});

describe('SDK room lifecycle', () => {
  it('join() is idempotent, a left room cannot be used again, and one room object per room and client', async () => {
    const s = await startServer();
    const r = room();
    const c = client(s.url);
    const a = c.createPresenceRoom(r, { userId: 'ada' });
    const [first, second] = [a.join(), a.join()];
    expect(second).toBe(first);
    const snap = await first;
    expect(await a.join()).toEqual(snap);
    expect(s.engine.calls.join).toBe(1);
    expect(() => c.createPresenceRoom(r, { userId: 'ada' })).toThrow(expect.objectContaining({ code: 'invalid_payload' }));
    await a.leave();
    await a.leave();
    expect(await codeOf(a.join())).toBe('closed');
    expect(await codeOf(a.emit('chat:message', 1))).toBe('not_joined');
    expect(await codeOf(a.updateState({ x: 1 }))).toBe('not_joined');
    expect((await s.runtime.service.snapshot(r)).connections).toEqual([]);
    // The room id is free again on this client.
    expect((await c.joinRoom(r, { userId: 'ada' })).state).toBe('joined');
  });

  it('a failed first join goes back to idle with reason error and can be tried again', async () => {
    const s = await startServer();
    const r = room();
    const a = client(s.url).createPresenceRoom(r, { userId: 'ada' });
    const states: string[] = [];
    a.on('state', (c) => states.push(`${c.newState}:${c.reason}`));
    s.engine.failNext('join', new Error('storage unreachable'));
    expect(await codeOf(a.join())).toBe('internal');
    expect(a.state).toBe<RoomState>('idle');
    await a.join();
    expect(states).toEqual(['joining:join', 'idle:error', 'joining:join', 'joined:join']);
  });
});

describe('SDK credentials', () => {
  it('a token provider that throws is reported as unauthorized with its message, and the connection is refused', async () => {
    const s = await startServer({ verifyToken: createJwtVerifier({ secret: 'sdk-errors-secret-of-at-least-32-bytes' }) });
    const errors: Array<[string, string]> = [];
    const c = client(s.url, {
      token: async () => {
        throw new Error('no session cookie');
      },
      reconnect: { maxAttempts: 1, minDelayMs: 10, maxDelayMs: 10 },
    });
    c.on('error', (e) => errors.push([e.code, e.message]));
    expect(await codeOf(c.connect())).toBe('disconnected');
    expect(errors).toContainEqual(['unauthorized', 'token provider failed: no session cookie']);
    expect(errors.map(([code]) => code)).not.toContain('internal');
  });
});
