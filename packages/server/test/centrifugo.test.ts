import { describe, expect, it } from 'vitest';
import { waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, client, publications, raw, waitLength } from './centrifugo-fixtures.js';

describe('Centrifugo endpoint: framing, connect, subscribe, publish (centrifuge-js)', () => {
  it('the official client connects, subscribes, publishes and receives its publications in order', async () => {
    const { ws } = await centrifugoServer();
    const a = client(ws);
    const b = client(ws);
    const connected = new Promise<{ client: string }>((resolve) => a.once('connected', resolve));
    a.connect();
    b.connect();
    const ctx = await connected;
    expect(ctx.client).toMatch(/^[0-9a-f-]{36}$/);
    const ch = channel();
    const subA = a.newSubscription(ch);
    const subB = b.newSubscription(ch);
    const seen = publications(subB);
    subA.subscribe();
    subB.subscribe();
    await Promise.all([subA.ready(3_000), subB.ready(3_000)]);
    for (let i = 1; i <= 5; i++) await subA.publish({ i });
    await waitLength(seen, 5);
    expect(seen.map((p) => p.data)).toEqual([1, 2, 3, 4, 5].map((i) => ({ i })));
    expect(seen.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5]);
    // The publisher's ClientInfo: anonymous (no token, open mode) with its connection id.
    expect(seen[0]!.info).toMatchObject({ user: '', client: ctx.client });
  });

  it('answers a frame of connect and subscribes in order, with replies and pushes as newline-delimited JSON', async () => {
    const { ws } = await centrifugoServer();
    const s = await raw(ws);
    const ch = channel();
    s.send(JSON.stringify({ connect: { name: 'js' }, id: 1 }), JSON.stringify({ subscribe: { channel: ch, flag: 1, recoverable: true }, id: 2 }));
    await waitFor(() => s.frames.join('\n').split('\n').length >= 2 || undefined, { what: 'two replies' });
    const replies = s.frames.join('\n').split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(replies[0]).toMatchObject({ id: 1, connect: { version: expect.any(String), ping: 25, pong: true } });
    expect(replies[1]).toEqual({ id: 2, subscribe: { recoverable: true, positioned: true, epoch: expect.any(String), offset: 0 } });
    // A publish is answered with an empty result; the publication is pushed to the subscriber.
    s.send(JSON.stringify({ id: 3, publish: { channel: ch, data: { text: 'hi' } } }));
    await waitFor(() => (s.frames.join('\n').includes('"pub"') ? true : undefined), { what: 'the pub push' });
    const rest = s.frames.join('\n').split('\n').slice(2).map((l) => JSON.parse(l) as Record<string, any>);
    expect(rest).toContainEqual({ id: 3, publish: {} });
    const pub = rest.find((r) => r['push'])!;
    expect(pub).toEqual({ push: { channel: ch, pub: { data: { text: 'hi' }, info: { user: '', client: replies[0]!['connect'].client }, offset: 1 } } });
  });
});
