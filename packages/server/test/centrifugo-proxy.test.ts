import { describe, expect, it } from 'vitest';
import type { DisconnectedContext, PublicationContext, UnsubscribedContext } from 'centrifuge';
import WebSocket from 'ws';
import { connect, request, waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, channelsConfig, client, publications, raw, token, waitLength } from './centrifugo-fixtures.js';
import { callbackService, v5Config, type Behaviour } from './centrifugo-proxy-fixtures.js';

/** A WebSocket constructor for centrifuge-js that sends these headers with the upgrade (a browser sends its cookies). */
function withHeaders(headers: Record<string, string>): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols ?? [], { headers });
    }
  } as typeof WebSocket;
}

const disconnected = (c: ReturnType<typeof client>): Promise<DisconnectedContext> => new Promise((resolve) => c.once('disconnected', resolve));
/** Answers Centrifugo cannot decode (Go's JSON decoder fails on each), and a call that cannot complete. */
const FAILURES: Behaviour[] = [
  'malformed',
  'not-envelope',
  'status500',
  'slow',
  // Fields of the wrong type, for every kind of result.
  () => ({ result: { user: 5, expire_at: 'soon', skip_history: 'yes', b64data: 5 } }),
  () => ({ error: { code: 'x', message: 'wrong' } }),
];
const INTERNAL = { code: 100, message: 'internal server error', temporary: true };

async function setup(extra: Record<string, unknown> = {}) {
  const service = await callbackService();
  const { ws, server, url } = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(v5Config(service, extra)) });
  return { service, ws, server, url };
}

/** A raw connection authenticated by the connect proxy (session cookie). */
async function rawConnected(ws: string, user = 'ada') {
  const s = await raw(ws, { headers: { cookie: `session=${user}` } });
  s.send(JSON.stringify({ id: 1, connect: {} }));
  expect(JSON.parse(await s.next(0))).toMatchObject({ id: 1, connect: { client: expect.any(String) } });
  return s;
}

