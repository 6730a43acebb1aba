import { describe, expect, inject, it, vi } from 'vitest';
import type { PresenceWireEvent } from 'realtime-message-protocol';
import { connect, listen, request, room, waitFor } from 'realtime-message-testing';
import type { PresenceRoom } from '../src/index.js';
import { client, startServer } from './server.js';

/** Waits for a truthy value with a deadline. */
const until = <T>(check: () => T, what = 'condition', timeoutMs = 5_000) => waitFor(check, { what, timeoutMs });

/** The list a room shows, as userId → state, for comparing with the server's snapshot. */
const view = (r: PresenceRoom) => Object.fromEntries(r.members().map((m) => [m.userId, m.connections.map((c) => c.state)]));

describe.each([
  ['memory', () => undefined],
  ['redis', () => inject('redisUrl')],
])('updates as patches, resumes without snapshots (issue 12, %s engine)', (_engine, redisUrl) => {
  const server = (opts: Parameters<typeof startServer>[0] = {}) => startServer({ redisUrl: redisUrl(), ...opts });
  const blob = 'x'.repeat(16_000);

  it('a one-key patch of a 16 KB state: patch sockets get a small event, default sockets the full state; SDK lists stay right', async () => {
    const s = await server({ snapshotBytesPerSecond: false });
    const r = room();
    const rooms: PresenceRoom[] = [];
    for (const userId of ['ada', 'bob', 'cy', 'dee']) rooms.push(await client(s.url).joinRoom(r, { userId, state: { blob, n: 0, mood: 'ok' } }));
    const plain = await connect(s.url);
    const patchy = await connect(s.url);
    const lPlain = listen(plain);
    const lPatch = listen<PresenceWireEvent>(patchy);
    expect((await request(plain, 'presence:join', { roomId: r, userId: 'plain' })).ok).toBe(true);
    expect((await request(patchy, 'presence:join', { roomId: r, userId: 'patchy', updates: 'patch' })).ok).toBe(true);
    const [ada, bob] = rooms as [PresenceRoom, PresenceRoom];
    await until(() => rooms.every((x) => x.members().length === 6), 'everyone in every list');
    await ada.updateState({ n: 1 });
    await bob.updateState({ mood: null, hand: 'up' });
    await ada.updateState({ n: 2 });
    await until(() => lPatch.events.filter((e) => e.type === 'update').length === 3 && lPlain.events.filter((e) => e.type === 'update').length === 3, 'three updates on both sockets');
    const patchBytes = lPatch.events.filter((e) => e.type === 'update').map((e) => JSON.stringify(e).length);
    const fullBytes = lPlain.events.filter((e) => e.type === 'update').map((e) => JSON.stringify(e).length);
    expect(Math.max(...patchBytes)).toBeLessThan(300);
    expect(Math.min(...fullBytes)).toBeGreaterThan(16_000);
    expect(lPatch.events.filter((e) => e.type === 'update').map((e) => ('patch' in e ? e.patch : 'state'))).toEqual([{ n: 1 }, { mood: null, hand: 'up' }, { n: 2 }]);
    const snap = await s.runtime.service.snapshot(r);
    const expected = Object.fromEntries(snap.members.map((m) => [m.userId, snap.connections.filter((c) => c.userId === m.userId).map((c) => c.state)]));
    expect(expected.bob).toEqual([{ blob, n: 0, hand: 'up' }]);
    for (const x of rooms) await until(() => x.seq === snap.seq, `every room at seq ${snap.seq}`);
    for (const x of rooms) expect(view(x)).toEqual(expected);
  });

  it('a reconnect where nothing else happened resumes without a snapshot; one that missed a change takes the snapshot', async () => {
    const s = await server({ disconnectGraceMs: 5_000 });
    const r = room();
    const ac = client(s.url);
    const a = await ac.joinRoom(r, { userId: 'ada', state: { blob } });
    const b = await client(s.url).joinRoom(r, { userId: 'bob' });
    await until(() => a.members().length === 2, 'bob in ada’s list');
    const joins = vi.spyOn(s.runtime.service, 'joinParsed');
    let syncs = 0;
    a.on('sync', () => syncs++);
    // 1. Nothing happens while ada is away: the ack is upToDate, the list is kept (no sync) and right.
    ac.socket.io.engine.close();
    await until(() => a.state === 'joined' && a.epoch === 2, 'resumed');
    await until(() => a.seq === 3, 'the resume’s own update applied');
    expect(syncs).toBe(0);
    expect(await joins.mock.results[0]!.value).toEqual(expect.objectContaining({ upToDate: true, seq: 3 }));
    expect(a.members().map((m) => m.userId)).toEqual(['ada', 'bob']);
    expect(a.members()[0]!.connections[0]!.epoch).toBe(2);
    // 2. Bob updates while ada is away: her list is behind, so the resume brings the snapshot.
    ac.socket.disconnect();
    await until(() => a.state === 'rejoining', 'ada away');
    await b.updateState({ away: false });
    ac.socket.connect();
    await until(() => syncs === 1 && a.state === 'joined', 'resumed with a snapshot');
    const snap = await s.runtime.service.snapshot(r);
    expect(a.seq).toBe(snap.seq);
    expect(view(a)).toEqual({ ada: [{ blob }], bob: [{ away: false }] });
    expect(await joins.mock.results[1]!.value).toEqual(expect.objectContaining({ resumed: true, snapshot: expect.objectContaining({ seq: snap.seq }) }));
  });
});
