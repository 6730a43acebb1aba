import { describe, expect, it, onTestFinished } from 'vitest';
import type { RealtimeServer } from 'realtime-message';
import { waitFor } from 'realtime-message-testing';
import { Extensions, type Extension } from '../src/extensions/extension.js';
import { CentrifugoDisconnect } from '../src/transports/centrifugo/codes.js';
import { attachCentrifugo, type CentrifugoEndpointOptions } from '../src/transports/centrifugo/endpoint.js';
import { centrifugoServer, channel, channelsConfig, raw, token, type RawSocket } from './centrifugo-fixtures.js';

const now = (): number => Math.floor(Date.now() / 1_000);
const messages = (s: RawSocket): Array<Record<string, any>> => s.frames.flatMap((f) => f.split('\n')).map((l) => JSON.parse(l) as Record<string, any>);
const reply = (s: RawSocket, id: number): Promise<Record<string, any>> => waitFor(() => messages(s).find((m) => m['id'] === id), { what: `reply ${id}` });

/** A second endpoint on the standalone server's HTTP server (below the claimed path), with options of its own. */
function endpoint(server: RealtimeServer, ws: string, options: Partial<CentrifugoEndpointOptions>): string {
  const e = attachCentrifugo(server.http, { channels: server.presence.channels!, presence: server.presence.service, path: '/connection/websocket/edge', ...options });
  onTestFinished(() => e.close());
  return `${ws}/edge`;
}

const CONFIG = { channel: { namespaces: [{ name: 'hist', history_size: 10, history_ttl: '60s', allow_subscribe_for_client: true, allow_publish_for_subscriber: true, allow_history_for_subscriber: true }] } };

