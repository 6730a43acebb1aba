import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testKeyPair } from 'realtime-message-testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ChannelNamespaces } from '../src/core/channels/namespaces.js';
import { applyCentrifugoSettings, loadCentrifugoSettings, type CentrifugoConfigTarget, type CentrifugoSettings } from '../src/app/centrifugo-config.js';
import { hasProxies, proxySettings, type ProxyDefs } from '../src/extensions/proxy/settings.js';
import { SECRET, channelsConfig } from './centrifugo-fixtures.js';

/** The settings of a config file (and env), or the message it is refused with. */
const load = (config: unknown, env: Record<string, string> = {}): CentrifugoSettings => loadCentrifugoSettings({ CENTRIFUGO_CONFIG: channelsConfig(config), ...env })!;
function bad(config: unknown | undefined, env: Record<string, string> = {}): string {
  try {
    loadCentrifugoSettings(config === undefined ? env : { CENTRIFUGO_CONFIG: channelsConfig(config), ...env });
  } catch (err) {
    expect((err as Error).name).toBe('CentrifugoConfigError');
    return (err as Error).message;
  }
  return 'no error';
}

describe('Centrifugo config: values of the wrong type are refused with the option name', () => {
  it.each<[string, unknown, RegExp]>([
    ['token key not a string', { token_issuer: 5 }, /: token_issuer must be a string$/],
    ['v6 token key not a string', { client: { token: { hmac_secret_key: 42 } } }, /: client\.token\.hmac_secret_key must be a string$/],
    ['allowed origins not a list', { allowed_origins: 5 }, /: allowed_origins must be a list of origins$/],
    ['allowed origins with a number', { allowed_origins: ['https://a.example', 7] }, /: allowed_origins must be a list of origins$/],
    ['an origin with a path', { allowed_origins: ['https://a.example/app'] }, /: allowed_origins: 'https:\/\/a\.example\/app' is not an origin like https:\/\/app\.example\.com$/],
    ['an origin without a scheme', { client: { allowed_origins: ['app.example.com'] } }, /: client\.allowed_origins: 'app\.example\.com' is not an origin/],
    ['an origin of another scheme', { allowed_origins: ['ftp://a.example'] }, /is not an origin/],
    ['a duration of the wrong type', { ping_interval: true }, /: ping_interval must be a duration such as "25s"$/],
    ['a duration that is not one', { client: { pong_timeout: '5 seconds' } }, /client\.pong_timeout must be a duration such as "300s"/],
    ['a negative duration', { client_stale_close_delay: -5 }, /client_stale_close_delay must be a duration \("300s"\) or seconds >= 0 \(got -5\)/],
    ['a negative integer', { client_channel_limit: -1 }, /: client_channel_limit must be an integer >= 0 \(got -1\)$/],
    ['a fractional integer', { client: { queue_max_size: 1.5 } }, /: client\.queue_max_size must be an integer >= 0 \(got 1\.5\)$/],
    ['an integer that is text', { websocket_message_size_limit: 'big' }, /: websocket_message_size_limit must be an integer >= 0 \(got "big"\)$/],
    ['an integer of the wrong type', { client: { history_max_publication_limit: true } }, /must be an integer >= 0 \(got true\)$/],
    ['a JWKS endpoint that is not http(s)', { token_jwks_public_endpoint: 'https-less://{{tenant}}/jwks' }, /token_jwks_public_endpoint must be an http\(s\) URL \(templated endpoints are not supported\)$/],
    ['a public key that is not PEM', { token_rsa_public_key: 'not a key' }, /token_rsa_public_key is not a PEM public key: /],
    ['an API key too short', { api_key: 'short' }, /: api_key must be 16-256 printable ASCII characters without spaces \(as API_KEY\)$/],
    ['an API key with a space', { http_api: { key: 'a key with spaces in it' } }, /: http_api\.key must be 16-256 printable ASCII/],
    ['header list not a list', { proxy_http_headers: 'Cookie' }, /: proxy_http_headers must be a list of strings$/],
    ['header list with a number', { client: { proxy: { connect: { endpoint: 'http://x/c', http_headers: [1] } } } }, /: client\.proxy\.connect\.http_headers must be a list of strings$/],
    ['a switch that is not boolean', { granular_proxy_mode: 'yes' }, /: granular_proxy_mode must be true or false$/],
    ['v6 enabled not boolean', { client: { proxy: { connect: { enabled: 'true', endpoint: 'http://x/c' } } } }, /: client\.proxy\.connect\.enabled must be true or false$/],
    ['an endpoint not a string', { proxy_connect_endpoint: 5 }, /: proxy_connect_endpoint must be a string$/],
    ['static headers not strings', { proxy_static_http_headers: { 'X-A': 1 } }, /: proxy_static_http_headers must be an object of strings$/],
    ['static headers a list', { channel: { proxy: { subscribe: { endpoint: 'http://x/s', http: { static_headers: ['a'] } } } } }, /channel\.proxy\.subscribe\.http\.static_headers must be an object of strings$/],
    ['namespaces not a list', { namespaces: { chat: {} } }, /: namespaces must be a list of objects$/],
    ['proxies with a number', { http_api: {}, proxies: [1] }, /: proxies must be a list of objects$/],
    ['a v6 proxy without a name', { client: {}, proxies: [{ endpoint: 'http://x/p' }] }, /: proxies\[0\] needs a name$/],
    ['a v6 proxy name not a string', { client: {}, proxies: [{ name: 3 }] }, /: proxies\[0\]\.name must be a string$/],
    ['a v6 rpc namespace without a name', { rpc: { namespaces: [{ proxy_enabled: true }] } }, /: rpc\.namespaces\[0\] needs a name$/],
    ['a v6 rpc proxy_enabled not boolean', { rpc: { without_namespace: { proxy_enabled: 1 } } }, /: rpc\.without_namespace\.proxy_enabled must be true or false$/],
    ['a v5 proxy without a name', { granular_proxy_mode: true, proxies: [{ endpoint: 'http://x/p' }] }, /: proxies\[0\] needs a name$/],
    ['a v5 proxy name that is not in proxies', { granular_proxy_mode: true, proxies: [{ name: 'a', endpoint: 'http://x/a' }], connect_proxy_name: 'b' }, /: connect_proxy_name: proxy 'b' is not in proxies\[\]$/],
    ['a v5 rpc namespace without a name', { granular_proxy_mode: true, rpc_namespaces: [{ rpc_proxy_name: 'a' }] }, /: rpc_namespaces\[0\] needs a name$/],
    ['the v5 rpc boundary not a string', { rpc_namespace_boundary: 1 }, /: rpc_namespace_boundary must be a string$/],
  ])('%s', (_what, config, message) => {
    const m = bad(config);
    expect(m).toMatch(/^CENTRIFUGO_CONFIG=\/.*config\.json: /);
    expect(m).toMatch(message);
  });

  it('the file: a directory, a path through a file, JSON that is not an object', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cf-edge-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    expect(() => loadCentrifugoSettings({ CENTRIFUGO_CONFIG: dir })).toThrow(`CENTRIFUGO_CONFIG=${dir} cannot be read: it is a directory`);
    const file = join(dir, 'file');
    writeFileSync(file, '{}');
    // Neither ENOENT nor EISDIR: the system's message.
    expect(() => loadCentrifugoSettings({ CENTRIFUGO_CONFIG: `${file}/config.json` })).toThrow(/cannot be read: ENOTDIR: not a directory/);
    for (const text of ['[]', '5', 'null', '"config"']) {
      writeFileSync(file, text);
      expect(() => loadCentrifugoSettings({ CENTRIFUGO_CONFIG: file })).toThrow(`CENTRIFUGO_CONFIG=${file} must hold a JSON object (Centrifugo's config.json)`);
    }
    // Only spaces: no file.
    expect(loadCentrifugoSettings({ CENTRIFUGO_CONFIG: '   ' })).toBeUndefined();
  });
});