describe('Centrifugo proxies: the callback service of the original design, unchanged (centrifuge-js)', () => {
  it('connect without a token goes to the connect proxy: its user, info and data; subscribe and publish go through their proxies', async () => {
    const { service, ws } = await setup();
    const c = client(ws, { websocket: withHeaders({ cookie: 'session=ada', 'x-other': 'not forwarded' }), data: { from: 'app' }, name: 'js-test', version: '1.2.3' });
    const connected = new Promise<{ data?: unknown }>((resolve) => c.once('connected', resolve));
    c.connect();
    expect((await connected).data).toEqual({ greeting: 'hello ada' });
    const [call] = service.of('connect');
    expect(call!.body).toEqual({ client: expect.any(String), transport: 'websocket', protocol: 'json', encoding: 'json', data: { from: 'app' }, name: 'js-test', version: '1.2.3' });
    // Only the listed headers are forwarded (proxy_http_headers), with Content-Type: application/json.
    expect(call!.headers).toMatchObject({ cookie: 'session=ada', 'content-type': 'application/json' });
    expect(call!.headers['x-other']).toBeUndefined();

    // "chat" has no allow_subscribe_for_client: the subscribe proxy decides.
    const ch = channel('chat');
    const sub = c.newSubscription(ch);
    const seen = publications(sub);
    const subscribed = new Promise<{ data?: unknown }>((resolve) => sub.once('subscribed', resolve));
    sub.subscribe();
    expect((await subscribed).data).toEqual({ welcome: ch });
    expect(service.of('subscribe')[0]!.body).toEqual({ client: call!.body.client, transport: 'websocket', protocol: 'json', encoding: 'json', user: 'ada', channel: ch });
    // The publish proxy validates and rewrites the data; the publisher's info carries conn_info and the proxy's chan_info.
    await sub.publish({ text: '  hello  ' });
    await waitLength(seen, 1);
    expect(seen[0]!.data).toEqual({ text: 'hello', by: 'ada' });
    expect(seen[0]!.info).toMatchObject({ user: 'ada', connInfo: { name: 'ADA' }, chanInfo: { role: 'member' } });
    expect(service.of('publish')[0]!.body).toMatchObject({ user: 'ada', channel: ch, data: { text: '  hello  ' } });
    // The proxy's error code reaches the client; nothing is published.
    await expect(sub.publish({ text: '   ' })).rejects.toMatchObject({ code: 1400, message: 'bad message' });
    // A namespace without proxies is not proxied.
    const open = c.newSubscription(channel('open'));
    open.subscribe();
    await open.ready(3_000);
    expect(service.of('subscribe')).toHaveLength(1);

    // Headers emulation: centrifuge-js's `headers` option, forwarded when listed.
    const bob = client(ws, { headers: { Authorization: 'Bearer bob' } });
    bob.connect();
    await bob.ready(3_000);
    expect(service.of('connect')[1]!.headers).toMatchObject({ authorization: 'Bearer bob' });
  });

  it('connect proxy answers: disconnect closes with its code, error replies with its code, no result is 3501, a token skips the proxy', async () => {
    const { service, ws } = await setup();
    const nobody = client(ws);
    const gone = disconnected(nobody);
    nobody.connect();
    expect(await gone).toMatchObject({ code: 4501, reason: 'unauthorized' });

    service.set('connect', () => ({ error: { code: 1000, message: 'custom refusal' } }));
    const s = await raw(ws);
    s.send(JSON.stringify({ id: 1, connect: {} }));
    expect(JSON.parse(await s.next(0))).toEqual({ id: 1, error: { code: 1000, message: 'custom refusal' } });

    service.set('connect', () => ({ result: null }));
    const t = await raw(ws);
    t.send(JSON.stringify({ id: 1, connect: {} }));
    expect(await t.closed).toEqual({ code: 3501, reason: 'bad request' });

    // A disconnect code the WebSocket layer would refuse becomes 3004, never an exception.
    service.set('connect', () => ({ disconnect: { code: 403, reason: 'nope' } }));
    const u = await raw(ws);
    u.send(JSON.stringify({ id: 1, connect: {} }));
    expect((await u.closed).code).toBe(3004);

    const before = service.of('connect').length;
    const withToken = client(ws, { token: await token({ sub: 'carol' }) });
    withToken.connect();
    await withToken.ready(3_000);
    expect(service.of('connect')).toHaveLength(before);
  });

  it('a connect proxy that fails (malformed, not the envelope, 500, slower than its timeout) gets error 100 (temporary), never a connection', async () => {
    const { service, ws } = await setup();
    for (const b of FAILURES) {
      service.set('connect', b);
      const s = await raw(ws);
      const started = Date.now();
      s.send(JSON.stringify({ id: 1, connect: {} }), JSON.stringify({ id: 2, subscribe: { channel: 'open:x' } }));
      expect(JSON.parse(await s.next(0)), b.toString()).toEqual({ id: 1, error: INTERNAL });
      expect(Date.now() - started).toBeLessThan(2_000); // the 500 ms timeout, not the service's 3 s
      // The subscribe of the same frame is refused with the connection (a command after a failed connect).
      expect(await s.closed).toEqual({ code: 3501, reason: 'bad request' });
    }
    service.set('connect', undefined);
    await rawConnected(ws);
  });

  it('subscribe proxy answers: error → unsubscribed with its code, disconnect → closed with its code; failures → 100 and no subscription', async () => {
    const { service, ws, server } = await setup();
    const c = client(ws, { websocket: withHeaders({ cookie: 'session=ada' }) });
    c.connect();
    await c.ready(3_000);
    const secret = c.newSubscription('chat:secret');
    const refused = new Promise<UnsubscribedContext>((resolve) => secret.once('unsubscribed', resolve));
    secret.subscribe();
    expect(await refused).toMatchObject({ code: 403, reason: 'permission denied' });
    const gone = disconnected(c);
    c.newSubscription('chat:banned').subscribe();
    expect(await gone).toMatchObject({ code: 4503, reason: 'banned' });

    const s = await rawConnected(ws);
    const conn = [...server.centrifugo!.connections].find((x) => x.user === 'ada' && x.ws.readyState === WebSocket.OPEN)!;
    let id = 2;
    for (const b of FAILURES) {
      service.set('subscribe', b);
      const ch = channel('chat');
      const from = s.frames.length;
      s.send(JSON.stringify({ id, subscribe: { channel: ch } }));
      expect(JSON.parse(await s.next(from)), String(b)).toEqual({ id: id++, error: INTERNAL });
      expect(conn.subs.has(ch)).toBe(false);
    }
    // Allowed again: the connection kept working.
    service.set('subscribe', undefined);
    const from = s.frames.length;
    s.send(JSON.stringify({ id, subscribe: { channel: 'chat:ok' } }));
    expect(JSON.parse(await s.next(from))).toMatchObject({ id, subscribe: { data: { welcome: 'chat:ok' } } });
  });

  it('publish proxy failures and refusals publish nothing; a disconnect answer closes the connection', async () => {
    const { service, ws, server } = await setup();
    const s = await rawConnected(ws);
    const ch = channel('chat');
    s.send(JSON.stringify({ id: 2, subscribe: { channel: ch } }));
    await s.next(1);
    let id = 3;
    for (const b of FAILURES) {
      service.set('publish', b);
      const from = s.frames.length;
      s.send(JSON.stringify({ id, publish: { channel: ch, data: { text: 'x' } } }));
      expect(JSON.parse(await s.next(from)), String(b)).toEqual({ id: id++, error: INTERNAL });
    }
    service.set('publish', () => ({ error: { code: 1403, message: 'muted', temporary: true } }));
    const from = s.frames.length;
    s.send(JSON.stringify({ id, publish: { channel: ch, data: { text: 'x' } } }));
    expect(JSON.parse(await s.next(from))).toEqual({ id, error: { code: 1403, message: 'muted', temporary: true } });
    expect((await server.presence.channels!.history(ch, { limit: -1 })).publications).toEqual([]);
    service.set('publish', () => ({ disconnect: { code: 4000, reason: 'slow down' } }));
    s.send(JSON.stringify({ id: id + 1, publish: { channel: ch, data: { text: 'x' } } }));
    expect(await s.closed).toEqual({ code: 4000, reason: 'slow down' });
    expect((await server.presence.channels!.history(ch, { limit: -1 })).publications).toEqual([]);
  });

  it('Socket.IO clients go through the same subscribe and publish proxies', async () => {
    const namespaces = [{ name: 'room', proxy_subscribe: true, proxy_publish: true, allow_subscribe_for_client: true, allow_publish_for_subscriber: true, history_size: 10, history_ttl: '60s' }];
    const { service, ws, url } = await setup({ namespaces });
    const sock = await connect(url, { auth: { token: await token({ sub: 'ada' }) } });
    const ch = channel('room');
    expect(await request(sock, 'channel:subscribe', { channel: ch })).toMatchObject({ ok: true, channel: ch });
    expect(service.of('subscribe')[0]!.body).toMatchObject({ transport: 'socket.io', protocol: 'json', user: 'ada', channel: ch, client: sock.id });
    expect(await request(sock, 'channel:subscribe', { channel: 'room:secret' })).toEqual({ ok: false, error: { code: 'forbidden', message: 'permission denied' } });
    service.set('subscribe', 'status500');
    expect(await request(sock, 'channel:subscribe', { channel: channel('room') })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    service.set('subscribe', undefined);

    // A Centrifugo subscriber of the same channel receives what the Socket.IO client publishes through the proxy.
    const c = client(ws, { token: await token({ sub: 'bob' }) });
    c.connect();
    const sub = c.newSubscription(ch);
    const seen: PublicationContext[] = publications(sub);
    sub.subscribe();
    await sub.ready(3_000);
    expect(await request(sock, 'channel:publish', { channel: ch, data: { text: 'from socket.io' } })).toMatchObject({ ok: true, offset: 1 });
    expect(service.of('publish')[0]!.body).toMatchObject({ transport: 'socket.io', user: 'ada', channel: ch, data: { text: 'from socket.io' } });
    await waitLength(seen, 1);
    // The proxy's replacement data is what is published, on Socket.IO as on Centrifugo.
    expect(seen[0]!.data).toEqual({ text: 'from socket.io', by: 'ada' });
    expect(await request(sock, 'channel:publish', { channel: ch, data: { text: ' ' } })).toEqual({ ok: false, error: { code: 'forbidden', message: 'bad message' } });
    service.set('publish', 'slow');
    expect(await request(sock, 'channel:publish', { channel: ch, data: { text: 'late' } })).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toHaveLength(1);
    await waitFor(() => (sock.connected ? true : undefined), { what: 'the socket still connected' });
  });
});
