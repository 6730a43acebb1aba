import type { ProxyDef, ProxyDefs } from '../extensions/proxy/settings.js';
import { CentrifugoConfigError, type LimitName, type RawSettings } from './centrifugo-config.js';

/** Reads a config object by path and remembers what was read, so that everything else can be named as ignored. */
export class Reader {
  private readonly read = new Set<string>();
  constructor(private readonly root: Record<string, unknown>) {}

  get(path: string): unknown {
    this.read.add(path);
    let v: unknown = this.root;
    for (const part of path.split('.')) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      v = (v as Record<string, unknown>)[part];
    }
    return v;
  }

  /** Options set to a value other than their zero value that nothing read, with why they are not used. */
  unread(): string[] {
    const out: string[] = [];
    const walk = (v: unknown, path: string): void => {
      if (this.read.has(path)) return;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
        for (const [k, child] of Object.entries(v)) walk(child, path === '' ? k : `${path}.${k}`);
        return;
      }
      if (v === false || v === 0 || v === '' || v === null || (Array.isArray(v) && v.length === 0)) return;
      out.push(`${path}${reason(path)}`);
    };
    walk(this.root, '');
    return out;
  }
}

const REASONS: Array<[RegExp, string]> = [
  [/^(engine|broker|presence_manager|redis|redis_|nats|tarantool)/, 'storage is REDIS_URL / REDIS_CLUSTER_NODES here'],
  [/^(admin|prometheus|health|swagger|debug|pprof|graphite)/, 'not applicable: /health, /ready and /metrics are always on, there is no admin UI'],
  [/^(log|log_level|log_file)/, 'use LOG_LEVEL'],
  [/^(http_server|port|address|internal_port|internal_address)/, 'use PORT and HOST'],
  [/^(tls|http3|webtransport|uni_|sse|http_stream|emulation|sockjs|grpc_api|uni_grpc)/, 'transport not supported (WebSocket JSON only; terminate TLS in front)'],
  [/insecure/, 'not supported: tokens or the connect proxy decide'],
  [/grpc/, 'gRPC proxies are not supported'],
];

function reason(path: string): string {
  const found = REASONS.find(([re]) => re.test(path));
  return ` (${found ? found[1] : 'not supported'})`;
}

function strings(v: unknown, name: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new CentrifugoConfigError(`${name} must be a list of strings`);
  return v as string[];
}

function bool(v: unknown, name: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new CentrifugoConfigError(`${name} must be true or false`);
  return v;
}

function text(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new CentrifugoConfigError(`${name} must be a string`);
  return v;
}

function map(v: unknown, name: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((s) => typeof s !== 'string')) throw new CentrifugoConfigError(`${name} must be an object of strings`);
  return v as Record<string, string>;
}

function list(v: unknown, name: string): Array<Record<string, unknown>> {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((e) => typeof e !== 'object' || e === null || Array.isArray(e))) throw new CentrifugoConfigError(`${name} must be a list of objects`);
  return v as Array<Record<string, unknown>>;
}

const PROXY_KEYS_V6 = new Set(['name', 'enabled', 'endpoint', 'timeout', 'http_headers', 'emulated_headers', 'include_connection_meta', 'binary_encoding', 'http']);

