import { describe, expect, it } from 'vitest';
import { waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, channelsConfig, raw, token, type RawSocket } from './centrifugo-fixtures.js';

const now = (): number => Math.floor(Date.now() / 1_000);

/** Every reply and push received so far, parsed. */
const messages = (s: RawSocket): Array<Record<string, any>> => s.frames.flatMap((f) => f.split('\n')).map((l) => JSON.parse(l) as Record<string, any>);
const reply = (s: RawSocket, id: number): Promise<Record<string, any>> => waitFor(() => messages(s).find((m) => m['id'] === id), { what: `reply ${id}` });
const pushes = (s: RawSocket, kind: string, ch?: string): Array<Record<string, any>> => messages(s).filter((m) => m['push']?.[kind] !== undefined && (ch === undefined || m['push'].channel === ch)).map((m) => m['push']);

let nextId = 100;
/** Sends one command and waits for its reply. */
async function call(s: RawSocket, method: string, body: object): Promise<Record<string, any>> {
  const id = nextId++;
  s.send(JSON.stringify({ id, [method]: body }));
  return reply(s, id);
}

/** A raw connection, connected with a token of `sub` (or anonymously without one). */
async function connected(ws: string, claims?: Record<string, unknown>): Promise<{ s: RawSocket; client: string }> {
  const s = await raw(ws);
  s.send(JSON.stringify({ id: 1, connect: claims ? { token: await token(claims) } : {} }));
  const r = await reply(s, 1);
  expect(r['connect']).toBeDefined();
  return { s, client: r['connect'].client as string };
}

const HISTORY = { history_size: 10, history_ttl: '60s' };
const CONFIG = {
  channel: {
    namespaces: [
      // Positioning and recovery by request, allowed by the namespace (no history permission).
      { name: 'pos', ...HISTORY, allow_positioning: true, allow_recovery: true, allow_subscribe_for_client: true, allow_publish_for_subscriber: true },
      // Allowed by the subscriber's history permission.
      { name: 'hist', ...HISTORY, allow_subscribe_for_client: true, allow_publish_for_subscriber: true, allow_history_for_subscriber: true },
      // Neither.
      { name: 'plain', ...HISTORY, allow_subscribe_for_client: true, allow_publish_for_subscriber: true, allow_presence_for_subscriber: true },
    ],
  },
};

async function server(env: Record<string, string> = {}) {
  return centrifugoServer({ CHANNELS_CONFIG: channelsConfig(CONFIG), ...env }, { auth: true });
}

describe('Centrifugo subscribe: positioned and recoverable requests', () => {
  it('honoured with allow_positioning / allow_recovery or the history permission, ignored otherwise', async () => {
    const { ws } = await server();
    const { s } = await connected(ws, { sub: 'ada' });
    const position = { epoch: expect.any(String), offset: 0 };
    for (const ns of ['pos', 'hist']) {
      expect((await call(s, 'subscribe', { channel: channel(ns), positioned: true }))['subscribe']).toEqual({ positioned: true, ...position });
      expect((await call(s, 'subscribe', { channel: channel(ns), recoverable: true }))['subscribe']).toEqual({ recoverable: true, positioned: true, ...position });
    }
    expect((await call(s, 'subscribe', { channel: channel('plain'), positioned: true, recoverable: true }))['subscribe']).toEqual({});
  });

  it('recover without offset or epoch recovers from the start; a wrong epoch is not recovered, or 112 with flag 2', async () => {
    const { ws } = await server();
    const { s } = await connected(ws, { sub: 'ada' });
    const ch = channel('hist');
    const first = (await call(s, 'subscribe', { channel: ch, recoverable: true }))['subscribe'];
    for (const n of [1, 2, 3]) expect((await call(s, 'publish', { channel: ch, data: { n } }))['publish']).toEqual({});
    const { s: t } = await connected(ws, { sub: 'bob' });
    const rec = (await call(t, 'subscribe', { channel: ch, recoverable: true, recover: true }))['subscribe'];
    expect(rec).toMatchObject({ recoverable: true, positioned: true, epoch: first.epoch, offset: 0, recovered: true, was_recovering: true });
    expect(rec.publications.map((p: { data: unknown; offset: number }) => [p.data, p.offset])).toEqual([
      [{ n: 1 }, 1],
      [{ n: 2 }, 2],
      [{ n: 3 }, 3],
    ]);
    const { s: u } = await connected(ws, { sub: 'carol' });
    const lost = (await call(u, 'subscribe', { channel: ch, recoverable: true, recover: true, offset: 1, epoch: 'another-epoch', flag: 1 }))['subscribe'];
    expect(lost).toEqual({ recoverable: true, positioned: true, epoch: first.epoch, offset: 3, was_recovering: true });
    const { s: v } = await connected(ws, { sub: 'dan' });
    expect((await call(v, 'subscribe', { channel: ch, recoverable: true, recover: true, offset: 1, epoch: 'another-epoch', flag: 3 }))['error']).toEqual({ code: 112, message: 'unrecoverable position' });
    // Not subscribed after 112: a new subscribe is not 105.
    expect((await call(v, 'subscribe', { channel: ch }))['subscribe']).toEqual({});
  });
});

