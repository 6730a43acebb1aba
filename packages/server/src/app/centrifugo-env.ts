import type { ProxyDef } from '../extensions/proxy/settings.js';
import { CentrifugoConfigError, type RawSettings } from './centrifugo-config.js';
import { namespaceV5 } from './centrifugo-shapes.js';

/**
 * Centrifugo's environment variables for the settings this server reads, in
 * v5 names (`CENTRIFUGO_TOKEN_HMAC_SECRET_KEY`, `CENTRIFUGO_API_KEY`,
 * `CENTRIFUGO_PROXY_CONNECT_ENDPOINT`, ...) and v6 names
 * (`CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY`, `CENTRIFUGO_HTTP_API_KEY`,
 * `CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT`, ...). They win over the file,
 * as in Centrifugo. Lists are space-separated; namespaces are JSON.
 * (`CENTRIFUGO_CLIENT_PING_INTERVAL` and the other client limits are read
 * with the server's own settings, in config.ts.)
 */
type Apply = (raw: RawSettings, value: string, name: string) => void;

const TOKEN = ['hmac_secret_key', 'rsa_public_key', 'ecdsa_public_key', 'jwks_public_endpoint', 'issuer', 'audience'] as const;

function list(value: string): string[] {
  return value.split(/\s+/).filter(Boolean);
}

function json(value: string, name: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new CentrifugoConfigError(`${name} is not valid JSON: ${(err as Error).message}`);
  }
}

function bool(value: string, name: string): boolean {
  if (value !== 'true' && value !== 'false') throw new CentrifugoConfigError(`${name} must be 'true' or 'false'`);
  return value === 'true';
}

type ProxySlot = 'connect' | 'refresh' | 'subscribe' | 'publish' | 'subRefresh' | 'rpc';

function slot(raw: RawSettings, s: ProxySlot, where: string): ProxyDef {
  const p = raw.proxies;
  const get = (): ProxyDef | undefined => (s === 'rpc' ? p.rpc.proxy : p[s]);
  let d = get();
  if (!d) {
    d = { where };
    if (s === 'rpc') p.rpc.proxy = d;
    else p[s] = d;
  }
  return d;
}