/** A v6 proxy object (`client.proxy.connect`, `channel.proxy.subscribe`, `proxies[i]`). */
function proxyV6(o: Record<string, unknown> | undefined, where: string, ignored: string[] | undefined): ProxyDef | undefined {
  if (!o) return undefined;
  const http = (o['http'] ?? {}) as Record<string, unknown>;
  if (ignored) {
    for (const [k, v] of Object.entries(o)) if (!PROXY_KEYS_V6.has(k) && v !== false && v !== '' && v !== null) ignored.push(`${where}.${k}${reason(k)}`);
    for (const k of Object.keys(http)) if (k !== 'static_headers') ignored.push(`${where}.http.${k} (not supported)`);
  }
  return {
    where,
    enabled: bool(o['enabled'], `${where}.enabled`),
    endpoint: text(o['endpoint'], `${where}.endpoint`),
    timeout: o['timeout'] as string | number | undefined,
    http_headers: strings(o['http_headers'], `${where}.http_headers`),
    emulated_headers: strings(o['emulated_headers'], `${where}.emulated_headers`),
    static_headers: map(http['static_headers'], `${where}.http.static_headers`),
    include_connection_meta: bool(o['include_connection_meta'], `${where}.include_connection_meta`),
    binary_encoding: bool(o['binary_encoding'], `${where}.binary_encoding`),
  };
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

const TOKEN_KEYS = ['hmac_secret_key', 'rsa_public_key', 'ecdsa_public_key', 'jwks_public_endpoint', 'issuer', 'audience'] as const;
const LIMITS_V6: Record<LimitName, string> = {
  pingIntervalMs: 'client.ping_interval',
  pongTimeoutMs: 'client.pong_timeout',
  staleCloseDelayMs: 'client.stale_close_delay',
  expiredCloseDelayMs: 'client.expired_close_delay',
  maxChannelsPerConnection: 'client.channel_limit',
  maxOutboundBytes: 'client.queue_max_size',
  historyMaxLimit: 'client.history_max_publication_limit',
  maxMessageBytes: 'websocket.message_size_limit',
};

/** Reads a Centrifugo v6 config (`client`, `channel`, `rpc`, `http_api`, `proxies` sections). */
export function readV6(json: Record<string, unknown>): { raw: RawSettings; reader: Reader } {
  const r = new Reader(json);
  const ignored: string[] = [];
  const raw: RawSettings = { token: {}, limits: {}, channel: undefined, proxies: { named: new Map(), rpc: { namespaces: new Map(), every: false, boundary: ':' } } };
  for (const k of TOKEN_KEYS) {
    const name = `client.token.${k}`;
    const value = r.get(name);
    if (value !== undefined) raw.token[k] = { value, name };
  }
  if (r.get('http_api.key') !== undefined) raw.apiKey = { value: r.get('http_api.key'), name: 'http_api.key' };
  if (r.get('client.allowed_origins') !== undefined) raw.allowedOrigins = { value: r.get('client.allowed_origins'), name: 'client.allowed_origins' };
  for (const [k, name] of Object.entries(LIMITS_V6) as Array<[LimitName, string]>) {
    const value = r.get(name);
    if (value !== undefined) raw.limits[k] = { value, name };
  }
  const channel = obj(json['channel']);
  if (channel && ('without_namespace' in channel || 'namespaces' in channel)) {
    raw.channel = { channel: { without_namespace: r.get('channel.without_namespace') ?? {}, namespaces: r.get('channel.namespaces') ?? [], history_meta_ttl: r.get('channel.history_meta_ttl') } };
  }
  const p = raw.proxies;
  const take = (path: string): Record<string, unknown> | undefined => obj(r.get(path));
  p.connect = proxyV6(take('client.proxy.connect'), 'client.proxy.connect', ignored);
  p.refresh = proxyV6(take('client.proxy.refresh'), 'client.proxy.refresh', ignored);
  // v6: the connect and refresh proxies are on only with `enabled: true`.
  for (const d of [p.connect, p.refresh]) if (d) d.enabled ??= false;
  p.subscribe = proxyV6(take('channel.proxy.subscribe'), 'channel.proxy.subscribe', ignored);
  p.publish = proxyV6(take('channel.proxy.publish'), 'channel.proxy.publish', ignored);
  p.subRefresh = proxyV6(take('channel.proxy.sub_refresh'), 'channel.proxy.sub_refresh', ignored);
  list(r.get('proxies'), 'proxies').forEach((e, i) => {
    const name = text(e['name'], `proxies[${i}].name`);
    if (!name) throw new CentrifugoConfigError(`proxies[${i}] needs a name`);
    p.named.set(name, proxyV6(e, `proxies[${i}]`, ignored)!);
  });
  p.rpc.proxy = proxyV6(take('rpc.proxy'), 'rpc.proxy', ignored);
  const rpcName = (o: Record<string, unknown> | undefined, where: string): string | undefined =>
    bool(o?.['proxy_enabled'], `${where}.proxy_enabled`) ? (text(o?.['proxy_name'], `${where}.proxy_name`) || 'default') : undefined;
  p.rpc.namespaces.set('', rpcName(take('rpc.without_namespace'), 'rpc.without_namespace'));
  list(r.get('rpc.namespaces'), 'rpc.namespaces').forEach((e, i) => {
    const name = text(e['name'], `rpc.namespaces[${i}].name`);
    if (!name) throw new CentrifugoConfigError(`rpc.namespaces[${i}] needs a name`);
    p.rpc.namespaces.set(name, rpcName(e, `rpc.namespaces[${i}]`));
  });
  p.rpc.boundary = text(r.get('rpc.namespace_boundary'), 'rpc.namespace_boundary') || ':';
  return { raw, reader: withExtra(r, ignored) };
}

/** v5 namespace options (top-level ones apply to channels without a namespace). */
const V5_NAMESPACE_KEYS = new Set([
  'presence', 'join_leave', 'force_push_join_leave', 'history_size', 'history_ttl', 'history_meta_ttl', 'force_recovery', 'allow_recovery', 'force_positioning',
  'allow_positioning', 'force_recovery_mode', 'allow_subscribe_for_client', 'allow_subscribe_for_anonymous', 'allow_publish_for_client', 'allow_publish_for_subscriber',
  'allow_publish_for_anonymous', 'allow_presence_for_client', 'allow_presence_for_subscriber', 'allow_presence_for_anonymous', 'allow_history_for_client',
  'allow_history_for_subscriber', 'allow_history_for_anonymous', 'allow_user_limited_channels', 'channel_regex', 'proxy_subscribe', 'proxy_publish', 'proxy_sub_refresh',
  'subscribe_proxy_name', 'publish_proxy_name', 'sub_refresh_proxy_name',
]);

/** v5 namespace options in v6 names: `proxy_subscribe` → `subscribe_proxy_enabled`; in granular mode a proxy name enables its proxy. */
export function namespaceV5(o: Record<string, unknown>, granular: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const kind = /^proxy_(subscribe|publish|sub_refresh)$/.exec(k)?.[1];
    if (kind) out[`${kind}_proxy_enabled`] = v;
    else out[k] = v;
  }
  if (granular) for (const kind of ['subscribe', 'publish', 'sub_refresh']) if (typeof o[`${kind}_proxy_name`] === 'string' && o[`${kind}_proxy_name`] !== '') out[`${kind}_proxy_enabled`] = true;
  return out;
}

