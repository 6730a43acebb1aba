import { describe, expect, it } from 'vitest';
import type { DisconnectedContext } from 'centrifuge';
import { NodeProcess, connect, testKeyPair, waitFor } from 'realtime-message-testing';
import { loadCentrifugoSettings } from '../src/app/centrifugo-config.js';
import { SECRET, centrifugoServer, channel, channelsConfig, client, token } from './centrifugo-fixtures.js';

const API_KEY = 'centrifugo-api-key-0123456789';

describe('CENTRIFUGO_CONFIG: reading a Centrifugo config.json', () => {
  it('v5 (flat): token keys, api_key, origins, limits, namespaces with proxies; every ignored option is named', () => {
    const path = channelsConfig({
      token_hmac_secret_key: SECRET,
      token_audience: 'app',
      token_issuer: 'auth.example',
      api_key: API_KEY,
      allowed_origins: ['https://app.example.com', 'https://*.example.org'],
      ping_interval: '10s',
      pong_timeout: '-1',
      client_channel_limit: 5,
      websocket_message_size_limit: 32768,
      presence: true,
      allow_subscribe_for_client: true,
      proxy_subscribe_endpoint: 'http://127.0.0.1:9/subscribe',
      proxy_subscribe_timeout: '2s',
      namespaces: [{ name: 'chat', proxy_subscribe: true, history_size: 10, history_ttl: '60s', delta_publish: true }],
      engine: 'redis',
      redis_address: 'localhost:6379',
      admin: true,
      admin_password: 'x',
      client_insecure: false,
    });
    const s = loadCentrifugoSettings({ CENTRIFUGO_CONFIG: path })!;
    expect(s).toMatchObject({ version: 5, token: { secret: SECRET, audience: 'app', issuer: 'auth.example' }, tokenSource: 'token_hmac_secret_key', apiKey: API_KEY, allowedOrigins: ['https://app.example.com'] });
    expect(s.limits).toEqual({ pingIntervalMs: 10_000, pongTimeoutMs: 0, maxChannelsPerConnection: 5, maxMessageBytes: 32_768 });
    expect(s.namespaces!.names).toEqual(['', 'chat']);
    expect(s.namespaces!.lookup('chat:1')!.options).toMatchObject({ subscribeProxy: 'default', history: true });
    expect(s.namespaces!.lookup('x')!.options).toMatchObject({ presence: true, allowSubscribeForClient: true, subscribeProxy: undefined });
    expect(s.proxies!.subscribe!.get('default')).toMatchObject({ endpoint: 'http://127.0.0.1:9/subscribe', timeoutMs: 2_000 });
    // Zero values (client_insecure: false) are not worth a warning; everything else is named.
    expect(s.ignored).toEqual(
      expect.arrayContaining([expect.stringMatching(/^engine \(storage is REDIS_URL/), expect.stringMatching(/^redis_address /), expect.stringMatching(/^admin \(/), expect.stringMatching(/^admin_password /), expect.stringContaining("allowed_origins entry 'https://*.example.org'"), expect.stringContaining('namespaces[0].delta_publish')]),
    );
    expect(s.ignored.join()).not.toContain('client_insecure');
  });

  it('v6 (sections): client.token, http_api.key, client.allowed_origins, client limits, channel namespaces, named proxies, rpc', () => {
    const { publicKey } = testKeyPair({ type: 'rsa', modulusLength: 2048 });
    const path = channelsConfig({
      client: { token: { rsa_public_key: publicKey.export({ type: 'spki', format: 'pem' }), user_id_claim: 'uid' }, allowed_origins: ['*'], stale_close_delay: '5s', queue_max_size: 2_000_000, proxy: { connect: { enabled: true, endpoint: 'https://backend.example/connect', timeout: '3s', http_headers: ['Cookie'], emulated_headers: ['Authorization'], http: { static_headers: { 'X-From': 'centrifugo' } } } } },
      http_api: { key: API_KEY },
      channel: { namespaces: [{ name: 'chat', publish_proxy_enabled: true, publish_proxy_name: 'moderation', presence: true }] },
      proxies: [{ name: 'moderation', endpoint: 'http://127.0.0.1:9/publish', include_connection_meta: true }],
      rpc: { proxy: { endpoint: 'http://127.0.0.1:9/rpc' }, without_namespace: { proxy_enabled: true } },
      prometheus: { enabled: true },
    });
    const s = loadCentrifugoSettings({ CENTRIFUGO_CONFIG: path })!;
    expect(s).toMatchObject({ version: 6, tokenSource: 'client.token.rsa_public_key', apiKey: API_KEY, allowedOrigins: 'any', limits: { staleCloseDelayMs: 5_000, maxOutboundBytes: 2_000_000 } });
    expect(s.proxies!.connect).toMatchObject({ endpoint: 'https://backend.example/connect', timeoutMs: 3_000, httpHeaders: ['cookie'], emulatedHeaders: ['authorization'], staticHeaders: { 'X-From': 'centrifugo' } });
    expect(s.proxies!.publish!.get('moderation')).toMatchObject({ endpoint: 'http://127.0.0.1:9/publish', includeConnectionMeta: true });
    expect(s.proxies!.rpc!.namespaces.get('')).toBe('default');
    expect(s.ignored).toEqual(expect.arrayContaining([expect.stringMatching(/^client\.token\.user_id_claim /), expect.stringMatching(/^prometheus\.enabled /)]));
  });

  it("Centrifugo's environment variables work without a file and win over one (v5 and v6 names)", () => {
    expect(loadCentrifugoSettings({})).toBeUndefined();
    expect(loadCentrifugoSettings({ CENTRIFUGO_TOKEN_HMAC_SECRET_KEY: SECRET })).toMatchObject({ token: { secret: SECRET }, tokenSource: 'CENTRIFUGO_TOKEN_HMAC_SECRET_KEY' });
    const path = channelsConfig({ client: { token: { hmac_secret_key: 'x'.repeat(40) } }, http_api: { key: 'k'.repeat(20) } });
    const s = loadCentrifugoSettings({ CENTRIFUGO_CONFIG: path, CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY: SECRET, CENTRIFUGO_HTTP_API_KEY: API_KEY, CENTRIFUGO_CLIENT_ALLOWED_ORIGINS: 'https://a.example https://b.example' })!;
    expect(s).toMatchObject({ token: { secret: SECRET }, apiKey: API_KEY, allowedOrigins: ['https://a.example', 'https://b.example'] });
    const p = loadCentrifugoSettings({ CENTRIFUGO_PROXY_CONNECT_ENDPOINT: 'http://127.0.0.1:9/connect', CENTRIFUGO_PROXY_CONNECT_TIMEOUT: '250ms', CENTRIFUGO_PROXY_HTTP_HEADERS: 'Cookie X-Real-Ip' })!;
    expect(p.proxies!.connect).toMatchObject({ timeoutMs: 250, httpHeaders: ['cookie', 'x-real-ip'] });
    // v6: the connect proxy needs ENABLED as well.
    expect(loadCentrifugoSettings({ CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT: 'http://127.0.0.1:9/connect' })!.proxies!.connect).toBeUndefined();
    const ns = loadCentrifugoSettings({ CENTRIFUGO_CHANNEL_NAMESPACES: JSON.stringify([{ name: 'chat', presence: true }]) })!;
    expect(ns.namespaces!.names).toEqual(['', 'chat']);
  });

  it('refuses what it cannot run with, naming the option: a switched-on proxy without an endpoint, gRPC, two token keys, a short key', () => {
    const bad = (config: unknown, env: Record<string, string> = {}): string => {
      try {
        loadCentrifugoSettings({ CENTRIFUGO_CONFIG: channelsConfig(config), ...env });
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(bad({ namespaces: [{ name: 'chat', proxy_subscribe: true }] })).toMatch(/namespace 'chat' enables the subscribe proxy, but channel\.proxy\.subscribe\.endpoint \(v5: proxy_subscribe_endpoint\) is not set/);
    expect(bad({ channel: { namespaces: [{ name: 'chat', subscribe_proxy_enabled: true, subscribe_proxy_name: 'nope' }] } })).toMatch(/subscribe proxy 'nope' is not in proxies\[\]/);
    expect(bad({ proxy_connect_endpoint: 'grpc://backend:10000' })).toMatch(/proxy_connect_endpoint\.endpoint must be an http:\/\/ or https:\/\/ URL .*gRPC proxies are not supported/);
    expect(bad({ token_hmac_secret_key: SECRET, token_jwks_public_endpoint: 'https://x/jwks' })).toMatch(/set only one of token_hmac_secret_key, token_jwks_public_endpoint/);
    expect(bad({ token_hmac_secret_key: 'secret' })).toMatch(/token_hmac_secret_key must be at least 32 bytes/);
    expect(bad({ client: { ping_interval: 'soon' } })).toMatch(/client\.ping_interval must be a duration/);
    expect(bad({ namespaces: [{ name: 'x' }] })).toMatch(/channel options: namespaces\[0\]\.name/);
  });
});

describe('CENTRIFUGO_CONFIG in the standalone server', () => {
  it('token keys from the config are one setting for every transport; http_api.key turns the server API on', async () => {
    const path = channelsConfig({ client: { token: { hmac_secret_key: SECRET } }, http_api: { key: API_KEY }, channel: { without_namespace: { allow_subscribe_for_client: true, history_size: 10, history_ttl: '60s', allow_history_for_subscriber: true } } });
    const { ws, url } = await centrifugoServer({ CENTRIFUGO_CONFIG: path });
    // Socket.IO without a token is refused; with one it connects.
    await expect(connect(url)).rejects.toMatchObject({ data: { code: 'unauthorized' } });
    await connect(url, { auth: { token: await token({ sub: 'ada' }) } });
    // Centrifugo without a token: 3501; with one: connected.
    const none = client(ws);
    const gone = new Promise<DisconnectedContext>((resolve) => none.once('disconnected', resolve));
    none.connect();
    expect(await gone).toMatchObject({ code: 3501 });
    const c = client(ws, { token: await token({ sub: 'ada' }) });
    c.connect();
    const ch = channel('x').replace('x:', 'plain-');
    const sub = c.newSubscription(ch);
    sub.subscribe();
    await sub.ready(3_000);
    // The server API with the config's key.
    const res = await fetch(`${url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify({ channel: ch, data: { n: 1 } }) });
    expect(await res.json()).toMatchObject({ result: { offset: 1 } });
  });

  it('the real CLI: a missing or non-JSON file stops the start with exit code 2 naming the file; ignored options are warned once by name', async () => {
    const missing = await NodeProcess.start({ CENTRIFUGO_CONFIG: '/nonexistent/config.json', DEMO_DIR: 'off' }, { waitReady: false });
    expect(await missing.waitExit()).toBe(2);
    expect(missing.logs.join('\n')).toContain('CENTRIFUGO_CONFIG=/nonexistent/config.json cannot be read: no such file');
    const dir = channelsConfig({}).replace(/config\.json$/, '');
    const broken = `${dir}broken.json`;
    (await import('node:fs')).writeFileSync(broken, '{ "token_hmac_secret_key": ');
    const notJson = await NodeProcess.start({ CENTRIFUGO_CONFIG: broken, DEMO_DIR: 'off' }, { waitReady: false });
    expect(await notJson.waitExit()).toBe(2);
    expect(notJson.logs.join('\n')).toMatch(new RegExp(`CENTRIFUGO_CONFIG=${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not valid JSON`));

    const ok = await NodeProcess.start({ CENTRIFUGO_CONFIG: channelsConfig({ client: { token: { hmac_secret_key: SECRET } }, admin: { enabled: true, password: 'p' }, engine: { type: 'redis' } }), DEMO_DIR: 'off' });
    const warnings = ok.logs.filter((l) => l.includes('option(s) ignored'));
    expect(warnings).toHaveLength(1);
    for (const name of ['admin.enabled', 'admin.password', 'engine.type']) expect(warnings[0]).toContain(name);
    await waitFor(async () => ((await ok.get('/health')).status === 200 ? true : undefined), { what: 'the server up' });
  });
});