describe('Centrifugo frames', () => {
  it('one trailing newline is allowed; a request body that is not an object, or recover with a wrong epoch and no flag', async () => {
    const { ws } = await server();
    const s = await raw(ws);
    s.ws.send(`${JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada' }) } })}\n`);
    expect((await reply(s, 1))['connect']).toBeDefined();
    const ch = channel('hist');
    expect((await call(s, 'subscribe', { channel: ch, recoverable: true, recover: true, epoch: 'not-this-one' }))['subscribe']).toEqual({ recoverable: true, positioned: true, epoch: expect.any(String), offset: 0, was_recovering: true });
    s.send('{"id":9,"subscribe":5}');
    expect(await s.closed).toEqual({ code: 3501, reason: 'bad request' });
    // Two trailing newlines are an empty line.
    const t = await raw(ws);
    t.ws.send('{"id":1,"connect":{}}\n\n');
    expect(await t.closed).toEqual({ code: 3501, reason: 'bad request' });
  });
});

describe('Centrifugo subscription tokens', () => {
  it('expired: 109; forged or without a channel: 103 with why; expire_at passed: 110; for another channel or connection: 3500', async () => {
    const { ws } = await server();
    const { s, client } = await connected(ws, { sub: 'ada' });
    const ch = `$${channel('plain')}`;
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch, exp: now() - 5 }) }))['error']).toEqual({ code: 109, message: 'token expired' });
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch }, { secret: 'x'.repeat(40) }) }))['error']).toEqual({ code: 103, message: 'token signature invalid' });
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada' }) }))['error']).toMatchObject({ code: 103, message: expect.stringMatching(/^subscription token claim invalid \(channel: /) });
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch, expire_at: now() - 1 }) }))['error']).toEqual({ code: 110, message: 'expired' });
    // A client claim of this connection is accepted.
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch, client, data: { ok: 1 } }) }))['subscribe']).toMatchObject({ expires: true, data: { ok: 1 } });
    const other = `$${channel('plain')}`;
    s.send(JSON.stringify({ id: 2, subscribe: { channel: other, token: await token({ sub: 'ada', channel: other, client: 'another-connection' }) } }));
    expect(await s.closed).toEqual({ code: 3500, reason: 'invalid token' });
    const { s: t } = await connected(ws, { sub: 'ada' });
    t.send(JSON.stringify({ id: 2, subscribe: { channel: other, token: await token({ sub: 'ada', channel: `${other}x` }) } }));
    expect(await t.closed).toEqual({ code: 3500, reason: 'invalid token' });
  });

  it('a server without token keys refuses subscription tokens with 103 (and private channels without one)', async () => {
    const { ws } = await centrifugoServer({ CHANNELS_CONFIG: channelsConfig(CONFIG) });
    const { s } = await connected(ws);
    const ch = `$${channel('plain')}`;
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: '', channel: ch }) }))['error']).toEqual({ code: 103, message: 'the server has no token keys to verify subscription tokens' });
    expect((await call(s, 'subscribe', { channel: ch }))['error']).toMatchObject({ code: 103 });
  });

  it('override: force_positioning, force_recovery, presence, join_leave and force_push_join_leave of the token win over the namespace', async () => {
    const { ws } = await server();
    const { s } = await connected(ws, { sub: 'ada', info: { name: 'Ada' } });
    const a = channel('plain');
    expect((await call(s, 'subscribe', { channel: a, token: await token({ sub: 'ada', channel: a, expire_at: 0, override: { force_positioning: { value: true } } }) }))['subscribe']).toEqual({ positioned: true, epoch: expect.any(String), offset: 0 });
    const b = channel('plain');
    expect((await call(s, 'subscribe', { channel: b, token: await token({ sub: 'ada', channel: b, expire_at: 0, override: { force_recovery: { value: true } } }) }))['subscribe']).toEqual({ recoverable: true, positioned: true, epoch: expect.any(String), offset: 0 });
    // Presence and join/leave pushes although the namespace has neither.
    const c = channel('plain');
    const override = { presence: { value: true }, join_leave: { value: true }, force_push_join_leave: { value: true } };
    expect((await call(s, 'subscribe', { channel: c, token: await token({ sub: 'ada', channel: c, expire_at: 0, override }) }))['subscribe']).toEqual({});
    // Presence commands follow the namespace's presence option, as in Centrifugo.
    expect((await call(s, 'presence_stats', { channel: c }))['error']).toMatchObject({ code: 108 });
    const { s: bob } = await connected(ws, { sub: 'bob', info: { name: 'Bob' } });
    await call(bob, 'subscribe', { channel: c, token: await token({ sub: 'bob', channel: c, expire_at: 0, override }) });
    await waitFor(() => pushes(s, 'join', c).find((p) => p.join.info.user === 'bob'), { what: "bob's join" });
    expect(pushes(s, 'join', c).find((p) => p.join.info.user === 'bob')!.join.info).toEqual({ user: 'bob', client: expect.any(String), conn_info: { name: 'Bob' } });
    await call(bob, 'unsubscribe', { channel: c });
    await waitFor(() => pushes(s, 'leave', c).find((p) => p.leave.info.user === 'bob'), { what: "bob's leave" });
    // Without the override ada gets no join/leave pushes, even when bob's presence is on.
    const d = channel('plain');
    await call(s, 'subscribe', { channel: d, join_leave: true });
    await call(bob, 'subscribe', { channel: d, token: await token({ sub: 'bob', channel: d, expire_at: 0, override }) });
    await waitFor(() => pushes(bob, 'join', d)[0], { what: "bob's own join" });
    expect(pushes(s, 'join', d)).toEqual([]);
  });
});

