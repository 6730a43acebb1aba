import { describe, expect, inject, it } from 'vitest';
import type { PresenceWireEvent } from 'realtime-message-protocol';
import { connect, listen, request, room, settle, startGateway, waitFor, type Client } from 'realtime-message-testing';

type EngineCase = [name: string, redisUrl: () => string | undefined];
const engines: EngineCase[] = [
  ['memory', () => undefined],
  ['redis', () => inject('redisUrl')],
];

describe.each(engines)('socket.io protocol (%s engine)', (_name, redisUrl) => {
  const gateway = (opts: Parameters<typeof startGateway>[0] = {}) => startGateway({ redisUrl: redisUrl(), ...opts });

  async function joined(url: string, roomId: string, userId: string, state?: object): Promise<{ socket: Client; connId: string; epoch: number; ack: any }> {
    const socket = await connect(url);
    const ack = await request(socket, 'presence:join', { roomId, userId, state });
    expect(ack.ok, JSON.stringify(ack)).toBe(true);
    return { socket, connId: ack.self.connId, epoch: ack.self.epoch, ack };
  }

  it('join acks with self and a snapshot; every socket in the room gets the join event exactly once', async () => {
    const g = await gateway();
    const r = room();
    const a = await joined(g.url, r, 'ada', { mic: true });
    expect(a.ack).toEqual({
      ok: true,
      self: { connId: expect.any(String), epoch: 1, resumed: false, ttlMs: 30_000 },
      snapshot: { roomId: r, seq: 1, members: [{ userId: 'ada', connIds: [a.connId] }], connections: [expect.objectContaining({ userId: 'ada', state: { mic: true }, epoch: 1 })] },
    });
    const la = listen(a.socket);
    const b = await joined(g.url, r, 'bob');
    const lb = listen(b.socket);
    await la.waitFor((e) => e.type === 'join' && e.userId === 'bob');
    expect(b.ack.snapshot.seq).toBe(2);
    // A third change proves nothing was duplicated before it.
    await request(b.socket, 'presence:heartbeat', { patchState: { typing: true } });
    await la.waitFor((e) => e.type === 'update');
    await lb.waitFor((e) => e.type === 'update');
    // The joiner's own join event (seq 1) may arrive after its ack; a client ignores seq <= snapshot seq.
    expect(la.events.filter((e) => e.seq > a.ack.snapshot.seq).map((e) => [e.type, e.seq])).toEqual([['join', 2], ['update', 3]]);
    expect(la.events.filter((e) => e.seq === 1).length).toBeLessThanOrEqual(1);
    expect(lb.events.filter((e) => e.seq > 2).map((e) => e.seq)).toEqual([3]);
    expect(lb.events.every((e) => e.seq >= 2)).toBe(true);
  });

  it('heartbeat acks the epoch; a patch reaches the others as an update with the full state; leave acks and emits leave', async () => {
    const g = await gateway();
    const r = room();
    const a = await joined(g.url, r, 'ada', { mic: true });
    const b = await joined(g.url, r, 'bob');
    const lb = listen(b.socket);
    expect(await request(a.socket, 'presence:heartbeat', { roomId: r })).toEqual({ ok: true, epoch: 1 });
    expect(await request(a.socket, 'presence:heartbeat', { roomId: r, epoch: 1, patchState: { cam: true } })).toEqual({ ok: true, epoch: 1 });
    const up = await lb.waitFor((e) => e.type === 'update');
    expect(up).toEqual(expect.objectContaining({ userId: 'ada', connId: a.connId, state: { mic: true, cam: true }, seq: 3 }));
    expect(await request(a.socket, 'presence:leave', { roomId: r })).toEqual({ ok: true });
    expect(await lb.waitFor((e) => e.type === 'leave')).toEqual(expect.objectContaining({ connId: a.connId, reason: 'leave', seq: 4 }));
    expect(await request(a.socket, 'presence:heartbeat', { roomId: r })).toEqual({ ok: false, error: { code: 'not_joined', message: expect.any(String) } });
  });

  it("updates: 'patch' per join: that socket's updates carry only the patch; default sockets keep the full state (issue 12)", async () => {
    const g = await gateway();
    const r = room();
    const big = { doc: 'x'.repeat(16_000), mic: true };
    const a = await joined(g.url, r, 'ada', big);
    const full = await joined(g.url, r, 'bob');
    const patchSocket = await connect(g.url);
    const lp = listen<PresenceWireEvent>(patchSocket);
    const lf = listen(full.socket);
    const pj = await request(patchSocket, 'presence:join', { roomId: r, userId: 'cy', updates: 'patch' });
    expect(pj.snapshot.connections.find((c: { userId: string }) => c.userId === 'ada').state).toEqual(big); // the snapshot stays whole
    await request(a.socket, 'presence:heartbeat', { patchState: { mic: null, hand: 'up' } });
    const patched = await lp.waitFor((e) => e.type === 'update');
    expect(patched).toEqual({ type: 'update', roomId: r, userId: 'ada', connId: a.connId, ts: expect.any(Number), epoch: 1, seq: 4, patch: { mic: null, hand: 'up' } });
    expect(JSON.stringify(patched).length).toBeLessThan(300);
    const whole = await lf.waitFor((e) => e.type === 'update');
    expect(whole).toEqual({ type: 'update', roomId: r, userId: 'ada', connId: a.connId, ts: expect.any(Number), epoch: 1, seq: 4, state: { doc: big.doc, hand: 'up' } });
    // The same socket may join again with the default form: its updates are whole again.
    await request(patchSocket, 'presence:join', { roomId: r, userId: 'cy', connId: pj.self.connId });
    await request(a.socket, 'presence:heartbeat', { patchState: { hand: 'down' } });
    const again = await lp.waitFor((e) => e.type === 'update' && e.seq === 6);
    expect('state' in again && again.state).toEqual({ doc: big.doc, hand: 'down' });
    expect('patch' in again).toBe(false);
  });

  it('a resume with knownSeq gets upToDate and no snapshot when nothing else happened; with an older knownSeq the full snapshot (issue 12)', async () => {
    const g = await gateway({ disconnectGraceMs: 5_000 });
    const r = room();
    const a = await joined(g.url, r, 'ada', { mic: true });
    const b = await joined(g.url, r, 'bob');
    a.socket.disconnect();
    await waitFor(async () => (await g.io.fetchSockets()).length === 1, { what: 'the server to see the disconnect' });
    const a2 = await connect(g.url);
    const la = listen<PresenceWireEvent>(a2);
    const up = await request(a2, 'presence:join', { roomId: r, userId: 'ada', connId: a.connId, knownSeq: b.ack.snapshot.seq, updates: 'patch' });
    expect(up).toEqual({ ok: true, self: { connId: a.connId, epoch: 2, resumed: true, ttlMs: expect.any(Number) }, upToDate: true, seq: 3 });
    // The resume's own update (seq 3) comes through the feed as usual: state kept, so an empty patch.
    expect(await la.waitFor((e) => e.seq === 3)).toEqual(expect.objectContaining({ type: 'update', connId: a.connId, epoch: 2, patch: {} }));
    // Something happened since seq 2 (the resume at 3, now bob's update at 4): a client at 2 gets the snapshot.
    await request(b.socket, 'presence:heartbeat', { patchState: { typing: true } });
    const a3 = await connect(g.url);
    const behind = await request(a3, 'presence:join', { roomId: r, userId: 'ada', connId: a.connId, knownSeq: 2 });
    expect(behind.upToDate).toBeUndefined();
    expect(behind.snapshot).toEqual(expect.objectContaining({ seq: 5, members: [{ userId: 'ada', connIds: [a.connId] }, { userId: 'bob', connIds: [b.connId] }] }));
    expect((await request(a3, 'presence:join', { roomId: r, userId: 'ada', knownSeq: 'x' })).error.code).toBe('invalid_payload');
  });

  it('the one-room form needs no roomId; socket.data carries the room and user', async () => {
    const g = await gateway();
    const r = room();
    const a = await joined(g.url, r, 'ada');
    expect(await request(a.socket, 'presence:heartbeat')).toEqual({ ok: true, epoch: 1 });
    expect(await request(a.socket, 'presence:heartbeat', {})).toEqual({ ok: true, epoch: 1 });
    const [server] = await g.io.fetchSockets();
    expect(server!.data).toEqual(expect.objectContaining({ presenceRoomId: r, presenceUserId: 'ada', presenceRooms: [expect.objectContaining({ roomId: r, connId: a.connId })] }));
    expect(g.runtime.membership(g.io.sockets.sockets.get(server!.id)!)).toEqual(expect.objectContaining({ roomId: r, connId: a.connId }));
    expect(await request(a.socket, 'presence:leave')).toEqual({ ok: true });
    expect(await request(a.socket, 'presence:leave')).toEqual({ ok: false, error: { code: 'not_joined', message: expect.any(String) } });
  });

  it('a socket in several rooms names the room; events of one room do not reach another', async () => {
    const g = await gateway();
    const [r1, r2] = [room(), room()];
    const a = await connect(g.url);
    const la = listen(a);
    expect((await request(a, 'presence:join', { roomId: r1, userId: 'ada' })).ok).toBe(true);
    expect((await request(a, 'presence:join', { roomId: r2, userId: 'ada' })).ok).toBe(true);
    const h = await request(a, 'presence:heartbeat', {});
    expect(h).toEqual({ ok: false, error: { code: 'invalid_payload', message: expect.stringContaining('roomId is required') } });
    expect(await request(a, 'presence:heartbeat', { roomId: r2 })).toEqual({ ok: true, epoch: 1 });
    const b = await joined(g.url, r2, 'bob');
    await la.waitFor((e) => e.roomId === r2 && e.userId === 'bob');
    const c = await joined(g.url, r1, 'cy');
    await la.waitFor((e) => e.roomId === r1 && e.userId === 'cy');
    const lb = listen(b.socket);
    await request(c.socket, 'presence:heartbeat', { patchState: { x: 1 } });
    await la.waitFor((e) => e.type === 'update' && e.roomId === r1);
    await request(b.socket, 'presence:heartbeat', { patchState: { y: 1 } });
    await lb.waitFor((e) => e.type === 'update');
    expect(lb.events.some((e) => e.roomId === r1)).toBe(false);
    expect(await request(a, 'presence:leave', { roomId: r1 })).toEqual({ ok: true });
    expect(await request(a, 'presence:heartbeat')).toEqual({ ok: true, epoch: 1 }); // one room left: the short form works again
  });

  it('acks every failure with a stable code', async () => {
    const g = await gateway({ maxStateBytes: 64 });
    const r = room();
    const s = await connect(g.url);
    const code = async (event: string, payload: unknown) => (await request(s, event, payload)).error?.code;
    expect(await code('presence:heartbeat', { roomId: r })).toBe('not_joined');
    expect(await code('presence:join', { roomId: r })).toBe('invalid_payload');
    expect(await code('presence:join', { roomId: r, userId: 'ada', state: { big: 'x'.repeat(100) } })).toBe('payload_too_large');
    const a = await request(s, 'presence:join', { roomId: r, userId: 'ada' });
    expect(await code('presence:heartbeat', { epoch: 5 })).toBe('stale_epoch');
    expect(await code('presence:heartbeat', { patchState: { big: 'x'.repeat(100) } })).toBe('payload_too_large');
    const other = await connect(g.url);
    expect((await request(other, 'presence:join', { roomId: r, userId: 'mallory', connId: a.self.connId })).error.code).toBe('forbidden');
    expect((await request(s, 'presence:join', { roomId: r, userId: 'someone-else' })).error.code).toBe('forbidden');
  });

  it('resume inside the grace window: same connId, others see no leave/join; the old socket is fenced', async () => {
    const g = await gateway({ disconnectGraceMs: 1_000, reaperIntervalMs: 25 });
    const r = room();
    const a = await joined(g.url, r, 'ada', { mic: true });
    const b = await joined(g.url, r, 'bob');
    const lb = listen(b.socket);
    const t0 = Date.now();
    a.socket.disconnect();
    await waitFor(async () => (await g.io.fetchSockets()).length === 1, { what: 'the server to see the disconnect' });
    const a2 = await connect(g.url);
    const again = await request(a2, 'presence:join', { roomId: r, userId: 'ada', connId: a.connId });
    expect(again.self).toEqual({ connId: a.connId, epoch: 2, resumed: true, ttlMs: expect.any(Number) });
    // A third socket takes the connection over while a2 is still connected: a2 is fenced.
    const a3 = await connect(g.url);
    expect((await request(a3, 'presence:join', { roomId: r, userId: 'ada', connId: a.connId })).self.epoch).toBe(3);
    expect(await request(a2, 'presence:heartbeat')).toEqual({ ok: false, error: { code: 'stale_epoch', message: expect.any(String) } });
    expect((await request(a2, 'presence:heartbeat')).error.code).toBe('not_joined'); // dropped after the fence
    // Past the grace window too: still no leave (the resumed connection lives on).
    await waitFor(async () => (await request(a3, 'presence:heartbeat')).ok && Date.now() - t0 > 1_200, { what: 'the grace window to pass', intervalMs: 100 });
    const [events] = await settle(g.url, r, lb);
    expect(events!.filter((e) => e.userId === 'ada').map((e) => e.type)).toEqual(['update', 'update']);
  });

  it('without a resume, the grace ends in one leave with reason disconnect', async () => {
    const g = await gateway({ disconnectGraceMs: 150, reaperIntervalMs: 25 });
    const r = room();
    const a = await joined(g.url, r, 'ada');
    const b = await joined(g.url, r, 'bob');
    const lb = listen(b.socket);
    const t0 = Date.now();
    a.socket.disconnect();
    const leave = await lb.waitFor((e) => e.type === 'leave');
    expect(leave).toEqual(expect.objectContaining({ connId: a.connId, reason: 'disconnect' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    // Several reaper passes later: still that one leave.
    await waitFor(async () => Date.now() - t0 > 300, { what: 'a few reaper passes' });
    const [events] = await settle(g.url, r, lb);
    expect(events!.filter((e) => e.type === 'leave')).toEqual([leave]);
  });

  it('a silent connection expires: members get leave (timeout) within TTL + reaper interval', async () => {
    const g = await gateway({ ttlMs: 400, reaperIntervalMs: 50, disconnectGraceMs: 100 });
    const r = room();
    const a = await joined(g.url, r, 'ada');
    const b = await joined(g.url, r, 'bob');
    const lb = listen(b.socket);
    const t0 = Date.now();
    // b keeps heartbeating, a stays connected but silent
    const beat = setInterval(() => void request(b.socket, 'presence:heartbeat').catch(() => {}), 100);
    try {
      const leave = await lb.waitFor((e) => e.type === 'leave');
      const elapsed = Date.now() - t0;
      expect(leave).toEqual(expect.objectContaining({ connId: a.connId, reason: 'timeout' }));
      expect(elapsed).toBeGreaterThanOrEqual(350);
      expect(elapsed).toBeLessThan(400 + 50 + 400); // TTL + interval, plus scheduling slack on a busy 2-core machine
      const [events] = await settle(g.url, r, lb);
      expect(events!.filter((e) => e.type === 'leave')).toEqual([leave]);
    } finally {
      clearInterval(beat);
    }
    expect((await request(a.socket, 'presence:heartbeat')).error.code).toBe('not_joined');
  });

  it('custom messages: members relay to the other members; non-members are refused; the server helper broadcasts', async () => {
    const g = await gateway();
    const r = room();
    const a = await joined(g.url, r, 'ada');
    const b = await joined(g.url, r, 'bob');
    const outsider = await connect(g.url);
    const la = listen(a.socket);
    const lb = listen(b.socket);
    const lo = listen(outsider);
    expect(await request(a.socket, 'presence:message', { event: 'chat:message', data: { text: 'hi' } })).toEqual({ ok: true });
    await waitFor(() => lb.messages.length === 1);
    expect(lb.messages[0]).toEqual({ roomId: r, event: 'chat:message', data: { text: 'hi' }, userId: 'ada', connId: a.connId, ts: expect.any(Number) });
    expect((await request(outsider, 'presence:message', { roomId: r, event: 'chat:message', data: 'x' })).error.code).toBe('not_joined');
    expect((await request(a.socket, 'presence:message', { event: 'bad name!', data: 1 })).error.code).toBe('invalid_payload');
    g.runtime.broadcast(r, 'doc:saved', { v: 7 });
    await waitFor(() => la.messages.length === 1 && lb.messages.length === 2);
    expect(la.messages[0]).toEqual({ roomId: r, event: 'doc:saved', data: { v: 7 }, ts: expect.any(Number) });
    expect(lo.messages).toEqual([]);
    expect(la.messages.filter((m) => m.event === 'chat:message')).toEqual([]); // the sender gets an ack, not an echo
  });

  it('authorize hook can deny joins and messages', async () => {
    const g = await gateway({ authorize: ({ roomId, action }) => !(roomId.startsWith('private-') || (action === 'message' && roomId.startsWith('quiet-'))) });
    const s = await connect(g.url);
    expect((await request(s, 'presence:join', { roomId: 'private-1', userId: 'ada' })).error.code).toBe('forbidden');
    expect((await request(s, 'presence:join', { roomId: `quiet-${room()}`, userId: 'ada' })).ok).toBe(true);
    expect((await request(s, 'presence:message', { event: 'chat:message', data: 1 })).error.code).toBe('forbidden');
  });

  it('dispose leaves the caller\u2019s io usable and stops presence handlers', async () => {
    const g = await gateway();
    g.io.on('connection', (socket) => socket.on('app:ping', (ack: (r: string) => void) => ack('pong')));
    const s = await connect(g.url);
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    await g.runtime.dispose();
    expect(await request(s, 'app:ping')).toBe('pong');
    const s2 = await connect(g.url);
    expect(await request(s2, 'app:ping')).toBe('pong');
    // Nobody answers presence events any more (the ack times out).
    await expect((s2.timeout(300) as any).emitWithAck('presence:join', { roomId: room(), userId: 'bob' })).rejects.toThrow(/timed out/);
  });
});
