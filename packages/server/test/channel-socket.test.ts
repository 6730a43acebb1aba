import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { ChannelPublicationSchema, type ChannelPublication } from 'realtime-message-protocol';
import { connect, request, startGateway, waitFor, type Client } from 'realtime-message-testing';

const channel = (ns = 'chat'): string => `${ns}:${randomUUID().slice(0, 8)}`;

/** Collects the publications a socket receives, each checked against the protocol's strict schema. */
function publications(socket: Client): ChannelPublication[] {
  const seen: ChannelPublication[] = [];
  socket.on('channel:publication', (p) => seen.push(ChannelPublicationSchema.parse(p) as ChannelPublication));
  return seen;
}

describe('channels over sockets (SPEC §8), two nodes on one Redis', () => {
  it('every subscriber on every node gets every publication exactly once, in offset order', async () => {
    const keyPrefix = `cs:${randomUUID().slice(0, 8)}:`;
    const opts = { redisUrl: inject('redisUrl'), keyPrefix };
    const [a, b] = [await startGateway(opts), await startGateway(opts)];
    const ch = channel();
    const [sa, sb] = [await connect(a.url), await connect(b.url)];
    const [pa, pb] = [publications(sa), publications(sb)];
    const subA = await request(sa, 'channel:subscribe', { channel: ch });
    expect(subA).toMatchObject({ ok: true, channel: ch, offset: 0, recovered: false, publications: [] });
    const subB = await request(sb, 'channel:subscribe', { channel: ch });
    expect(subB.epoch).toBe(subA.epoch);
    // Both publish concurrently (publish is allowed to subscribers by default).
    const sent = await Promise.all(Array.from({ length: 40 }, (_, i) => request(i % 2 ? sa : sb, 'channel:publish', { channel: ch, data: { i } })));
    expect(sent.every((r) => r.ok)).toBe(true);
    expect(sent.map((r) => r.offset).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // Settle: one more publication; everything before it has arrived once it has.
    const last = await request(sa, 'channel:publish', { channel: ch, data: { marker: true } });
    for (const seen of [pa, pb]) {
      await waitFor(() => seen.find((p) => p.offset === last.offset), { what: 'the marker publication' });
      expect(seen.map((p) => p.offset)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
      expect(seen[0]!.info).toMatchObject({ user: '' }); // open mode, no room joined: anonymous
    }
  });

  it('publishes a socket sends without waiting for acks land in the order sent (they are pipelined, not reordered)', async () => {
    const g = await startGateway({ redisUrl: inject('redisUrl'), rateLimit: false });
    const ch = channel();
    const s = await connect(g.url);
    const seen = publications(s);
    expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => request(s, 'channel:publish', { channel: ch, data: { i } })));
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await waitFor(() => (seen.length === 50 ? true : undefined), { what: 'every publication' });
    expect(seen.map((p) => (p.data as { i: number }).i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('resubscribing from the last position recovers exactly the missed publications; history pages', async () => {
    const g = await startGateway({ redisUrl: inject('redisUrl') });
    const ch = channel();
    const s = await connect(g.url);
    const seen = publications(s);
    const writer = await connect(g.url);
    expect((await request(writer, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    const sub = await request(s, 'channel:subscribe', { channel: ch });
    for (let i = 1; i <= 3; i++) await request(writer, 'channel:publish', { channel: ch, data: { i } });
    await waitFor(() => (seen.length === 3 ? true : undefined), { what: 'three publications' });
    const position = { offset: seen.at(-1)!.offset, epoch: sub.epoch };
    s.disconnect();
    for (let i = 4; i <= 6; i++) await request(writer, 'channel:publish', { channel: ch, data: { i } });
    const again = await connect(g.url);
    const live = publications(again);
    const rec = await request(again, 'channel:subscribe', { channel: ch, since: position });
    expect(rec).toMatchObject({ ok: true, recovered: true, offset: 6, epoch: sub.epoch });
    expect(rec.publications.map((p: { data: { i: number } }) => p.data.i)).toEqual([4, 5, 6]);
    await request(writer, 'channel:publish', { channel: ch, data: { i: 7 } });
    await waitFor(() => live.find((p) => p.offset === 7), { what: 'the next live publication' });
    expect(live.map((p) => p.offset)).toEqual([7]);
    // A position of another epoch: not recovered, and nothing partial.
    const other = await connect(g.url);
    const bad = await request(other, 'channel:subscribe', { channel: ch, since: { offset: 2, epoch: 'otherepo' } });
    expect(bad).toMatchObject({ ok: true, recovered: false, publications: [], offset: 7 });
    // History: newest two, then forward from offset 5.
    const newest = await request(again, 'channel:history', { channel: ch, limit: 2, reverse: true });
    expect(newest.publications.map((p: { offset: number }) => p.offset)).toEqual([7, 6]);
    const fwd = await request(again, 'channel:history', { channel: ch, since: { offset: 5, epoch: sub.epoch }, limit: 10 });
    expect(fwd.publications.map((p: { offset: number }) => p.offset)).toEqual([6, 7]);
  });

  it('refuses bad input with stable codes and never stores a refused publication', async () => {
    const g = await startGateway({ maxChannelsPerSocket: 2 });
    const s = await connect(g.url);
    const ch = channel();
    for (const payload of [undefined, 'x', { channel: '' }, { channel: 'a{b}' }, { channel: ch, since: { offset: -1, epoch: 'x' } }, { channel: ch, since: { offset: 1.5, epoch: 'x' } }]) {
      const res = await request(s, 'channel:subscribe', payload);
      expect(res.error?.code, JSON.stringify(payload)).toBe('invalid_payload');
    }
    // Publish before subscribing: the default namespace lets subscribers publish, not others.
    expect((await request(s, 'channel:publish', { channel: ch, data: { x: 1 } })).error.code).toBe('forbidden');
    expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    expect((await request(s, 'channel:subscribe', { channel: ch })).error.code).toBe('already_subscribed');
    expect((await request(s, 'channel:publish', { channel: ch, data: 'x'.repeat(70_000) })).error.code).toBe('payload_too_large');
    expect((await request(s, 'channel:publish', { channel: ch })).error.code).toBe('invalid_payload');
    expect((await request(s, 'channel:history', { channel: ch, limit: 1_000 })).error.code).toBe('invalid_payload');
    const hist = await request(s, 'channel:history', { channel: ch, limit: -1 });
    expect(hist).toMatchObject({ ok: true, offset: 0, publications: [] });
    expect((await request(s, 'channel:subscribe', { channel: channel() })).ok).toBe(true);
    expect((await request(s, 'channel:subscribe', { channel: channel() })).error.code).toBe('forbidden');
    expect(await request(s, 'channel:unsubscribe', { channel: ch })).toEqual({ ok: true });
    expect((await request(s, 'channel:subscribe', { channel: channel() })).ok).toBe(true);
  });

  it("a channel's presence is the room of the same name", async () => {
    const g = await startGateway();
    const ch = channel();
    const s = await connect(g.url);
    expect((await request(s, 'presence:join', { roomId: ch, userId: 'ada' })).ok).toBe(true);
    const stats = await g.runtime.channels!.presenceStats(ch);
    expect(stats).toEqual({ numClients: 1, numUsers: 1 });
    // The socket joined as ada: its publications carry her as the publisher.
    const seen = publications(s);
    expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    await g.runtime.channels!.publish(ch, { from: 'app' });
    expect((await request(s, 'channel:publish', { channel: ch, data: { from: 'ada' } })).ok).toBe(true);
    await waitFor(() => (seen.length === 2 ? true : undefined), { what: 'two publications' });
    expect(seen.map((p) => p.info?.user ?? null)).toEqual([null, 'ada']);
  });

  it('answers forbidden when channels are turned off', async () => {
    const g = await startGateway({ channels: false });
    const s = await connect(g.url);
    expect((await request(s, 'channel:subscribe', { channel: 'chat:1' })).error.code).toBe('forbidden');
    expect(g.runtime.channels).toBeUndefined();
  });
});
