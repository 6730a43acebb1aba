import { describe, expect, it } from 'vitest';
import type { DisconnectedContext, PublicationContext, ServerSubscribedContext, UnsubscribedContext } from 'centrifuge';
import { SignJWT } from 'jose';
import { testKeyPair, waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, client, publications, raw, token, waitLength } from './centrifugo-fixtures.js';

const disconnected = (c: ReturnType<typeof client>): Promise<DisconnectedContext> => new Promise((resolve) => c.once('disconnected', resolve));
const now = (): number => Math.floor(Date.now() / 1_000);

describe('Centrifugo JWTs (centrifuge-js)', () => {
  it('connects with a token as its user; without one, or with a forged one, it is refused with a terminal code', async () => {
    const { ws } = await centrifugoServer({}, { auth: true });
    const ok = client(ws, { token: await token({ sub: 'ada', info: { name: 'Ada' } }) });
    ok.connect();
    await ok.ready(3_000);
    const ch = channel();
    const sub = ok.newSubscription(ch);
    const seen = publications(sub);
    sub.subscribe();
    await sub.ready(3_000);
    await sub.publish('hi');
    await waitLength(seen, 1);
    expect(seen[0]!.info).toMatchObject({ user: 'ada', connInfo: { name: 'Ada' } });

    const none = client(ws);
    const noneGone = disconnected(none);
    none.connect();
    expect(await noneGone).toMatchObject({ code: 3501 });
    const forged = client(ws, { token: await token({ sub: 'ada' }, { secret: 'another-secret-of-at-least-32-bytes!!' }) });
    const forgedGone = disconnected(forged);
    forged.connect();
    expect(await forgedGone).toMatchObject({ code: 3500, reason: 'invalid token' });
    // A connection token must not carry a channel claim.
    const wrongKind = client(ws, { token: await token({ sub: 'ada', channel: 'chat:1' }) });
    const wrongGone = disconnected(wrongKind);
    wrongKind.connect();
    expect(await wrongGone).toMatchObject({ code: 3500 });
  });

  it('an expired token gets 109 and the client connects again with the token getToken gives; expiring connections refresh', async () => {
    // The client refreshes `ttl` (whole seconds) after connect, so up to a second after exp: the close delay covers that (Centrifugo: 25 s).
    const { ws } = await centrifugoServer({ CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY: '1500ms' }, { auth: true });
    let calls = 0;
    const c = client(ws, {
      token: await token({ sub: 'ada', exp: now() - 10 }),
      getToken: async () => {
        calls++;
        return token({ sub: 'ada' }, { ttlSec: 2 });
      },
    });
    const gone: DisconnectedContext[] = [];
    c.on('disconnected', (d) => gone.push(d));
    c.connect();
    await c.ready(3_000);
    expect(calls).toBe(1);
    const reconnects: unknown[] = [];
    c.on('connecting', (e) => reconnects.push(e));
    // The new token lives 2 s: the client refreshes it (refresh command) and stays connected past its expiry.
    await waitFor(() => (calls >= 2 ? true : undefined), { timeoutMs: 5_000, what: 'a refresh' });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(c.state).toBe('connected');
    expect(gone).toEqual([]);
    expect(reconnects).toEqual([]); // refreshed in place, never reconnected
  });

  it('a connection whose token expires without a refresh is closed with 3005; a refresh for another user with 3500', async () => {
    const { ws } = await centrifugoServer({ CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY: '200ms' }, { auth: true });
    const s = await raw(ws);
    s.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada' }, { ttlSec: 1 }) } }));
    const reply = JSON.parse(await s.next(0)) as { connect: { expires: boolean; ttl: number } };
    expect(reply.connect).toMatchObject({ expires: true, ttl: 1 });
    expect(await s.closed).toEqual({ code: 3005, reason: 'connection expired' });
    const t = await raw(ws);
    t.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada' }) } }));
    await t.next(0);
    t.send(JSON.stringify({ id: 2, refresh: { token: await token({ sub: 'bob' }) } }));
    expect(await t.closed).toEqual({ code: 3500, reason: 'invalid token' });
  });

  it('private channels need a subscription token for the channel, the user and (when set) the connection', async () => {
    const { ws } = await centrifugoServer({}, { auth: true });
    const ch = `$${channel()}`;
    const c = client(ws, { token: await token({ sub: 'ada' }) });
    c.connect();
    const denied = c.newSubscription(ch);
    const why = new Promise<UnsubscribedContext>((resolve) => denied.once('unsubscribed', resolve));
    denied.subscribe();
    expect(await why).toMatchObject({ code: 103 });
    c.removeSubscription(denied);
    const sub = c.newSubscription(ch, { getToken: async () => token({ sub: 'ada', channel: ch, info: { role: 'owner' }, data: { welcome: true } }) });
    const subscribed = new Promise<{ data?: unknown }>((resolve) => sub.once('subscribed', resolve));
    sub.subscribe();
    expect((await subscribed).data).toEqual({ welcome: true });
    const seen = publications(sub);
    await sub.publish({ x: 1 });
    await waitLength(seen, 1);
    expect(seen[0]!.info).toMatchObject({ user: 'ada', chanInfo: { role: 'owner' } });
    // A token of another user closes the connection with 3500.
    const other = client(ws, { token: await token({ sub: 'bob' }) });
    const gone = disconnected(other);
    other.connect();
    other.newSubscription(ch, { token: await token({ sub: 'ada', channel: ch }) }).subscribe();
    expect(await gone).toMatchObject({ code: 3500 });
  });

  it('a subscription token that expires is refreshed with sub_refresh, and the subscription lives on', async () => {
    const { ws } = await centrifugoServer({ CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY: '1500ms' }, { auth: true });
    const ch = `$${channel()}`;
    const c = client(ws, { token: await token({ sub: 'ada' }) });
    c.connect();
    let calls = 0;
    const sub = c.newSubscription(ch, {
      getToken: async () => {
        calls++;
        return token({ sub: 'ada', channel: ch }, { ttlSec: 2 });
      },
    });
    const ends: UnsubscribedContext[] = [];
    sub.on('unsubscribed', (u) => ends.push(u));
    sub.subscribe();
    await sub.ready(3_000);
    await waitFor(() => (calls >= 2 ? true : undefined), { timeoutMs: 5_000, what: 'a sub_refresh' });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(sub.state).toBe('subscribed');
    expect(ends).toEqual([]);
  });

  it('server-side subscriptions from the channels and subs claims deliver publications to the client', async () => {
    const { ws } = await centrifugoServer({}, { auth: true });
    const [c1, c2] = [channel(), channel()];
    const c = client(ws, { token: await token({ sub: 'ada', channels: [c1], subs: { [c2]: { data: { hello: 'c2' } } } }) });
    const subscribed: ServerSubscribedContext[] = [];
    const pubs: PublicationContext[] = [];
    c.on('subscribed', (s) => subscribed.push(s));
    c.on('publication', (p) => pubs.push(p));
    c.connect();
    await waitFor(() => (subscribed.length === 2 ? true : undefined), { what: 'two server-side subscriptions' });
    expect(subscribed.find((s) => s.channel === c2)?.data).toEqual({ hello: 'c2' });
    const writer = client(ws, { token: await token({ sub: 'bob' }) });
    writer.connect();
    for (const ch of [c1, c2]) {
      const w = writer.newSubscription(ch);
      w.subscribe();
      await w.ready(3_000);
      await w.publish({ ch });
    }
    await waitLength(pubs, 2);
    expect(pubs.map((p) => [p.channel, p.data])).toEqual([
      [c1, { ch: c1 }],
      [c2, { ch: c2 }],
    ]);
  });

  it('RS256/RS384 tokens with AUTH_JWT_PUBLIC_KEY; alg none and HS256 signed with the public key are refused', async () => {
    const { publicKey, privateKey } = testKeyPair({ type: 'rsa', modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const { ws } = await centrifugoServer({ AUTH_JWT_PUBLIC_KEY: pem });
    for (const alg of ['RS256', 'RS384']) {
      const jwt = await new SignJWT({ sub: 'ada' }).setProtectedHeader({ alg }).setExpirationTime('1h').sign(privateKey);
      const c = client(ws, { token: jwt });
      c.connect();
      await c.ready(3_000);
    }
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"ada"}').toString('base64url')}.`;
    const hs = await token({ sub: 'ada' }, { secret: pem });
    for (const bad of [none, hs]) {
      const c = client(ws, { token: bad });
      const gone = disconnected(c);
      c.connect();
      expect(await gone).toMatchObject({ code: 3500 });
    }
  });
});
