import { describe, expect, inject, it } from 'vitest';
import type { PresenceEvent, RoomSnapshot } from 'realtime-message-protocol';
import { connect, listen, request, room, settle, startGateway, waitFor, type Client } from 'realtime-message-testing';

/**
 * A socket is not sent its own join, nor its own leave when it asked to
 * leave (the acks say them; docs/protocol.md), as Socket.IO's
 * `socket.to(room)` leaves out the sender; the others get both, and a leave
 * it did not ask for (expiry) still reaches it. Around it, the guarantees a
 * change of what a socket is sent must keep: every event above a join's
 * snapshot exactly once and in order, under concurrent joins and rejoins.
 */

type EngineCase = [name: string, redisUrl: () => string | undefined];
const engines: EngineCase[] = [
  ['memory', () => undefined],
  ['redis', () => inject('redisUrl')],
];

interface JoinAck {
  ok: true;
  self: { connId: string; epoch: number };
  snapshot: RoomSnapshot;
}

describe.each(engines)('own presence events (%s engine)', (_name, redisUrl) => {
  const gateway = (opts: Parameters<typeof startGateway>[0] = {}) => startGateway({ redisUrl: redisUrl(), ...opts });

  it('a joiner is not sent its own join, a leaver not its own leave; the others get both', async () => {
    const g = await gateway();
    const r = room();
    const a = await connect(g.url);
    const la = listen(a);
    const ackA = await request<JoinAck>(a, 'presence:join', { roomId: r, userId: 'ada' });
    const b = await connect(g.url);
    const lb = listen(b);
    const ackB = await request<JoinAck>(b, 'presence:join', { roomId: r, userId: 'bob' });
    expect(ackB.snapshot.seq).toBe(ackA.snapshot.seq + 1);
    expect(await request(b, 'presence:leave', { roomId: r })).toEqual({ ok: true });
    const [ea] = await settle(g.url, r, la);
    // Ada: bob's join and bob's leave, once each, and not her own join.
    expect(ea!.map((e) => `${e.type} ${e.userId} ${e.seq}`)).toEqual([`join bob ${ackB.snapshot.seq}`, `leave bob ${ackB.snapshot.seq + 1}`]);
    // Bob left before the marker came: once a request of his is answered, anything sent to him before has arrived.
    expect(await request(b, 'presence:leave', { roomId: r })).toEqual(expect.objectContaining({ ok: false }));
    // Neither his own join (on Redis it may reach the node before or after the join's answer) nor his own leave.
    expect(lb.events).toEqual([]);
  });

  it('concurrent joins: each socket gets every event above its snapshot exactly once, in seq order, and never its own join', async () => {
    const g = await gateway();
    const r = room();
    const n = 12;
    const sockets: Client[] = await Promise.all(Array.from({ length: n }, () => connect(g.url)));
    const logs = sockets.map((s) => listen(s));
    const acks = await Promise.all(sockets.map((s, i) => request<JoinAck>(s, 'presence:join', { roomId: r, userId: `u${i}` })));
    // A state change by each, then a settle marker: every event of the room before it has arrived everywhere.
    await Promise.all(sockets.map((s, i) => request(s, 'presence:heartbeat', { roomId: r, patchState: { n: i } })));
    const seen = await settle(g.url, r, ...logs);
    const last = n + n; // n joins, n updates
    for (const [i, events] of seen.entries()) {
      const from = acks[i]!.snapshot.seq;
      const seqs = (events as PresenceEvent[]).map((e) => e.seq);
      expect((events as PresenceEvent[]).filter((e) => e.type === 'join' && e.connId === acks[i]!.self.connId), `socket ${i}: its own join`).toEqual([]);
      expect(seqs.filter((s) => s > from), `socket ${i}`).toEqual(Array.from({ length: last - from }, (_, k) => from + 1 + k));
    }
  });

  it('a leave the socket did not ask for (its connection expired) still reaches it', async () => {
    const g = await gateway({ ttlMs: 600, reaperIntervalMs: 100 });
    const r = room();
    const a = await connect(g.url);
    const la = listen(a);
    const ack = await request<JoinAck>(a, 'presence:join', { roomId: r, userId: 'ada' });
    const leave = await la.waitFor((e) => e.type === 'leave' && e.connId === ack.self.connId, 'her own leave (timeout)');
    expect(leave).toEqual(expect.objectContaining({ reason: 'timeout', userId: 'ada' }));
  });

  it('a failed rejoin keeps sending the room to the socket', async () => {
    const g = await gateway();
    const r = room();
    const a = await connect(g.url);
    const la = listen(a);
    await request<JoinAck>(a, 'presence:join', { roomId: r, userId: 'ada' });
    // A rejoin as another user is refused before the join; one with a bad state is refused by the service.
    expect((await request(a, 'presence:join', { roomId: r, userId: 'ada', state: { big: 'x'.repeat(100_000) } })).ok).toBe(false);
    const b = await connect(g.url);
    await request<JoinAck>(b, 'presence:join', { roomId: r, userId: 'bob' });
    await waitFor(() => la.events.find((e) => e.type === 'join' && e.userId === 'bob'), { what: "bob's join at ada" });
  });
});

describe.each(engines)('own presence events across rejoins (%s engine)', (_name, redisUrl) => {
  it('rejoins of a room while the others change: every event above the last snapshot arrives, once, in order', async () => {
    const g = await startGateway({ redisUrl: redisUrl() });
    const r = room();
    const a = await connect(g.url);
    const la = listen(a);
    await request<JoinAck>(a, 'presence:join', { roomId: r, userId: 'ada' });
    const others = await Promise.all(['bob', 'cyd'].map(async (userId) => {
      const s = await connect(g.url);
      await request<JoinAck>(s, 'presence:join', { roomId: r, userId });
      return s;
    }));
    for (let round = 0; round < 5; round++) {
      la.events.length = 0;
      const order: JoinAck[] = [];
      const rejoin = () => request<JoinAck>(a, 'presence:join', { roomId: r, userId: 'ada' }).then((ack) => void order.push(ack));
      const changes = others.flatMap((s, i) => Array.from({ length: 4 }, (_, k) => request(s, 'presence:heartbeat', { roomId: r, patchState: { k, i, round } })));
      await Promise.all([rejoin(), rejoin(), ...changes]);
      const [events] = await settle(g.url, r, la);
      // The client keeps the snapshot of the ack it got last, and every event above it.
      const last = order[order.length - 1]!;
      expect(last.ok).toBe(true);
      const from = last.snapshot.seq;
      const to = (await g.runtime.service.snapshot(r)).seq - 1; // the settle marker's join is the last event
      expect(events!.map((e) => e.seq).filter((s) => s > from), `round ${round}`).toEqual(Array.from({ length: to - from }, (_, k) => from + 1 + k));
    }
  });
});
