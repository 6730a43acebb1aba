import { describe, expect, it } from 'vitest';
import { room } from 'realtime-message-testing';
import { client, startServer } from './server.js';

describe('SDK heartbeat follows the server TTL', () => {
  it('with a 900 ms TTL and no heartbeatIntervalMs, a member stays joined: no timeout leave, no rejoin, for several TTLs', async () => {
    const s = await startServer({ ttlMs: 900, reaperIntervalMs: 50, disconnectGraceMs: 100 });
    const r = room();
    const ada = client(s.url);
    const bob = client(s.url);
    const adaRoom = await ada.joinRoom(r, { userId: 'ada' });
    const bobRoom = await bob.joinRoom(r, { userId: 'bob' });
    const seenByBob: string[] = [];
    bobRoom.on('leave', (e) => seenByBob.push(`leave:${e.userId}:${e.reason}`));
    bobRoom.on('join', (e) => seenByBob.push(`join:${e.userId}`));
    // Four TTLs: with a fixed 10 s heartbeat, ada would time out and rejoin about every TTL.
    await new Promise((resolve) => setTimeout(resolve, 3_600));
    // Settle: one more change, seen by bob, after everything before it.
    const settled = new Promise<void>((resolve) => bobRoom.on('update', (e) => e.userId === 'ada' && resolve()));
    await adaRoom.updateState({ settle: true });
    await settled;
    expect(seenByBob).toEqual([]);
    expect(adaRoom.state).toBe('joined');
    expect(s.engine.heartbeatsOf(r).length).toBeGreaterThanOrEqual(8);
  });

  it('an explicit heartbeatIntervalMs wins over the TTL', async () => {
    const s = await startServer({ ttlMs: 3_000 });
    const r = room();
    const ada = client(s.url);
    await ada.joinRoom(r, { userId: 'ada', heartbeatIntervalMs: 200 });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // ttl/3 would be 1 s: at most one heartbeat. 200 ms gives about five.
    expect(s.engine.heartbeatsOf(r).length).toBeGreaterThanOrEqual(4);
  });
});