describe('attachCentrifugo options', () => {
  it('refuses a limit that is not an integer >= 0, naming it', async () => {
    const { server } = await centrifugoServer();
    const base = { channels: server.presence.channels!, presence: server.presence.service };
    expect(() => attachCentrifugo(server.http, { ...base, pingIntervalMs: -1 })).toThrow(new TypeError('pingIntervalMs must be an integer >= 0 (got -1)'));
    expect(() => attachCentrifugo(server.http, { ...base, maxQueuedCommands: 1.5 })).toThrow('maxQueuedCommands must be an integer >= 0 (got 1.5)');
    expect(() => attachCentrifugo(server.http, { ...base, historyMaxLimit: Number.NaN })).toThrow('historyMaxLimit must be an integer >= 0 (got NaN)');
  });

  it('defaults: version 0.0.0, no token keys (a token closes with 3500, refresh too), pings off with 0; authentication of other transports only leaves connects anonymous', async () => {
    const { server, ws } = await centrifugoServer();
    const socketIoOnly: Extension = { name: 'sio-auth', transports: ['socket.io'], authenticate: async () => ({ userId: 'never', claims: {} }) };
    const url = endpoint(server, ws, { pingIntervalMs: 0, tokens: { secret: '' }, extensions: new Extensions([socketIoOnly]) });
    const s = await raw(url);
    s.send(JSON.stringify({ id: 1, connect: {} }));
    expect((await reply(s, 1))['connect']).toEqual({ client: expect.any(String), version: '0.0.0' });
    s.send(JSON.stringify({ id: 3, refresh: { token: await token({ sub: '' }) } }));
    expect(await s.closed).toEqual({ code: 3500, reason: 'invalid token' });
    const t = await raw(url);
    t.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada' }) } }));
    expect(await t.closed).toEqual({ code: 3500, reason: 'invalid token' });
  });

  it('an authenticate hook that finds nobody: 3501 (client credentials not found); it is given the socket address without clientAddress', async () => {
    const { server, ws } = await centrifugoServer();
    const seen: Array<string | undefined> = [];
    const nobody: Extension = { name: 'nobody', authenticate: async (ctx) => (seen.push(ctx.remoteAddress), undefined) };
    const url = endpoint(server, ws, { extensions: new Extensions([nobody]) });
    const s = await raw(url);
    s.send(JSON.stringify({ id: 1, connect: {} }));
    expect(await s.closed).toEqual({ code: 3501, reason: 'bad request' });
    expect(seen).toEqual([expect.stringMatching(/127\.0\.0\.1$/)]);
  });

  it('back-pressure: a frame of more commands than the queue holds is answered in full, in order', async () => {
    const { server, ws } = await centrifugoServer();
    const url = endpoint(server, ws, { maxQueuedCommands: 2 });
    const s = await raw(url);
    const ids = Array.from({ length: 40 }, (_, i) => i + 2);
    s.send(JSON.stringify({ id: 1, connect: {} }), ...ids.map((id) => JSON.stringify({ id, unsubscribe: { channel: `never-${id}` } })));
    await reply(s, 41);
    // The pause let the next frame wait; it is answered too.
    s.send(JSON.stringify({ id: 42, unsubscribe: { channel: 'x' } }));
    await reply(s, 42);
    expect(messages(s).map((m) => m['id'])).toEqual([1, ...ids, 42]);
  });

  it('hook failures: a plain error is 100 (temporary) and the connection lives; a disconnect code out of range closes with 3004', async () => {
    const { server, ws } = await centrifugoServer();
    const rpc: Extension = {
      name: 'rpc',
      async onRpc(ctx) {
        if (ctx.target === 'boom') throw new Error('database down');
        if (ctx.target === 'kick') throw new CentrifugoDisconnect(403, 'kicked');
        return { ok: ctx.target };
      },
    };
    const url = endpoint(server, ws, { extensions: new Extensions([rpc]) });
    const s = await raw(url);
    s.send(JSON.stringify({ id: 1, connect: {} }), JSON.stringify({ id: 2, rpc: { method: 'boom' } }), JSON.stringify({ id: 3, rpc: { method: 'fine' } }));
    expect(await reply(s, 2)).toEqual({ id: 2, error: { code: 100, message: 'internal server error', temporary: true } });
    expect(await reply(s, 3)).toEqual({ id: 3, rpc: { data: { ok: 'fine' } } });
    s.send(JSON.stringify({ id: 4, rpc: { method: 'kick' } }));
    expect(await s.closed).toEqual({ code: 3004, reason: 'kicked' });
  });

  it('server-side refresh by a hook: new expiry, info and meta; a failing refresh closes with 3004, a disconnect with its code', async () => {
    const { server, ws } = await centrifugoServer({ CHANNELS_CONFIG: channelsConfig(CONFIG) });
    const calls: Array<{ user: string; meta: unknown }> = [];
    let behaviour: 'ok' | 'throw' | 'disconnect' = 'ok';
    const auth: Extension = {
      name: 'auth',
      transports: ['centrifugo'],
      authenticate: async (ctx) => ({ userId: String(ctx.headers['x-user']), expiresAt: Date.now() + 600, claims: { meta: { v: 1 } } }),
      refreshes: (c) => c.channel === undefined,
      async onRefresh(ctx) {
        calls.push({ user: ctx.userId, meta: (ctx.connection as { meta: unknown }).meta });
        if (behaviour === 'throw') throw new Error('refresh backend down');
        if (behaviour === 'disconnect') throw new CentrifugoDisconnect(4501, 'banned');
        return { expiresAt: Date.now() + 60_000, info: { refreshed: true }, meta: { v: 2 } };
      },
    };
    const url = endpoint(server, ws, { extensions: new Extensions([auth]), expiredCloseDelayMs: 50 });
    const s = await raw(url, { headers: { 'x-user': 'ada' } });
    const ch = channel('hist');
    s.send(JSON.stringify({ id: 1, connect: {} }), JSON.stringify({ id: 2, subscribe: { channel: ch } }));
    // The client is not told about the expiry: the server refreshes.
    expect((await reply(s, 1))['connect']).not.toHaveProperty('expires');
    await reply(s, 2);
    await waitFor(() => calls[0], { what: 'a refresh', timeoutMs: 3_000 });
    expect(calls[0]).toEqual({ user: 'ada', meta: { v: 1 } });
    s.send(JSON.stringify({ id: 3, publish: { channel: ch, data: 1 } }));
    await reply(s, 3);
    const pub = await waitFor(() => messages(s).find((m) => m['push']?.pub), { what: 'the publication' });
    expect(pub['push'].pub.info).toEqual({ user: 'ada', client: expect.any(String), conn_info: { refreshed: true } });
    expect(calls).toHaveLength(1);

    behaviour = 'throw';
    const t = await raw(url, { headers: { 'x-user': 'bob' } });
    t.send(JSON.stringify({ id: 1, connect: {} }));
    expect(await t.closed).toEqual({ code: 3004, reason: 'internal server error' });
    behaviour = 'disconnect';
    const u = await raw(url, { headers: { 'x-user': 'carol' } });
    u.send(JSON.stringify({ id: 1, connect: {} }));
    expect(await u.closed).toEqual({ code: 4501, reason: 'banned' });
    expect(calls.map((c) => c.user)).toEqual(['ada', 'bob', 'carol']);
  });
});