describe('Centrifugo config: the values accepted', () => {
  it('limits: -1 turns a duration off, numbers are seconds, numeric strings are read; null and empty values count as unset', () => {
    const s = load({ ping_interval: -1, pong_timeout: '3', client_stale_close_delay: 2.5, client_expired_close_delay: '1m30s', client_channel_limit: '7', client_queue_max_size: 0, client_history_max_publication_limit: null, token_issuer: '', token_audience: null, api_key: '' });
    expect(s.limits).toEqual({ pingIntervalMs: 0, pongTimeoutMs: 3_000, staleCloseDelayMs: 2_500, expiredCloseDelayMs: 90_000, maxChannelsPerConnection: 7, maxOutboundBytes: 0 });
    expect(s.token).toEqual({});
    expect(s.apiKey).toBeUndefined();
    expect(s.tokenSource).toBeUndefined();
  });

  it('origins: an empty list is unset, a trailing slash is dropped, a space-separated string is a list; a JWKS URL is the token key', () => {
    expect(load({ allowed_origins: [] }).allowedOrigins).toBeUndefined();
    expect(load({ allowed_origins: 'https://a.example/ http://b.example:8080' }).allowedOrigins).toEqual(['https://a.example', 'http://b.example:8080']);
    const s = load({ client: { token: { jwks_public_endpoint: 'https://auth.example/.well-known/jwks.json', issuer: 'auth', audience: 'app' } } });
    expect(s).toMatchObject({ token: { jwksUrl: 'https://auth.example/.well-known/jwks.json', issuer: 'auth', audience: 'app' }, tokenSource: 'client.token.jwks_public_endpoint' });
    const { publicKey } = testKeyPair({ type: 'ec', namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    // Environment variables carry a PEM with literal \n.
    const ec = loadCentrifugoSettings({ CENTRIFUGO_TOKEN_ECDSA_PUBLIC_KEY: pem.replace(/\n/g, '\\n') })!;
    expect(ec).toMatchObject({ tokenSource: 'CENTRIFUGO_TOKEN_ECDSA_PUBLIC_KEY', token: { publicKey: pem.replace(/\n/g, '\\n') } });
  });

  it('ignored options: empty lists and zero values are not named; unknown v6 proxy keys and http options are, with why', () => {
    const s = load({
      client: { proxy: { connect: { enabled: true, endpoint: 'http://x/connect', grpc_cert_file: 'cert.pem', unknown_off: false, blank: '', nothing: null, http: { static_headers: { A: 'b' }, tls: { enabled: true } } } } },
      some_list: [],
      some_number: 0,
      other_list: ['x'],
    });
    expect(s.ignored).toEqual(expect.arrayContaining(['client.proxy.connect.grpc_cert_file (gRPC proxies are not supported)', 'client.proxy.connect.http.tls (not supported)', 'other_list (not supported)']));
    expect(s.ignored.join('\n')).not.toMatch(/unknown_off|blank|nothing|some_list|some_number|static_headers/);
  });

  it('v6: named proxies, RPC namespaces with their proxies and boundary, timeouts of 0 are the 1 s default', () => {
    const s = load({
      channel: { without_namespace: { sub_refresh_proxy_enabled: true }, proxy: { sub_refresh: { endpoint: 'http://x/sub_refresh', timeout: '0s' } } },
      proxies: [{ name: 'rpc-a', endpoint: 'http://x/rpc-a', timeout: 0 }],
      rpc: { namespace_boundary: '.', namespaces: [{ name: 'a', proxy_enabled: true, proxy_name: 'rpc-a' }, { name: 'b', proxy_enabled: false }, { name: 'c', proxy_enabled: true }], proxy: { endpoint: 'http://x/rpc' } },
    });
    expect(s.proxies!.subRefresh!.get('default')).toMatchObject({ endpoint: 'http://x/sub_refresh', timeoutMs: 1_000 });
    expect(s.proxies!.rpc!.boundary).toBe('.');
    expect([...s.proxies!.rpc!.namespaces]).toEqual([['', undefined], ['a', 'rpc-a'], ['b', undefined], ['c', 'default']]);
    expect(s.proxies!.rpc!.proxies.get('rpc-a')).toMatchObject({ timeoutMs: 1_000 });
    expect(s.proxies!.rpc!.proxies.get('default')).toMatchObject({ endpoint: 'http://x/rpc' });
    expect(s.proxies!.rpc!.every).toBeUndefined();
  });

  it('v5 granular mode: proxies by name, a proxy name enables its proxy, rpc by namespace, unknown proxy keys named', () => {
    const s = load({
      granular_proxy_mode: true,
      proxies: [
        { name: 'auth', endpoint: 'http://x/auth', timeout: '2s', http_headers: ['Cookie'], static_http_headers: { 'X-App': 'a' }, include_connection_meta: true, binary_encoding: true, grpc_tls: true },
        { name: 'chat', endpoint: 'http://x/chat' },
      ],
      connect_proxy_name: 'auth',
      refresh_proxy_name: '',
      rpc_proxy_name: 'chat',
      rpc_namespaces: [{ name: 'admin', rpc_proxy_name: 'auth' }, { name: 'off' }],
      namespaces: [{ name: 'room', subscribe_proxy_name: 'chat', publish_proxy_name: '', sub_refresh_proxy_name: 'auth' }],
    });
    expect(s.proxies!.connect).toMatchObject({ endpoint: 'http://x/auth', timeoutMs: 2_000, httpHeaders: ['cookie'], emulatedHeaders: ['cookie'], staticHeaders: { 'X-App': 'a' }, includeConnectionMeta: true, binaryEncoding: true });
    expect(s.proxies!.refresh).toBeUndefined();
    expect(s.namespaces!.lookup('room:1')!.options).toMatchObject({ subscribeProxy: 'chat', publishProxy: undefined, subRefreshProxy: 'auth' });
    expect([...s.proxies!.subscribe!.keys()]).toEqual(['chat']);
    expect([...s.proxies!.rpc!.namespaces]).toEqual([['', 'chat'], ['admin', 'auth'], ['off', undefined]]);
    expect(s.ignored).toContain('proxies[0].grpc_tls (gRPC proxies are not supported)');
  });

  it('proxy settings refused: a proxy switched on without an endpoint, a bad timeout, RPC without its proxy', () => {
    expect(bad({ client: { proxy: { connect: { enabled: true } } } })).toMatch(/: client\.proxy\.connect: endpoint is not set$/);
    expect(bad({ proxy_connect_endpoint: 'http://x/c', proxy_connect_timeout: 'soon' })).toMatch(/: proxy_connect_endpoint\.timeout must be a duration such as "300s"/);
    expect(bad({ channel: { without_namespace: { subscribe_proxy_enabled: true } } })).toMatch(/: channel\.without_namespace enables the subscribe proxy, but channel\.proxy\.subscribe\.endpoint \(v5: proxy_subscribe_endpoint\) is not set$/);
    // A switched-off proxy with an endpoint still serves a namespace that names it.
    expect(load({ channel: { namespaces: [{ name: 'nn', publish_proxy_enabled: true }], proxy: { publish: { enabled: false, endpoint: 'http://x/p' } } } }).proxies!.publish!.get('default')).toMatchObject({ endpoint: 'http://x/p' });
    expect(bad({ rpc: { without_namespace: { proxy_enabled: true } } })).toMatch(/: rpc without_namespace enables the RPC proxy, but rpc\.proxy\.endpoint \(v5: proxy_rpc_endpoint\) is not set$/);
    expect(bad({ rpc: { namespaces: [{ name: 'a', proxy_enabled: true }] } })).toMatch(/: rpc namespace 'a' enables the RPC proxy/);
    expect(bad({ rpc: { namespaces: [{ name: 'a', proxy_enabled: true, proxy_name: 'ghost' }] } })).toMatch(/: rpc namespace 'a': proxy 'ghost' is not in proxies\[\]$/);
    expect(bad({ granular_proxy_mode: true, rpc_proxy_name: 'ghost' })).toMatch(/: rpc namespace '': proxy 'ghost' is not in proxies\[\]$/);
  });

  it('hasProxies: any kind counts; none does not', () => {
    const none: ProxyDefs = { named: new Map(), rpc: { namespaces: new Map(), every: false, boundary: ':' } };
    const ns = ChannelNamespaces.defaults();
    expect(hasProxies(proxySettings(none, ns))).toBe(false);
    expect(hasProxies(proxySettings({ ...none, refresh: { where: 'r', endpoint: 'http://x/r' } }, ns))).toBe(true);
    const sub = ChannelNamespaces.fromConfig({ channel: { without_namespace: { publish_proxy_enabled: true } } });
    expect(hasProxies(proxySettings({ ...none, publish: { where: 'p', endpoint: 'http://x/p' } }, sub))).toBe(true);
    const sr = ChannelNamespaces.fromConfig({ channel: { without_namespace: { sub_refresh_proxy_enabled: true } } });
    expect(hasProxies(proxySettings({ ...none, subRefresh: { where: 's', endpoint: 'http://x/s' } }, sr))).toBe(true);
    expect(hasProxies(proxySettings({ ...none, rpc: { proxy: { where: 'rpc', endpoint: 'http://x/rpc' }, namespaces: new Map(), every: true, boundary: ':' } }, ns))).toBe(true);
    // v5 without an RPC endpoint: nothing to call.
    expect(proxySettings({ ...none, rpc: { namespaces: new Map(), every: true, boundary: ':' } }, ns).rpc).toBeUndefined();
  });
});

describe("Centrifugo's environment variables", () => {
  it('switches must be true or false; namespaces must be a JSON array', () => {
    expect(bad(undefined, { CENTRIFUGO_CLIENT_PROXY_CONNECT_ENABLED: 'yes' })).toBe("Centrifugo environment: CENTRIFUGO_CLIENT_PROXY_CONNECT_ENABLED must be 'true' or 'false'");
    expect(bad(undefined, { CENTRIFUGO_RPC_WITHOUT_NAMESPACE_PROXY_ENABLED: '1' })).toBe("Centrifugo environment: CENTRIFUGO_RPC_WITHOUT_NAMESPACE_PROXY_ENABLED must be 'true' or 'false'");
    expect(bad(undefined, { CENTRIFUGO_CHANNEL_NAMESPACES: '{"name":"chat"}' })).toBe('Centrifugo environment: CENTRIFUGO_CHANNEL_NAMESPACES must be a JSON array of namespaces');
    expect(bad(undefined, { CENTRIFUGO_NAMESPACES: '[{"name":' })).toMatch(/^Centrifugo environment: CENTRIFUGO_NAMESPACES is not valid JSON: /);
    // An entry that is not an object reaches the namespace check, which names it.
    expect(bad(undefined, { CENTRIFUGO_NAMESPACES: '["chat"]' })).toMatch(/^Centrifugo environment: channel options: namespaces\[0\]\.name must match/);
    // A file's error names the file even when a variable is set too.
    expect(bad({ client: {}, proxies: 'x' }, { CENTRIFUGO_API_KEY: 'k'.repeat(20) })).toMatch(/^CENTRIFUGO_CONFIG=.*: proxies must be a list of objects$/);
  });

  it('v5 namespaces use v5 names; pings; v6 connect and refresh proxies need ENABLED, channel proxies do not', () => {
    const s = loadCentrifugoSettings({
      CENTRIFUGO_NAMESPACES: JSON.stringify([{ name: 'chat', proxy_subscribe: true }]),
      CENTRIFUGO_PROXY_SUBSCRIBE_ENDPOINT: 'http://x/subscribe',
      CENTRIFUGO_PING_INTERVAL: '5s',
      CENTRIFUGO_PONG_TIMEOUT: '-1',
      CENTRIFUGO_CLIENT_PROXY_REFRESH_ENDPOINT: 'http://x/refresh',
      CENTRIFUGO_CLIENT_PROXY_REFRESH_ENABLED: 'true',
      CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT: 'http://x/connect',
      CENTRIFUGO_CLIENT_PROXY_CONNECT_ENABLED: 'false',
      CENTRIFUGO_CLIENT_PROXY_REFRESH_TIMEOUT: '3s',
      CENTRIFUGO_CLIENT_PROXY_REFRESH_HTTP_HEADERS: 'Cookie  Authorization',
      CENTRIFUGO_CLIENT_PROXY_REFRESH_EMULATED_HEADERS: 'X-Token',
    })!;
    expect(s.namespaces!.lookup('chat:1')!.options.subscribeProxy).toBe('default');
    expect(s.proxies!.subscribe!.get('default')).toMatchObject({ endpoint: 'http://x/subscribe' });
    expect(s.limits).toEqual({ pingIntervalMs: 5_000, pongTimeoutMs: 0 });
    expect(s.proxies!.connect).toBeUndefined();
    expect(s.proxies!.refresh).toMatchObject({ endpoint: 'http://x/refresh', timeoutMs: 3_000, httpHeaders: ['cookie', 'authorization'], emulatedHeaders: ['x-token'] });
    const ch = loadCentrifugoSettings({ CENTRIFUGO_CHANNEL_NAMESPACES: JSON.stringify([{ name: 'nn', publish_proxy_enabled: true }]), CENTRIFUGO_CHANNEL_PROXY_PUBLISH_ENDPOINT: 'http://x/publish', CENTRIFUGO_CHANNEL_PROXY_PUBLISH_TIMEOUT: '250ms' })!;
    expect(ch.proxies!.publish!.get('default')).toMatchObject({ endpoint: 'http://x/publish', timeoutMs: 250 });
  });

  it('RPC: v5 sends every method to its endpoint; v6 needs WITHOUT_NAMESPACE_PROXY_ENABLED; the v5 header list reaches every proxy', () => {
    const v5 = loadCentrifugoSettings({ CENTRIFUGO_PROXY_RPC_ENDPOINT: 'http://x/rpc', CENTRIFUGO_PROXY_RPC_TIMEOUT: '2s', CENTRIFUGO_PROXY_REFRESH_ENDPOINT: 'http://x/refresh', CENTRIFUGO_PROXY_HTTP_HEADERS: 'Cookie' })!;
    expect(v5.proxies!.rpc).toMatchObject({ every: 'default' });
    expect(v5.proxies!.rpc!.proxies.get('default')).toMatchObject({ endpoint: 'http://x/rpc', timeoutMs: 2_000, httpHeaders: ['cookie'], emulatedHeaders: ['cookie'] });
    expect(v5.proxies!.refresh).toMatchObject({ httpHeaders: ['cookie'] });
    const on = loadCentrifugoSettings({ CENTRIFUGO_RPC_PROXY_ENDPOINT: 'http://x/rpc6', CENTRIFUGO_RPC_WITHOUT_NAMESPACE_PROXY_ENABLED: 'true' })!;
    expect(on.proxies!.rpc).toMatchObject({ every: undefined });
    expect(on.proxies!.rpc!.namespaces.get('')).toBe('default');
    // A file's without_namespace proxy stays named; the variable turns it off.
    const path = channelsConfig({ proxies: [{ name: 'p', endpoint: 'http://x/p' }], rpc: { without_namespace: { proxy_enabled: true, proxy_name: 'p' } } });
    expect(loadCentrifugoSettings({ CENTRIFUGO_CONFIG: path, CENTRIFUGO_RPC_WITHOUT_NAMESPACE_PROXY_ENABLED: 'true' })!.proxies!.rpc!.namespaces.get('')).toBe('p');
    expect(loadCentrifugoSettings({ CENTRIFUGO_CONFIG: path, CENTRIFUGO_RPC_WITHOUT_NAMESPACE_PROXY_ENABLED: 'false' })!.proxies!.rpc).toBeUndefined();
  });
});

describe('applyCentrifugoSettings: the server’s own variables win', () => {
  const target = (): CentrifugoConfigTarget => ({
    auth: {},
    authMode: 'open',
    apiKey: undefined,
    allowedOrigins: ['https://own.example'],
    channels: { configPath: undefined, namespaces: undefined, maxChannelsPerSocket: 128 },
    centrifugo: { pingIntervalMs: 25_000, pongTimeoutMs: 8_000, staleCloseDelayMs: 10_000, expiredCloseDelayMs: 25_000, maxChannelsPerConnection: 128, maxOutboundBytes: 1, historyMaxLimit: 300, maxMessageBytes: 65_536 },
  });

  it('a token key in both places is a problem; issuer, audience, origins and limits of the server are kept', () => {
    const s = load({ token_hmac_secret_key: SECRET, token_issuer: 'cf-iss', token_audience: 'cf-aud', allowed_origins: ['*'], ping_interval: '5s', pong_timeout: '2s', api_key: 'k'.repeat(20) });
    const c = target();
    const problems = applyCentrifugoSettings(c, s, { AUTH_JWT_PUBLIC_KEY: 'pem', AUTH_JWT_ISSUER: 'own-iss', AUTH_JWT_AUDIENCE: ' own ', ALLOWED_ORIGINS: 'https://own.example', CENTRIFUGO_CLIENT_PING_INTERVAL: '1s' });
    expect(problems).toEqual(["set either AUTH_JWT_PUBLIC_KEY or token_hmac_secret_key (Centrifugo's token key), not both: the server verifies tokens with one key"]);
    expect(c).toMatchObject({ authMode: 'open', auth: {}, allowedOrigins: ['https://own.example'], apiKey: 'k'.repeat(20) });
    expect(c.centrifugo).toMatchObject({ pingIntervalMs: 25_000, pongTimeoutMs: 2_000 });
    const d = target();
    d.apiKey = 'own-api-key-0123456789';
    expect(applyCentrifugoSettings(d, s, { AUTH_JWT_ISSUER: '  ' })).toEqual([]);
    // Blank variables are unset: the config's values apply; '*' lets every origin in.
    expect(d).toMatchObject({ authMode: 'jwt', auth: { secret: SECRET, issuer: 'cf-iss', audience: 'cf-aud' }, allowedOrigins: undefined, apiKey: 'own-api-key-0123456789' });
    expect(d.centrifugo).toMatchObject({ pingIntervalMs: 5_000, pongTimeoutMs: 2_000 });
  });

  it('namespaces from both CHANNELS_CONFIG and the Centrifugo config are a problem; a list of origins is used as is', () => {
    const s = load({ allowed_origins: ['https://a.example'], namespaces: [{ name: 'chat' }] });
    const c = target();
    c.channels.configPath = '/etc/channels.json';
    expect(applyCentrifugoSettings(c, s, {})).toEqual(["set either CHANNELS_CONFIG or CENTRIFUGO_CONFIG's channel options (namespaces), not both"]);
    expect(c.channels.namespaces).toBeUndefined();
    expect(c.allowedOrigins).toEqual(['https://a.example']);
    const d = target();
    expect(applyCentrifugoSettings(d, s, {})).toEqual([]);
    expect(d.channels.namespaces!.names).toEqual(['', 'chat']);
  });
});