const LIMITS_V5: Record<LimitName, string> = {
  pingIntervalMs: 'ping_interval',
  pongTimeoutMs: 'pong_timeout',
  staleCloseDelayMs: 'client_stale_close_delay',
  expiredCloseDelayMs: 'client_expired_close_delay',
  maxChannelsPerConnection: 'client_channel_limit',
  maxOutboundBytes: 'client_queue_max_size',
  historyMaxLimit: 'client_history_max_publication_limit',
  maxMessageBytes: 'websocket_message_size_limit',
};

/** Reads a Centrifugo v5 config (flat keys; `proxy_*_endpoint`, or `granular_proxy_mode` with `proxies`). */
export function readV5(json: Record<string, unknown>): { raw: RawSettings; reader: Reader } {
  const r = new Reader(json);
  const ignored: string[] = [];
  const raw: RawSettings = { token: {}, limits: {}, channel: undefined, proxies: { named: new Map(), rpc: { namespaces: new Map(), every: false, boundary: ':' } } };
  for (const k of TOKEN_KEYS) {
    const name = `token_${k === 'jwks_public_endpoint' ? 'jwks_public_endpoint' : k}`;
    const value = r.get(name);
    if (value !== undefined) raw.token[k] = { value, name };
  }
  if (r.get('api_key') !== undefined) raw.apiKey = { value: r.get('api_key'), name: 'api_key' };
  if (r.get('allowed_origins') !== undefined) raw.allowedOrigins = { value: r.get('allowed_origins'), name: 'allowed_origins' };
  for (const [k, name] of Object.entries(LIMITS_V5) as Array<[LimitName, string]>) {
    const value = r.get(name);
    if (value !== undefined) raw.limits[k] = { value, name };
  }
  const granular = bool(r.get('granular_proxy_mode'), 'granular_proxy_mode') === true;
  const top = Object.fromEntries(Object.entries(json).filter(([k]) => V5_NAMESPACE_KEYS.has(k)));
  for (const k of Object.keys(top)) r.get(k);
  const namespaces = list(r.get('namespaces'), 'namespaces');
  if (Object.keys(top).length > 0 || namespaces.length > 0) {
    raw.channel = { channel: { without_namespace: namespaceV5(top, granular), namespaces: namespaces.map((n) => namespaceV5(n, granular)), history_meta_ttl: r.get('global_history_meta_ttl') } };
  }
  const p = raw.proxies;
  p.rpc.boundary = text(r.get('rpc_namespace_boundary'), 'rpc_namespace_boundary') || ':';
  const headers = strings(r.get('proxy_http_headers'), 'proxy_http_headers');
  const shared = {
    // v5 forwarded the listed names from the upgrade request and from the client's emulated headers alike.
    http_headers: headers,
    emulated_headers: headers,
    static_headers: map(r.get('proxy_static_http_headers'), 'proxy_static_http_headers'),
    include_connection_meta: bool(r.get('proxy_include_connection_meta'), 'proxy_include_connection_meta'),
    binary_encoding: bool(r.get('proxy_binary_encoding'), 'proxy_binary_encoding'),
  };
  if (!granular) {
    const def = (kind: string): ProxyDef | undefined => {
      const endpoint = text(r.get(`proxy_${kind}_endpoint`), `proxy_${kind}_endpoint`);
      const timeout = r.get(`proxy_${kind}_timeout`) as string | number | undefined;
      return endpoint ? { where: `proxy_${kind}_endpoint`, enabled: true, endpoint, timeout, ...shared } : undefined;
    };
    p.connect = def('connect');
    p.refresh = def('refresh');
    p.subscribe = def('subscribe');
    p.publish = def('publish');
    p.subRefresh = def('sub_refresh');
    p.rpc.proxy = def('rpc');
    if (p.rpc.proxy) p.rpc.every = true;
    return { raw, reader: withExtra(r, ignored) };
  }
  list(r.get('proxies'), 'proxies').forEach((e, i) => {
    const where = `proxies[${i}]`;
    const name = text(e['name'], `${where}.name`);
    if (!name) throw new CentrifugoConfigError(`${where} needs a name`);
    for (const k of Object.keys(e)) if (!['name', 'endpoint', 'timeout', 'http_headers', 'static_http_headers', 'include_connection_meta', 'binary_encoding'].includes(k)) ignored.push(`${where}.${k}${reason(k)}`);
    const hs = strings(e['http_headers'], `${where}.http_headers`);
    p.named.set(name, {
      where,
      enabled: true,
      endpoint: text(e['endpoint'], `${where}.endpoint`),
      timeout: e['timeout'] as string | number | undefined,
      http_headers: hs,
      emulated_headers: hs,
      static_headers: map(e['static_http_headers'], `${where}.static_http_headers`),
      include_connection_meta: bool(e['include_connection_meta'], `${where}.include_connection_meta`),
      binary_encoding: bool(e['binary_encoding'], `${where}.binary_encoding`),
    });
  });
  const byName = (key: string): ProxyDef | undefined => {
    const name = text(r.get(key), key);
    if (!name) return undefined;
    const d = p.named.get(name);
    if (!d) throw new CentrifugoConfigError(`${key}: proxy '${name}' is not in proxies[]`);
    return d;
  };
  p.connect = byName('connect_proxy_name');
  p.refresh = byName('refresh_proxy_name');
  p.rpc.namespaces.set('', text(r.get('rpc_proxy_name'), 'rpc_proxy_name') || undefined);
  list(r.get('rpc_namespaces'), 'rpc_namespaces').forEach((e, i) => {
    const name = text(e['name'], `rpc_namespaces[${i}].name`);
    if (!name) throw new CentrifugoConfigError(`rpc_namespaces[${i}] needs a name`);
    p.rpc.namespaces.set(name, text(e['rpc_proxy_name'], `rpc_namespaces[${i}].rpc_proxy_name`) || undefined);
  });
  return { raw, reader: withExtra(r, ignored) };
}

/** The reader, with options found ignored while reading added to its list. */
function withExtra(r: Reader, extra: string[]): Reader {
  const unread = r.unread.bind(r);
  r.unread = () => [...extra, ...unread()];
  return r;
}

export type { ProxyDefs };
