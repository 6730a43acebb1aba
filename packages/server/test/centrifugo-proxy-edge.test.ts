import { describe, expect, it } from 'vitest';
import { connect, request, waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, channelsConfig, raw, token, type RawSocket } from './centrifugo-fixtures.js';
import { callbackService, v5Config, type CallbackService } from './centrifugo-proxy-fixtures.js';

const now = (): number => Math.floor(Date.now() / 1_000);
const INTERNAL = { code: 100, message: 'internal server error', temporary: true };
const messages = (s: RawSocket): Array<Record<string, any>> => s.frames.flatMap((f) => f.split('\n')).map((l) => JSON.parse(l) as Record<string, any>);
const reply = (s: RawSocket, id: number): Promise<Record<string, any>> => waitFor(() => messages(s).find((m) => m['id'] === id), { what: `reply ${id}` });
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');

async function setup(config: (service: CallbackService) => Record<string, unknown>) {
  const service = await callbackService();
  const { ws, url } = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(config(service)) });
  return { service, ws, url };
}

/** A raw connection authenticated by the connect proxy (session cookie), with the connect request's extra fields. */
async function rawConnected(ws: string, user = 'ada', connect: Record<string, unknown> = {}, headers: Record<string, string | string[]> = {}): Promise<RawSocket> {
  const s = await raw(ws, { headers: { cookie: `session=${user}`, ...headers } });
  s.send(JSON.stringify({ id: 1, connect }));
  expect((await reply(s, 1))['connect']).toBeDefined();
  return s;
}

describe('Centrifugo proxies: options of a v6 config', () => {
  const v6 = (service: CallbackService) => ({
    client: {
      token: { hmac_secret_key: 'centrifugo-test-secret-of-at-least-32-bytes' },
      proxy: { connect: { enabled: true, endpoint: `${service.url}/connect`, binary_encoding: true, http_headers: ['Cookie', 'X-Multi'], emulated_headers: ['Authorization'], http: { static_headers: { authorization: 'static', 'X-Static': 'yes' } } } },
    },
    channel: {
      namespaces: [{ name: 'bin', subscribe_proxy_enabled: true, subscribe_proxy_name: 'binary', publish_proxy_enabled: true, publish_proxy_name: 'binary', history_size: 10, history_ttl: '60s', allow_user_limited_channels: true }],
    },
    proxies: [{ name: 'binary', endpoint: `${service.url}/subscribe`, binary_encoding: true, include_connection_meta: true }],
    rpc: { without_namespace: { proxy_enabled: true }, proxy: { endpoint: `${service.url}/rpc`, binary_encoding: true, include_connection_meta: true } },
  });

  it('binary_encoding: data travels as b64data and encoding is binary; static headers lose to listed client headers; connect subs name channels', async () => {
    const { service, ws } = await setup(v6);
    service.set('connect', () => ({ result: { user: 'ada', b64info: b64({ name: 'Ada' }), b64data: b64({ hello: 1 }), meta: { plan: 'pro' } } }));
    const s = await raw(ws, { headers: { cookie: 'session=ada', 'x-multi': 'one' } });
    s.send(JSON.stringify({ id: 1, connect: { data: { from: 'app' }, headers: { Authorization: 'Bearer emulated', 'X-Not-Listed': 'no' }, subs: { 'news:1': { recover: true } } } }));
    expect((await reply(s, 1))['connect']).toMatchObject({ data: { hello: 1 } });
    const call = service.of('connect')[0]!;
    expect(call.body).toEqual({ client: expect.any(String), transport: 'websocket', protocol: 'json', encoding: 'binary', b64data: b64({ from: 'app' }), channels: ['news:1'] });
    expect(call.headers).toMatchObject({ cookie: 'session=ada', 'x-multi': 'one', authorization: 'Bearer emulated', 'x-static': 'yes' });
    expect(call.headers['x-not-listed']).toBeUndefined();

    // RPC: b64data out, meta included; a result with b64data is decoded; an empty b64data is no data.
    service.set('rpc', (body) => ({ result: { b64data: body.method === 'empty' ? '' : b64({ got: JSON.parse(Buffer.from(body.b64data, 'base64').toString()) }) } }));
    s.send(JSON.stringify({ id: 2, rpc: { method: 'echo', data: { x: 1 } } }), JSON.stringify({ id: 3, rpc: { method: 'empty', data: 1 } }));
    expect(await reply(s, 2)).toEqual({ id: 2, rpc: { data: { got: { x: 1 } } } });
    expect(await reply(s, 3)).toEqual({ id: 3, rpc: {} });
    expect(service.of('rpc')[0]!.body).toEqual({ client: call.body.client, transport: 'websocket', protocol: 'json', encoding: 'binary', user: 'ada', method: 'echo', b64data: b64({ x: 1 }), meta: { plan: 'pro' } });
  });

  it('user-limited channels skip the subscribe proxy; a result without fields and a subscribe answer with an empty envelope subscribe plainly', async () => {
    const { service, ws } = await setup(v6);
    service.set('connect', (_b, headers) => ({ result: { user: String(headers.cookie).replace('session=', '') } }));
    const s = await rawConnected(ws, 'ada');
    const mine = `bin:room#ada`;
    s.send(JSON.stringify({ id: 2, subscribe: { channel: mine } }), JSON.stringify({ id: 3, subscribe: { channel: 'bin:room#bob' } }));
    expect((await reply(s, 2))['subscribe']).toEqual({});
    expect((await reply(s, 3))['error']).toMatchObject({ code: 103 });
    expect(service.of('subscribe')).toHaveLength(0);
    service.set('subscribe', () => ({}));
    const ch = channel('bin');
    s.send(JSON.stringify({ id: 4, subscribe: { channel: ch, data: { want: 1 } } }));
    expect((await reply(s, 4))['subscribe']).toEqual({});
    expect(service.of('subscribe')[0]!.body).toMatchObject({ encoding: 'binary', channel: ch, b64data: b64({ want: 1 }), user: 'ada' });
    expect(service.of('subscribe')[0]!.body.meta).toBeUndefined(); // no meta from the connect proxy: none sent
  });
});