describe('Centrifugo sub_refresh and subscription expiry', () => {
  it('sub_refresh: empty channel 3501; not subscribed 103; a token without expiry ends the ttl; new info shows in publications', async () => {
    const { ws } = await server();
    const { s } = await connected(ws, { sub: 'ada' });
    const ch = `$${channel('plain')}`;
    expect((await call(s, 'sub_refresh', { channel: ch, token: await token({ sub: 'ada', channel: ch }) }))['error']).toEqual({ code: 103, message: `not subscribed to '${ch}'` });
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch, info: { v: 1 } }, { ttlSec: 60 }) }))['subscribe']).toMatchObject({ expires: true, ttl: expect.any(Number) });
    expect((await call(s, 'sub_refresh', { channel: ch, token: await token({ sub: 'ada', channel: ch, info: { v: 2 } }, { ttlSec: 120 }) }))['sub_refresh']).toEqual({ expires: true, ttl: expect.toSatisfy((t: number) => t > 60 && t <= 120) });
    expect((await call(s, 'sub_refresh', { channel: ch, token: await token({ sub: 'ada', channel: ch, expire_at: 0 }) }))['sub_refresh']).toEqual({});
    await call(s, 'publish', { channel: ch, data: 'x' });
    await waitFor(() => pushes(s, 'pub', ch)[0], { what: 'the publication' });
    expect(pushes(s, 'pub', ch)[0]!.pub.info).toMatchObject({ user: 'ada', chan_info: { v: 2 } });
    s.send(JSON.stringify({ id: 3, sub_refresh: { channel: '', token: 'x' } }));
    expect(await s.closed).toEqual({ code: 3501, reason: 'bad request' });
    const { s: t } = await connected(ws, { sub: 'ada' });
    t.send(JSON.stringify({ id: 3, unsubscribe: { channel: '' } }));
    expect(await t.closed).toEqual({ code: 3501, reason: 'bad request' });
  });

  it('sub_refresh with an expired token: unsubscribe push 2501 and error 110; the client may subscribe again', async () => {
    const { ws } = await server();
    const { s } = await connected(ws, { sub: 'ada' });
    const ch = `$${channel('plain')}`;
    await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch }) });
    expect((await call(s, 'sub_refresh', { channel: ch, token: await token({ sub: 'ada', channel: ch, exp: now() - 5 }) }))['error']).toEqual({ code: 110, message: 'expired' });
    expect(pushes(s, 'unsubscribe', ch)).toEqual([{ channel: ch, unsubscribe: { code: 2501, reason: 'subscription expired' } }]);
    // A forged token is refused (103) and the subscription stays.
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch }) }))['subscribe']).toMatchObject({ expires: true });
    expect((await call(s, 'sub_refresh', { channel: ch, token: await token({ sub: 'ada', channel: ch }, { secret: 'y'.repeat(40) }) }))['error']).toEqual({ code: 103, message: 'token signature invalid' });
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch }) }))['error']).toMatchObject({ code: 105 });
  });

  it('a subscription not refreshed in time is unsubscribed with 2501 and gets no more publications; a server-side one closes with 3006', async () => {
    const { ws } = await server({ CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY: '100ms' });
    const { s } = await connected(ws, { sub: 'ada' });
    const ch = `$${channel('plain')}`;
    const at = now() + 1;
    expect((await call(s, 'subscribe', { channel: ch, token: await token({ sub: 'ada', channel: ch, expire_at: at }) }))['subscribe']).toMatchObject({ expires: true, ttl: expect.any(Number) });
    await waitFor(() => pushes(s, 'unsubscribe', ch)[0], { what: 'the unsubscribe push', timeoutMs: 4_000 });
    expect(pushes(s, 'unsubscribe', ch)).toEqual([{ channel: ch, unsubscribe: { code: 2501, reason: 'subscription expired' } }]);
    expect(Date.now()).toBeGreaterThanOrEqual(at * 1_000 + 100);
    // Gone: publish needs a subscription in 'plain' (allow_publish_for_subscriber).
    expect((await call(s, 'publish', { channel: ch, data: 1 }))['error']).toMatchObject({ code: 103 });

    const server2 = channel('plain');
    const t = await raw(ws);
    t.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'bob', subs: { [server2]: { expire_at: now() + 1 } } }) } }));
    expect((await reply(t, 1))['connect'].subs).toEqual({ [server2]: {} });
    expect(await t.closed).toEqual({ code: 3006, reason: 'subscription expired' });
  });
});
