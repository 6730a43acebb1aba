import { parseDuration, type ChannelNamespaces } from '../../core/channels/namespaces.js';
import type { ProxyEndpoint } from './http.js';
import type { CentrifugoProxySettings } from './proxies.js';

/** One proxy as a Centrifugo config writes it (v6 field names; v5 files are read into this shape). */
export interface ProxyDef {
  /** Where the definition came from, for messages (`client.proxy.connect`, `proxies[2]`, `proxy_connect_endpoint`). */
  where: string;
  enabled?: boolean | undefined;
  endpoint?: string | undefined;
  timeout?: string | number | undefined;
  http_headers?: string[] | undefined;
  emulated_headers?: string[] | undefined;
  static_headers?: Record<string, string> | undefined;
  include_connection_meta?: boolean | undefined;
  binary_encoding?: boolean | undefined;
}

/** The proxy parts of a Centrifugo config, version-independent. */
export interface ProxyDefs {
  connect?: ProxyDef | undefined;
  refresh?: ProxyDef | undefined;
  /** `channel.proxy.subscribe` (v5: `proxy_subscribe_endpoint`), the proxy named `default`. */
  subscribe?: ProxyDef | undefined;
  publish?: ProxyDef | undefined;
  subRefresh?: ProxyDef | undefined;
  /** `proxies[]` by name (channel and RPC namespaces refer to them). */
  named: Map<string, ProxyDef>;
  rpc: {
    proxy?: ProxyDef | undefined;
    /** Method namespace ('' = without namespace) → proxy name, undefined when its proxy is off. */
    namespaces: Map<string, string | undefined>;
    /** v5 without granular mode: every method goes to the default RPC proxy. */
    every: boolean;
    boundary: string;
  };
}

/** A proxy setting the server cannot run with; the message names the option. */
export class ProxyConfigError extends Error {
  override readonly name = 'ProxyConfigError';
}

function endpointOf(name: string, d: ProxyDef): ProxyEndpoint {
  const url = d.endpoint ?? '';
  if (!/^https?:\/\//.test(url)) {
    throw new ProxyConfigError(
      url === '' ? `${d.where}: endpoint is not set` : `${d.where}.endpoint must be an http:// or https:// URL (got ${JSON.stringify(url)}; gRPC proxies are not supported)`,
    );
  }
  let timeoutMs = 1_000;
  if (d.timeout !== undefined && d.timeout !== '' && d.timeout !== 0) {
    try {
      timeoutMs = parseDuration(d.timeout, `${d.where}.timeout`);
    } catch (err) {
      throw new ProxyConfigError((err as Error).message);
    }
    if (timeoutMs <= 0) timeoutMs = 1_000;
  }
  return {
    name,
    endpoint: url,
    timeoutMs,
    httpHeaders: (d.http_headers ?? []).map((h) => h.toLowerCase()),
    emulatedHeaders: (d.emulated_headers ?? []).map((h) => h.toLowerCase()),
    staticHeaders: d.static_headers ?? {},
    includeConnectionMeta: d.include_connection_meta === true,
    binaryEncoding: d.binary_encoding === true,
  };
}

/**
 * Turns the proxy definitions into the settings of
 * `centrifugoProxyExtensions`, checking that every namespace that enables a
 * proxy has one to call (Centrifugo refuses to start otherwise; here a
 * switched-on proxy that cannot be called would let the namespace options
 * decide instead, so it is an error too).
 */
export function proxySettings(defs: ProxyDefs, namespaces: ChannelNamespaces): CentrifugoProxySettings {
  const named = new Map<string, ProxyEndpoint>();
  const namedOf = (name: string): ProxyEndpoint | undefined => {
    const d = defs.named.get(name);
    if (!d) return undefined;
    let p = named.get(name);
    if (!p) named.set(name, (p = endpointOf(name, d)));
    return p;
  };
  const enabled = (d: ProxyDef | undefined): ProxyDef | undefined => (d && d.enabled !== false && (d.enabled === true || (d.endpoint ?? '') !== '') ? d : undefined);
  const channelKind = (kind: 'subscribe' | 'publish' | 'sub_refresh', def: ProxyDef | undefined, pick: (n: ReturnType<ChannelNamespaces['lookup']>) => string | undefined): Map<string, ProxyEndpoint> => {
    const out = new Map<string, ProxyEndpoint>();
    for (const nsName of namespaces.names) {
      const probe = nsName === '' ? 'x' : `${nsName}:x`;
      const name = pick(namespaces.lookup(probe));
      if (name === undefined || out.has(name)) continue;
      const where = nsName === '' ? 'channel.without_namespace' : `namespace '${nsName}'`;
      if (name === 'default') {
        const d = enabled(def) ?? def;
        if (!d || (d.endpoint ?? '') === '') throw new ProxyConfigError(`${where} enables the ${kind} proxy, but channel.proxy.${kind}.endpoint (v5: proxy_${kind}_endpoint) is not set`);
        out.set(name, endpointOf('default', d));
      } else {
        const p = namedOf(name);
        if (!p) throw new ProxyConfigError(`${where}: ${kind} proxy '${name}' is not in proxies[] (Centrifugo: "${kind} proxy not found")`);
        out.set(name, p);
      }
    }
    return out;
  };
  const settings: CentrifugoProxySettings = {
    subscribe: channelKind('subscribe', defs.subscribe, (n) => n?.options.subscribeProxy),
    publish: channelKind('publish', defs.publish, (n) => n?.options.publishProxy),
    subRefresh: channelKind('sub_refresh', defs.subRefresh, (n) => n?.options.subRefreshProxy),
  };
  const connect = enabled(defs.connect);
  if (connect) settings.connect = endpointOf('connect', connect);
  const refresh = enabled(defs.refresh);
  if (refresh) settings.refresh = endpointOf('refresh', refresh);
  const rpcProxies = new Map<string, ProxyEndpoint>();
  for (const [nsName, name] of defs.rpc.namespaces) {
    if (name === undefined || rpcProxies.has(name)) continue;
    if (name === 'default') {
      if (!defs.rpc.proxy || (defs.rpc.proxy.endpoint ?? '') === '') throw new ProxyConfigError(`rpc ${nsName === '' ? 'without_namespace' : `namespace '${nsName}'`} enables the RPC proxy, but rpc.proxy.endpoint (v5: proxy_rpc_endpoint) is not set`);
      rpcProxies.set(name, endpointOf('default', defs.rpc.proxy));
    } else {
      const p = namedOf(name);
      if (!p) throw new ProxyConfigError(`rpc namespace '${nsName}': proxy '${name}' is not in proxies[]`);
      rpcProxies.set(name, p);
    }
  }
  if (defs.rpc.every && defs.rpc.proxy) rpcProxies.set('default', endpointOf('default', defs.rpc.proxy));
  if (rpcProxies.size > 0) settings.rpc = { proxies: rpcProxies, namespaces: defs.rpc.namespaces, every: defs.rpc.every ? 'default' : undefined, boundary: defs.rpc.boundary };
  return settings;
}

/** True when the settings call any proxy. */
export function hasProxies(s: CentrifugoProxySettings): boolean {
  return !!(s.connect || s.refresh || s.subscribe?.size || s.publish?.size || s.subRefresh?.size || s.rpc);
}