describe('Centrifugo proxies: malformed and unusual answers', () => {
  it('connect: an envelope of null is no credentials (3501); an error without message; a disconnect without reason; a result without user is anonymous', async () => {
    const { service, ws } = await setup((sv) => v5Config(sv));
    const answer = async (a: unknown): Promise<RawSocket> => {
      service.set('connect', () => a);
      const s = await raw(ws);
      s.send(JSON.stringify({ id: 1, connect: {} }));
      return s;
    };
    expect(await (await answer(null)).closed).toEqual({ code: 3501, reason: 'bad request' });
    const e = await answer({ error: { code: 1001 } });
    expect(await reply(e, 1)).toEqual({ id: 1, error: { code: 1001, message: '' } });
    expect(await (await answer({ disconnect: { code: 4000 } })).closed).toEqual({ code: 4000, reason: 'disconnect 4000' });
    const anon = await answer({ result: { info: { x: 1 } } });
    expect((await reply(anon, 1))['connect']).toMatchObject({ client: expect.any(String) });
    expect(await (await answer({ result: { b64info: '%%%' } })).next(0)).toBe(JSON.stringify({ id: 1, error: INTERNAL }));
  });

  it('a body larger than 4 MiB and an unreachable https endpoint are failed calls (100, temporary)', async () => {
    const { service, ws } = await setup((sv) => v5Config(sv, { proxy_rpc_endpoint: 'https://127.0.0.1:9/rpc' }));
    service.set('connect', () => ({ result: { user: 'ada', data: 'x'.repeat(4 * 1_048_576 + 10) } }));
    const big = await raw(ws);
    big.send(JSON.stringify({ id: 1, connect: {} }));
    expect(await reply(big, 1)).toEqual({ id: 1, error: INTERNAL });
    service.set('connect', undefined);
    const s = await rawConnected(ws);
    s.send(JSON.stringify({ id: 2, rpc: { method: 'm', data: {} } }));
    expect(await reply(s, 2)).toEqual({ id: 2, error: INTERNAL });
  });

  it('refresh proxy: a result without expire_at ends the connection (3005); a bad b64info closes with 3004; a client refresh command is a bad request (3501)', async () => {
    const { service, ws } = await setup((sv) => v5Config(sv));
    service.set('connect', (_b, h) => {
      const user = String(h.cookie).replace('session=', '');
      return { result: { user, expire_at: now() + (user === 'carol' ? 3_600 : 1) } };
    });
    service.set('refresh', (body) => (body.user === 'ada' ? { result: { info: { v: 2 } } } : { result: { expire_at: now() + 60, b64info: '***' } }));
    const a = await rawConnected(ws, 'ada');
    expect(await a.closed).toEqual({ code: 3005, reason: 'connection expired' });
    const b = await rawConnected(ws, 'bob');
    expect(await b.closed).toEqual({ code: 3004, reason: 'internal server error' });
    // The server refreshes; the client is not supposed to (Centrifugo: "server-side refresh expected").
    const c = await rawConnected(ws, 'carol');
    c.send(JSON.stringify({ id: 2, refresh: { token: await token({ sub: 'carol' }) } }));
    expect(await c.closed).toEqual({ code: 3501, reason: 'bad request' });
  });
});

