import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { PublicationContext, SubscribedContext } from 'centrifuge';
import { ChannelPublicationSchema, type ChannelPublication } from 'realtime-message-protocol';
import { connect, request, waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, channelsConfig, client, dropConnection, publications, token, waitLength } from './centrifugo-fixtures.js';
import { callbackService, v5Config } from './centrifugo-proxy-fixtures.js';

/**
 * Publications without history (Centrifugo's `skip_history`), end to end:
 * from the server API and from the publish proxy's answer, to Socket.IO and
 * centrifuge-js subscribers, on memory and Redis. They are delivered in
 * order with the others, have no offset (0 on Socket.IO, none on the
 * Centrifugo wire), are not in history, and move no position, so recovery
 * neither counts them as a gap nor repeats them.
 */

const KEY = 'skip-history-test-key-0123456789';

async function api(url: string, method: string, body: unknown): Promise<any> {
  const res = await fetch(`${url}/api/${method}`, { method: 'POST', headers: { 'x-api-key': KEY }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json();
}

const engines = [
  ['memory', (): Record<string, string> => ({})],
  ['redis', (): Record<string, string> => ({ REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `skh:${randomUUID().slice(0, 8)}:` })],
] as const;

describe.each(engines)('skip_history (%s)', (_name, env) => {
  it('server API publish and broadcast: delivered in order to Socket.IO and centrifuge-js subscribers, not kept, no offset; recovery goes on', async () => {
    const { url, ws, server } = await centrifugoServer({ API_KEY: KEY, ...env() });
    const ch = channel();
    const other = channel();
    const sock = await connect(url);
    const io: ChannelPublication[] = [];
    sock.on('channel:publication', (p) => io.push(ChannelPublicationSchema.parse(p) as ChannelPublication));
    expect(await request(sock, 'channel:subscribe', { channel: ch })).toMatchObject({ ok: true, offset: 0 });
    const reader = client(ws);
    const sub = reader.newSubscription(ch, { recoverable: true });
    const subscribed: SubscribedContext[] = [];
    sub.on('subscribed', (e) => subscribed.push(e));
    const cf = publications(sub);
    reader.connect();
    sub.subscribe();
    await sub.ready(3_000);

    const first = await api(url, 'publish', { channel: ch, data: { n: 1 } });
    expect(first).toEqual({ result: { offset: 1, epoch: expect.any(String) } });
    // Kept nowhere: the answer has no offset and no epoch, as Centrifugo's.
    expect(await api(url, 'publish', { channel: ch, data: { typing: 'ada' }, skip_history: true })).toEqual({ result: {} });
    expect(await api(url, 'broadcast', { channels: [ch, other], data: { typing: 'bob' }, skip_history: true })).toEqual({ result: { responses: [{ result: {} }, { result: {} }] } });
    expect(await api(url, 'publish', { channel: ch, data: { n: 2 }, skip_history: false })).toEqual({ result: { offset: 2, epoch: first.result.epoch } });
    expect(await api(url, 'publish', { channel: ch, data: 1, skip_history: 'yes' })).toMatchObject({ error: { code: 107, message: expect.stringMatching(/skip_history/) } });

    await waitLength(io, 4, 'four on Socket.IO');
    await waitLength(cf, 4, 'four on centrifuge-js');
    const epoch = first.result.epoch;
    expect(io.map((p) => [p.offset, p.data])).toEqual([[1, { n: 1 }], [0, { typing: 'ada' }], [0, { typing: 'bob' }], [2, { n: 2 }]]);
    expect(io.every((p) => p.epoch === epoch)).toBe(true);
    expect(cf.map((p) => [p.offset, p.data])).toEqual([[1, { n: 1 }], [undefined, { typing: 'ada' }], [undefined, { typing: 'bob' }], [2, { n: 2 }]]);
    expect((await api(url, 'history', { channel: ch, limit: -1 })).result).toEqual({ publications: [{ data: { n: 1 }, offset: 1 }, { data: { n: 2 }, offset: 2 }], offset: 2, epoch });
    expect((await api(url, 'history', { channel: other, limit: -1 })).result).toMatchObject({ publications: [], offset: 0 });

    // The centrifuge-js subscriber's position is 2 (the transient ones did not move it): it recovers exactly what it missed.
    const reconnecting = new Promise((resolve) => reader.once('connecting', resolve));
    dropConnection(server, (reader as unknown as { _client: string })._client);
    await reconnecting;
    await api(url, 'publish', { channel: ch, data: { n: 3 } });
    await waitFor(() => (subscribed.length === 2 ? true : undefined), { what: 'the resubscribe' });
    expect(subscribed[1]).toMatchObject({ wasRecovering: true, recovered: true, streamPosition: { offset: 2, epoch } });
    await api(url, 'publish', { channel: ch, data: { typing: 'eve' }, skip_history: true });
    await api(url, 'publish', { channel: ch, data: { n: 4 } });
    await waitLength(cf, 7, 'seven on centrifuge-js');
    expect(cf.slice(4).map((p) => [p.offset, p.data])).toEqual([[3, { n: 3 }], [undefined, { typing: 'eve' }], [4, { n: 4 }]]);
    await waitLength(io, 7, 'seven on Socket.IO');
    expect(io.map((p) => p.offset)).toEqual([1, 0, 0, 2, 3, 0, 4]);
    // Socket.IO: a resubscribe from the position after the transient ones recovers with nothing missing.
    expect(await request(sock, 'channel:unsubscribe', { channel: ch })).toEqual({ ok: true });
    expect(await request(sock, 'channel:subscribe', { channel: ch, since: { offset: 2, epoch } })).toMatchObject({ ok: true, recovered: true, offset: 4, publications: [{ offset: 3 }, { offset: 4 }] });
  });

  it('the publish proxy answers skip_history: publications of Centrifugo and Socket.IO clients are delivered, not kept', async () => {
    const service = await callbackService();
    service.set('publish', (body) => ({ result: { skip_history: body.data?.typing === true, data: { ...body.data, by: body.user } } }));
    const namespaces = [{ name: 'room', proxy_publish: true, allow_subscribe_for_client: true, history_size: 10, history_ttl: '60s', allow_history_for_subscriber: true }];
    const { ws, url } = await centrifugoServer({ ...env(), CENTRIFUGO_CONFIG: channelsConfig(v5Config(service, { namespaces })) });
    const ch = channel('room');
    const c = client(ws, { token: await token({ sub: 'ada' }) });
    const sub = c.newSubscription(ch);
    const seen: PublicationContext[] = publications(sub);
    c.connect();
    sub.subscribe();
    await sub.ready(3_000);
    const sock = await connect(url, { auth: { token: await token({ sub: 'bob' }) } });
    expect(await request(sock, 'channel:subscribe', { channel: ch })).toMatchObject({ ok: true });

    await sub.publish({ text: 'hi' });
    await sub.publish({ typing: true });
    // A Socket.IO publisher's ack says where the publication landed: nowhere (offset 0).
    expect(await request(sock, 'channel:publish', { channel: ch, data: { typing: true } })).toEqual({ ok: true, offset: 0, epoch: expect.any(String) });
    expect(await request(sock, 'channel:publish', { channel: ch, data: { text: 'yo' } })).toMatchObject({ ok: true, offset: 2 });
    await waitLength(seen, 4);
    expect(seen.map((p) => [p.offset, p.data, p.info?.user])).toEqual([
      [1, { text: 'hi', by: 'ada' }, 'ada'],
      [undefined, { typing: true, by: 'ada' }, 'ada'],
      [undefined, { typing: true, by: 'bob' }, 'bob'],
      [2, { text: 'yo', by: 'bob' }, 'bob'],
    ]);
    const h = await sub.history({ limit: 10 });
    expect(h.publications.map((p) => p.data)).toEqual([{ text: 'hi', by: 'ada' }, { text: 'yo', by: 'bob' }]);
    expect(h.offset).toBe(2);
    expect(service.of('publish')).toHaveLength(4);
  });
});