const TABLE = new Map<string, Apply>();
for (const k of TOKEN) {
  const set: Apply = (raw, value, name) => void (raw.token[k] = { value, name });
  TABLE.set(`CENTRIFUGO_TOKEN_${k.toUpperCase()}`, set);
  TABLE.set(`CENTRIFUGO_CLIENT_TOKEN_${k.toUpperCase()}`, set);
}
for (const name of ['CENTRIFUGO_API_KEY', 'CENTRIFUGO_HTTP_API_KEY']) TABLE.set(name, (raw, value) => void (raw.apiKey = { value, name }));
for (const name of ['CENTRIFUGO_ALLOWED_ORIGINS', 'CENTRIFUGO_CLIENT_ALLOWED_ORIGINS']) TABLE.set(name, (raw, value) => void (raw.allowedOrigins = { value: list(value), name }));
TABLE.set('CENTRIFUGO_PING_INTERVAL', (raw, value, name) => void (raw.limits.pingIntervalMs = { value, name }));
TABLE.set('CENTRIFUGO_PONG_TIMEOUT', (raw, value, name) => void (raw.limits.pongTimeoutMs = { value, name }));
for (const [name, v5] of [['CENTRIFUGO_NAMESPACES', true], ['CENTRIFUGO_CHANNEL_NAMESPACES', false]] as const) {
  TABLE.set(name, (raw, value) => {
    const parsed = json(value, name);
    if (!Array.isArray(parsed)) throw new CentrifugoConfigError(`${name} must be a JSON array of namespaces`);
    const section = ((raw.channel ??= { channel: {} })['channel'] ??= {}) as Record<string, unknown>;
    section['namespaces'] = v5 ? parsed.map((n: unknown) => (typeof n === 'object' && n !== null ? namespaceV5(n as Record<string, unknown>, false) : n)) : parsed;
  });
}
const KINDS: Array<[ProxySlot, string, string]> = [
  ['connect', 'CONNECT', 'CLIENT_PROXY_CONNECT'],
  ['refresh', 'REFRESH', 'CLIENT_PROXY_REFRESH'],
  ['subscribe', 'SUBSCRIBE', 'CHANNEL_PROXY_SUBSCRIBE'],
  ['publish', 'PUBLISH', 'CHANNEL_PROXY_PUBLISH'],
  ['subRefresh', 'SUB_REFRESH', 'CHANNEL_PROXY_SUB_REFRESH'],
  ['rpc', 'RPC', 'RPC_PROXY'],
];
for (const [s, v5, v6] of KINDS) {
  // v5: the endpoint alone switches a proxy on (and every RPC method goes to the RPC proxy).
  TABLE.set(`CENTRIFUGO_PROXY_${v5}_ENDPOINT`, (raw, value, name) => {
    const d = slot(raw, s, name);
    Object.assign(d, { endpoint: value, enabled: true });
    if (s === 'rpc') raw.proxies.rpc.every = true;
  });
  TABLE.set(`CENTRIFUGO_PROXY_${v5}_TIMEOUT`, (raw, value, name) => void (slot(raw, s, name).timeout = value));
  TABLE.set(`CENTRIFUGO_${v6}_ENDPOINT`, (raw, value, name) => {
    const d = slot(raw, s, name);
    d.endpoint = value;
    // v6: the connect and refresh proxies also need `enabled`.
    if (s === 'connect' || s === 'refresh') d.enabled ??= false;
  });
  TABLE.set(`CENTRIFUGO_${v6}_TIMEOUT`, (raw, value, name) => void (slot(raw, s, name).timeout = value));
  TABLE.set(`CENTRIFUGO_${v6}_HTTP_HEADERS`, (raw, value, name) => void (slot(raw, s, name).http_headers = list(value)));
  TABLE.set(`CENTRIFUGO_${v6}_EMULATED_HEADERS`, (raw, value, name) => void (slot(raw, s, name).emulated_headers = list(value)));
  if (s === 'connect' || s === 'refresh') TABLE.set(`CENTRIFUGO_${v6}_ENABLED`, (raw, value, name) => void (slot(raw, s, name).enabled = bool(value, name)));
}
TABLE.set('CENTRIFUGO_RPC_WITHOUT_NAMESPACE_PROXY_ENABLED', (raw, value, name) => {
  if (bool(value, name)) raw.proxies.rpc.namespaces.set('', raw.proxies.rpc.namespaces.get('') ?? 'default');
  else raw.proxies.rpc.namespaces.set('', undefined);
});
// v5: one list for every proxy, transport and emulated headers alike.
TABLE.set('CENTRIFUGO_PROXY_HTTP_HEADERS', (raw, value, name) => {
  const headers = list(value);
  for (const [s] of KINDS) {
    const d = s === 'rpc' ? raw.proxies.rpc.proxy : raw.proxies[s];
    if (d) Object.assign(d, { http_headers: headers, emulated_headers: headers });
  }
  void name;
});

/** The Centrifugo variables set in `env`, and how to lay them over the file's settings. */
export function centrifugoEnv(env: NodeJS.ProcessEnv): { any: boolean; names: string[]; apply(raw: RawSettings, version: 5 | 6): void } {
  const names = [...TABLE.keys()].filter((n) => (env[n] ?? '').trim() !== '');
  // Headers last: they apply to the proxies the other variables made.
  names.sort((a, b) => Number(a === 'CENTRIFUGO_PROXY_HTTP_HEADERS') - Number(b === 'CENTRIFUGO_PROXY_HTTP_HEADERS'));
  return {
    any: names.length > 0,
    names,
    apply(raw) {
      for (const n of names) TABLE.get(n)!(raw, env[n]!.trim(), n);
    },
  };
}