describe('Centrifugo sub_refresh proxy and namespaces without proxies', () => {
  it('new chan_info from the proxy shows in publications; a bad b64info closes with 3004; other namespaces refresh on the client and publish without the proxy', async () => {
    const namespaces = [
      { name: 'chat', proxy_subscribe: true, proxy_publish: true, proxy_sub_refresh: true, allow_publish_for_subscriber: true },
      { name: 'open', allow_subscribe_for_client: true, allow_publish_for_subscriber: true },
    ];
    const { service, ws } = await setup((sv) => v5Config(sv, { namespaces, proxy_sub_refresh_endpoint: `${sv.url}/sub_refresh` }));
    service.set('subscribe', () => ({ result: { expire_at: now() + 1, info: { v: 1 } } }));
    service.set('publish', (body) => ({ result: { data: body.data } }));
    service.set('sub_refresh', (body) => (body.user === 'ada' ? { result: { expire_at: now() + 60, info: { v: 2 } } } : { result: { expire_at: now() + 60, b64info: '***' } }));
    const s = await rawConnected(ws, 'ada');
    const ch = channel('chat');
    s.send(JSON.stringify({ id: 2, subscribe: { channel: ch } }));
    expect((await reply(s, 2))['subscribe']).toEqual({});
    await waitFor(() => service.of('sub_refresh')[0], { what: 'the sub_refresh call', timeoutMs: 4_000 });
    s.send(JSON.stringify({ id: 3, publish: { channel: ch, data: 'after' } }));
    await reply(s, 3);
    const pub = await waitFor(() => messages(s).find((m) => m['push']?.pub), { what: 'the publication' });
    expect(pub['push'].pub.info.chan_info).toEqual({ v: 2 });
    // A subscription token in a namespace without the sub_refresh proxy: the client refreshes it (expires in the reply).
    const open = channel('open');
    s.send(JSON.stringify({ id: 4, subscribe: { channel: open, token: await token({ sub: 'ada', channel: open }, { ttlSec: 60 }) } }), JSON.stringify({ id: 5, publish: { channel: open, data: 'plain' } }));
    expect((await reply(s, 4))['subscribe']).toMatchObject({ expires: true, ttl: 60 });
    expect((await reply(s, 5))['publish']).toEqual({});
    expect(service.of('publish')).toHaveLength(1);

    const b = await rawConnected(ws, 'bob');
    b.send(JSON.stringify({ id: 2, subscribe: { channel: channel('chat') } }));
    await reply(b, 2);
    expect(await b.closed).toEqual({ code: 3004, reason: 'internal server error' });
  });
});

describe('Centrifugo proxies for Socket.IO clients', () => {
  it('refusals without a message or reason get one; a temporary error is unavailable; a disconnect answer ends the socket', async () => {
    const namespaces = [{ name: 'room', proxy_subscribe: true, proxy_publish: true, allow_subscribe_for_client: true, allow_publish_for_subscriber: true }];
    const { service, url } = await setup((sv) => v5Config(sv, { namespaces }));
    const sock = await connect(url, { auth: { token: await token({ sub: 'ada' }) } });
    service.set('subscribe', () => ({ error: { code: 1403 } }));
    expect(await request(sock, 'channel:subscribe', { channel: channel('room') })).toEqual({ ok: false, error: { code: 'forbidden', message: 'refused by the proxy (1403)' } });
    service.set('subscribe', () => ({ error: { code: 1500, message: 'try later', temporary: true } }));
    expect(await request(sock, 'channel:subscribe', { channel: channel('room') })).toEqual({ ok: false, error: { code: 'unavailable', message: 'try later' } });
    service.set('subscribe', () => ({ result: { expire_at: 'soon' } }));
    expect(await request(sock, 'channel:subscribe', { channel: channel('room') })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    service.set('subscribe', () => ({ disconnect: { code: 4503 } }));
    const gone = new Promise<string>((resolve) => sock.once('disconnect', resolve));
    expect(await request(sock, 'channel:subscribe', { channel: channel('room') })).toEqual({ ok: false, error: { code: 'forbidden', message: 'disconnected by the proxy (4503)' } });
    expect(await gone).toBe('io server disconnect');
  });
});