describe('Centrifugo connect and refresh (standalone server)', () => {
  it('expire_at in the past: 109; more server-side channels than the limit: 3505; refresh with an expired token or expire_at: 3005', async () => {
    const { ws } = await centrifugoServer({ CENTRIFUGO_CLIENT_CHANNEL_LIMIT: '2' }, { auth: true });
    const s = await raw(ws);
    s.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada', expire_at: now() - 1 }) } }));
    expect(await reply(s, 1)).toEqual({ id: 1, error: { code: 109, message: 'token expired' } });
    const t = await raw(ws);
    t.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada', channels: [channel(), channel(), channel()] }) } }));
    expect(await t.closed).toEqual({ code: 3505, reason: 'channel limit' });
    for (const claims of [{ sub: 'ada', exp: now() - 5 }, { sub: 'ada', expire_at: now() - 5 }]) {
      const u = await raw(ws);
      u.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada' }) } }));
      await reply(u, 1);
      u.send(JSON.stringify({ id: 2, refresh: { token: await token(claims) } }));
      expect(await u.closed).toEqual({ code: 3005, reason: 'connection expired' });
    }
  });

  it('a successful refresh gives the new ttl and info; a refresh with a token of another kind closes with 3500', async () => {
    const { ws } = await centrifugoServer({ CHANNELS_CONFIG: channelsConfig(CONFIG) }, { auth: true });
    const s = await raw(ws);
    const ch = channel('hist');
    s.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada', info: { v: 1 } }, { ttlSec: 30 }) } }), JSON.stringify({ id: 2, subscribe: { channel: ch } }));
    expect((await reply(s, 1))['connect']).toMatchObject({ expires: true, ttl: 30 });
    await reply(s, 2);
    s.send(JSON.stringify({ id: 3, refresh: { token: await token({ sub: 'ada', info: { v: 2 } }, { ttlSec: 300 }) } }));
    expect((await reply(s, 3))['refresh']).toEqual({ client: expect.any(String), version: expect.any(String), expires: true, ttl: 300 });
    s.send(JSON.stringify({ id: 4, publish: { channel: ch, data: 1 } }));
    const pub = await waitFor(() => messages(s).find((m) => m['push']?.pub), { what: 'the publication' });
    expect(pub['push'].pub.info.conn_info).toEqual({ v: 2 });
    // A refresh token that never expires: no ttl any more.
    s.send(JSON.stringify({ id: 5, refresh: { token: await token({ sub: 'ada', expire_at: 0 }) } }));
    expect((await reply(s, 5))['refresh']).toEqual({ client: expect.any(String), version: expect.any(String) });
    s.send(JSON.stringify({ id: 6, refresh: { token: await token({ sub: 'ada', channel: ch }) } }));
    expect(await s.closed).toEqual({ code: 3500, reason: 'invalid token' });
  });

  it('server-side subscriptions recover from the positions sent in connect subs (with or without offset and epoch)', async () => {
    const { ws } = await centrifugoServer({ CHANNELS_CONFIG: channelsConfig(CONFIG) }, { auth: true });
    const ch = channel('hist');
    const w = await raw(ws);
    w.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'writer' }) } }), JSON.stringify({ id: 2, subscribe: { channel: ch, recoverable: true } }));
    const epoch = (await reply(w, 2))['subscribe'].epoch as string;
    for (const n of [3, 4, 5]) {
      w.send(JSON.stringify({ id: n, publish: { channel: ch, data: { n } } }));
      await reply(w, n);
    }
    const subs = { [ch]: { override: { force_recovery: { value: true } } } };
    const a = await raw(ws);
    a.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'ada', subs }), subs: { [ch]: { recover: true, offset: 2, epoch } } } }));
    const ra = (await reply(a, 1))['connect'].subs[ch];
    expect(ra).toMatchObject({ recoverable: true, positioned: true, epoch, offset: 2, recovered: true, was_recovering: true });
    expect(ra.publications.map((p: { offset: number }) => p.offset)).toEqual([3]);
    const b = await raw(ws);
    b.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'bob', subs }), subs: { [ch]: { recover: true } } } }));
    expect((await reply(b, 1))['connect'].subs[ch].publications.map((p: { offset: number }) => p.offset)).toEqual([1, 2, 3]);
    // Not asked to recover: the position only.
    const c = await raw(ws);
    c.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: 'carol', subs }) } }));
    expect((await reply(c, 1))['connect'].subs[ch]).toEqual({ recoverable: true, positioned: true, epoch, offset: 3 });
  });
});
