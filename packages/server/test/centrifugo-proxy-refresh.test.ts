import { describe, expect, it } from 'vitest';
import { waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, channelsConfig, raw } from './centrifugo-fixtures.js';
import { callbackService, v5Config } from './centrifugo-proxy-fixtures.js';

const now = (): number => Math.floor(Date.now() / 1_000);
const INTERNAL = { code: 100, message: 'internal server error', temporary: true };

describe('Centrifugo refresh, sub_refresh and rpc proxies', () => {
  it('refresh proxy: expiring connections are refreshed on the server (no expires in the reply); a failure gives 60 s; expired closes with 3005', async () => {
    const service = await callbackService();
    const { ws } = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(v5Config(service)) });
    service.set('connect', () => ({ result: { user: 'ada', expire_at: now() + 1, meta: { plan: 'pro' } } }));
    const s = await raw(ws);
    s.send(JSON.stringify({ id: 1, connect: {} }));
    const reply = JSON.parse(await s.next(0)) as { connect: Record<string, unknown> };
    expect(reply.connect['expires']).toBeUndefined();
    expect(reply.connect['ttl']).toBeUndefined();
    await waitFor(() => (service.of('refresh').length >= 1 ? true : undefined), { what: 'a refresh call', timeoutMs: 4_000 });
    expect(service.of('refresh')[0]!.body).toEqual({ client: expect.any(String), transport: 'websocket', protocol: 'json', encoding: 'json', user: 'ada' });
    // The first refresh gave 600 s more; the connection lives on.
    await new Promise((r) => setTimeout(r, 500));
    let closed = false;
    void s.closed.then(() => (closed = true));
    expect(closed).toBe(false);

    // A failing refresh proxy (500) keeps the connection for 60 s; an expired answer ends it.
    service.set('connect', () => ({ result: { user: 'bob', expire_at: now() + 1 } }));
    service.set('refresh', 'status500');
    const t = await raw(ws);
    t.send(JSON.stringify({ id: 1, connect: {} }));
    await t.next(0);
    await waitFor(() => (service.of('refresh').some((c) => c.body.user === 'bob') ? true : undefined), { what: 'bob refreshed', timeoutMs: 4_000 });
    await new Promise((r) => setTimeout(r, 300));
    let tClosed = false;
    void t.closed.then(() => (tClosed = true));
    expect(tClosed).toBe(false);

    service.set('refresh', () => ({ result: { expired: true } }));
    service.set('connect', () => ({ result: { user: 'carol', expire_at: now() + 1 } }));
    const u = await raw(ws);
    u.send(JSON.stringify({ id: 1, connect: {} }));
    await u.next(0);
    expect(await u.closed).toEqual({ code: 3005, reason: 'connection expired' });
    // An error answer is not honoured for refresh: no result, so expired.
    service.set('refresh', () => ({ error: { code: 1000, message: 'x' } }));
    const v = await raw(ws);
    v.send(JSON.stringify({ id: 1, connect: {} }));
    await v.next(0);
    expect(await v.closed).toEqual({ code: 3005, reason: 'connection expired' });
  });

  it('sub_refresh proxy: the subscribe reply has no expires; the server refreshes; expired unsubscribes with 2501', async () => {
    const service = await callbackService();
    const namespaces = [{ name: 'chat', proxy_subscribe: true, proxy_sub_refresh: true }];
    const config = v5Config(service, { namespaces, proxy_sub_refresh_endpoint: `${service.url}/sub_refresh`, proxy_include_connection_meta: true });
    const { ws } = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(config) });
    service.set('connect', () => ({ result: { user: 'ada', meta: { plan: 'pro' } } }));
    service.set('subscribe', () => ({ result: { expire_at: now() + 1 } }));
    const s = await raw(ws);
    const ch = channel('chat');
    s.send(JSON.stringify({ id: 1, connect: {} }), JSON.stringify({ id: 2, subscribe: { channel: ch } }));
    await waitFor(() => (s.frames.join('\n').includes('"id":2') ? true : undefined), { what: 'the subscribe reply' });
    const sub = s.frames.join('\n').split('\n').map((l) => JSON.parse(l) as { id?: number; subscribe?: Record<string, unknown> }).find((m) => m.id === 2)!;
    expect(sub.subscribe).toEqual({});
    // include_connection_meta: the connect proxy's meta travels with every later request.
    expect(service.of('subscribe')[0]!.body.meta).toEqual({ plan: 'pro' });
    await waitFor(() => (service.of('sub_refresh').length >= 1 ? true : undefined), { what: 'a sub_refresh call', timeoutMs: 4_000 });
    expect(service.of('sub_refresh')[0]!.body).toEqual({ client: expect.any(String), transport: 'websocket', protocol: 'json', encoding: 'json', user: 'ada', channel: ch, meta: { plan: 'pro' } });

    // A failing sub_refresh proxy gives the subscription 60 s more: it stays.
    service.set('sub_refresh', 'malformed');
    const failing = channel('chat');
    const before = service.of('sub_refresh').length;
    s.send(JSON.stringify({ id: 4, subscribe: { channel: failing } }));
    await waitFor(() => (service.of('sub_refresh').length > before ? true : undefined), { what: 'the failing sub_refresh call', timeoutMs: 4_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(s.frames.join('\n')).not.toContain('"unsubscribe"');

    service.set('sub_refresh', () => ({ result: { expired: true } }));
    const ch2 = channel('chat');
    const from = s.frames.length;
    s.send(JSON.stringify({ id: 5, subscribe: { channel: ch2 } }));
    await s.next(from);
    const push = await waitFor(() => s.frames.slice(from).join('\n').split('\n').find((l) => l.includes('"unsubscribe"') && l.includes(ch2)), { what: 'the unsubscribe push', timeoutMs: 4_000 });
    expect(JSON.parse(push)).toEqual({ push: { channel: ch2, unsubscribe: { code: 2501, reason: 'subscription expired' } } });
  });

  it('rpc proxy (v5: every method): data back, no data, the error code, 100 for a failure', async () => {
    const service = await callbackService();
    const { ws } = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(v5Config(service)) });
    const s = await raw(ws, { headers: { cookie: 'session=ada' } });
    s.send(JSON.stringify({ id: 1, connect: {} }));
    await s.next(0);
    const ask = async (id: number, method: string, data?: unknown): Promise<unknown> => {
      const from = s.frames.length;
      s.send(JSON.stringify({ id, rpc: { method, data } }));
      return JSON.parse(await s.next(from));
    };
    expect(await ask(2, 'api:echo', { x: 1 })).toEqual({ id: 2, rpc: { data: { echo: { x: 1 }, method: 'api:echo' } } });
    expect(service.of('rpc')[0]!.body).toEqual({ client: expect.any(String), transport: 'websocket', protocol: 'json', encoding: 'json', user: 'ada', method: 'api:echo', data: { x: 1 } });
    expect(await ask(3, 'nothing')).toEqual({ id: 3, rpc: {} });
    expect(await ask(4, 'fail')).toEqual({ id: 4, error: { code: 1001, message: 'rpc failed' } });
    let id = 5;
    for (const b of ['malformed', 'not-envelope', 'status500', 'slow', () => ({ result: { b64data: 5 } }), () => ({ disconnect: { code: 'x' } })] as const) {
      service.set('rpc', b);
      expect(await ask(id, 'x'), String(b)).toEqual({ id: id++, error: INTERNAL });
    }
    service.set('rpc', () => ({ disconnect: { code: 4002, reason: 'go away' } }));
    s.send(JSON.stringify({ id, rpc: { method: 'x' } }));
    expect(await s.closed).toEqual({ code: 4002, reason: 'go away' });
  });

  it('rpc proxy (v6): per-namespace proxy_enabled; an unknown namespace is 104, one without the proxy 108', async () => {
    const service = await callbackService();
    const config = {
      client: { token: { hmac_secret_key: 'centrifugo-test-secret-of-at-least-32-bytes' }, proxy: { connect: { enabled: true, endpoint: `${service.url}/connect`, http_headers: ['Cookie'] } } },
      rpc: { proxy: { endpoint: `${service.url}/rpc`, timeout: '500ms' }, without_namespace: { proxy_enabled: false }, namespaces: [{ name: 'api', proxy_enabled: true }, { name: 'local' }] },
    };
    const { ws } = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(config) });
    const s = await raw(ws, { headers: { cookie: 'session=ada' } });
    s.send(JSON.stringify({ id: 1, connect: {} }));
    await s.next(0);
    const ask = async (id: number, method: string): Promise<unknown> => {
      const from = s.frames.length;
      s.send(JSON.stringify({ id, rpc: { method, data: {} } }));
      return JSON.parse(await s.next(from));
    };
    expect(await ask(2, 'api:echo')).toMatchObject({ id: 2, rpc: { data: { method: 'api:echo' } } });
    expect(await ask(3, 'nope:echo')).toMatchObject({ id: 3, error: { code: 104 } });
    expect(await ask(4, 'local:echo')).toMatchObject({ id: 4, error: { code: 108 } });
    expect(await ask(5, 'echo')).toMatchObject({ id: 5, error: { code: 108 } });
    expect(service.of('rpc')).toHaveLength(1);
  });
});
