import type { IncomingHttpHeaders } from 'node:http';
import { PresenceError, type JsonValue } from 'realtime-message-protocol';
import { z } from 'zod';
import type { ChannelNamespaces, NamespaceOptions } from '../../core/channels/namespaces.js';
import { CLIENT_ERRORS, CentrifugoDisconnect, CentrifugoError, DISCONNECTS } from '../../transports/centrifugo/codes.js';
import type { CentrifugoConnection } from '../../transports/centrifugo/connection.js';
import type { ActionContext, ActionOutcome, Extension, RefreshOutcome, TransportName } from '../extension.js';
import { ProxyCallError, callProxy, proxyHeaders, type ProxyEndpoint, type ProxyReply } from './http.js';

/** The RPC proxies: which method namespaces call which proxy (Centrifugo's `rpc` section). */
export interface RpcProxySettings {
  /** Proxies by name (`default`: `rpc.proxy`, v5's `proxy_rpc_endpoint`). */
  proxies: ReadonlyMap<string, ProxyEndpoint>;
  /** Method namespace → the proxy it uses (undefined: none); `''` is methods without a namespace. */
  namespaces: ReadonlyMap<string, string | undefined>;
  /** Every method, in any namespace, goes to this proxy (v5 without granular mode). */
  every?: string | undefined;
  /** `rpc.namespace_boundary`. @default ':' */
  boundary?: string | undefined;
}

/** Every HTTP callback proxy of a Centrifugo config. */
export interface CentrifugoProxySettings {
  /** Called for a connect without a token. */
  connect?: ProxyEndpoint | undefined;
  /** Refreshes expiring connections on the server. */
  refresh?: ProxyEndpoint | undefined;
  /** Channel proxies by name; a namespace names one with `subscribe_proxy_name` (and the others), `default` when enabled without a name. */
  subscribe?: ReadonlyMap<string, ProxyEndpoint> | undefined;
  publish?: ReadonlyMap<string, ProxyEndpoint> | undefined;
  subRefresh?: ReadonlyMap<string, ProxyEndpoint> | undefined;
  rpc?: RpcProxySettings | undefined;
}

/** What a proxy request says about the connection. */
interface Facts {
  client: string;
  transport: string;
  user: string;
  meta: JsonValue | undefined;
  transportHeaders: IncomingHttpHeaders;
  emulated: Record<string, string>;
  /** Ends the connection (a `disconnect` answer on Socket.IO). */
  disconnect(): void;
}

function facts(transport: TransportName, connection: unknown, user: string): Facts {
  if (transport === 'centrifugo') {
    const c = connection as CentrifugoConnection;
    return { client: c.client, transport: 'websocket', user, meta: c.meta, transportHeaders: c.transportHeaders, emulated: c.headers, disconnect: () => undefined };
  }
  const s = connection as { id?: string; handshake?: { headers?: IncomingHttpHeaders }; disconnect?(close: boolean): void } | undefined;
  return { client: s?.id ?? '', transport, user, meta: undefined, transportHeaders: s?.handshake?.headers ?? {}, emulated: {}, disconnect: () => s?.disconnect?.(true) };
}

function common(p: ProxyEndpoint, f: Facts): Record<string, unknown> {
  return { client: f.client, transport: f.transport, protocol: 'json', encoding: p.binaryEncoding ? 'binary' : 'json' };
}

/** `data` (raw JSON) or, with binary encoding, `b64data` (base64 of the JSON text); nothing when undefined. */
function dataField(p: ProxyEndpoint, data: unknown): Record<string, unknown> {
  if (data === undefined) return {};
  return p.binaryEncoding ? { b64data: Buffer.from(JSON.stringify(data)).toString('base64') } : { data };
}

function metaField(p: ProxyEndpoint, f: Facts): Record<string, unknown> {
  return p.includeConnectionMeta && f.meta !== undefined ? { meta: f.meta } : {};
}

/** An internal failure in the transport's terms: Centrifugo's 100 (temporary), Socket.IO's `unavailable`. */
function internal(transport: TransportName, kind: string, p: ProxyEndpoint, why: string): Error {
  const message = `${kind} proxy '${p.name}' failed: ${why}`;
  return transport === 'centrifugo' ? new CentrifugoError(CLIENT_ERRORS.internal.code, CLIENT_ERRORS.internal.message, true) : new PresenceError('unavailable', message);
}

/** Calls the proxy; a failed call is Centrifugo's internal error (logged by the caller through `onFailure`). */
async function call(kind: string, p: ProxyEndpoint, f: Facts, body: Record<string, unknown>, transport: TransportName, onFailure: Failure): Promise<ProxyReply> {
  try {
    return await callProxy(p, body, proxyHeaders(p, f.transportHeaders, f.emulated));
  } catch (err) {
    if (!(err instanceof ProxyCallError)) throw err;
    onFailure(kind, p, err.message);
    throw internal(transport, kind, p, err.message);
  }
}

/** A valid WebSocket close code for a proxy's disconnect: 3000-4999 (others would be refused by the WebSocket layer), else 3004. */
function closeCode(code: number): number {
  return code >= 3000 && code <= 4999 ? code : DISCONNECTS.internal.code;
}

/** Honours `disconnect` then `error`, as Centrifugo's connect, subscribe, publish and rpc handlers do. */
function refusal(reply: ProxyReply, transport: TransportName, f: Facts): void {
  if (reply.disconnect) {
    if (transport === 'centrifugo') throw new CentrifugoDisconnect(closeCode(reply.disconnect.code), reply.disconnect.reason);
    setImmediate(() => f.disconnect());
    throw new PresenceError('forbidden', reply.disconnect.reason || `disconnected by the proxy (${reply.disconnect.code})`);
  }
  if (reply.error) {
    if (transport === 'centrifugo') throw new CentrifugoError(reply.error.code, reply.error.message, reply.error.temporary === true);
    throw new PresenceError(reply.error.temporary ? 'unavailable' : 'forbidden', reply.error.message || `refused by the proxy (${reply.error.code})`);
  }
}

const int64 = z.number().int().min(0);
const b64 = z.string();
const BoolValue = z.object({ value: z.boolean() }).loose();
const OverrideSchema = z.object({ presence: BoolValue, join_leave: BoolValue, force_push_join_leave: BoolValue, force_recovery: BoolValue, force_positioning: BoolValue }).partial().loose();
const SubOptionsSchema = z.object({ expire_at: int64, info: z.unknown(), b64info: b64, data: z.unknown(), b64data: b64, override: OverrideSchema }).partial().loose();
const ConnectResultSchema = z
  .object({ user: z.string(), expire_at: int64, info: z.unknown(), b64info: b64, data: z.unknown(), b64data: b64, channels: z.array(z.string()), subs: z.record(z.string(), SubOptionsSchema), meta: z.unknown() })
  .partial()
  .loose();
const RefreshResultSchema = z.object({ expired: z.boolean(), expire_at: int64, info: z.unknown(), b64info: b64, meta: z.unknown() }).partial().loose();
const SubscribeResultSchema = SubOptionsSchema;
const PublishResultSchema = z.object({ data: z.unknown(), b64data: b64, skip_history: z.boolean() }).partial().loose();
const RpcResultSchema = z.object({ data: z.unknown(), b64data: b64 }).partial().loose();

class BadResult extends Error {}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const res = schema.safeParse(value ?? {});
  if (!res.success) throw new BadResult(`result ${res.error.issues[0]?.path.join('.') ?? ''}: ${res.error.issues[0]?.message ?? 'bad shape'}`);
  return res.data;
}

/** `value`, else base64 of JSON text in `base64` (the JSON protocol carries JSON only). */
function raw(value: unknown, base64: string | undefined, what: string): unknown {
  if (value !== undefined) return value;
  if (base64 === undefined || base64 === '') return undefined;
  try {
    return JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    throw new BadResult(`${what} is not base64 of JSON`);
  }
}

/** Logs one failed proxy call (kept in bursts by the server's log summary). */
export type Failure = (kind: string, proxy: ProxyEndpoint, why: string) => void;

export interface ProxyExtensionOptions {
  /** The channel namespaces, whose `subscribe_proxy_enabled` (...) switches say which channels use which proxy. */
  namespaces: ChannelNamespaces;
  /** Told about every failed call (transport error, timeout, non-200, malformed answer). @default nothing */
  onFailure?: Failure | undefined;
}

/**
 * The extensions of Centrifugo's HTTP callback proxies, one per kind, in
 * Centrifugo's request and response JSON. Connect, refresh, sub_refresh and
 * rpc serve Centrifugo clients; subscribe and publish serve Socket.IO
 * clients too (the channels protocol). Put them before token
 * authentication: the connect proxy answers Centrifugo connects without a
 * token.
 * @example new Extensions([...centrifugoProxyExtensions(settings, { namespaces }), tokenAuth(verify)])
 */
export function centrifugoProxyExtensions(settings: CentrifugoProxySettings, options: ProxyExtensionOptions): Extension[] {
  const onFailure: Failure = options.onFailure ?? (() => undefined);
  const list: Extension[] = [];
  const ns = (channel: string): NamespaceOptions | undefined => options.namespaces.lookup(channel)?.options;
  const bad = (transport: TransportName, kind: string, p: ProxyEndpoint, err: unknown): Error => {
    if (!(err instanceof BadResult)) return err as Error;
    onFailure(kind, p, err.message);
    return internal(transport, kind, p, err.message);
  };

  if (settings.connect) {
    const p = settings.connect;
    list.push({
      name: 'centrifugo-connect-proxy',
      transports: ['centrifugo'],
      async authenticate(ctx) {
        if (ctx.token !== undefined) return undefined;
        const f = facts('centrifugo', ctx.connection, '');
        const req = (ctx.connection as CentrifugoConnection).connectRequest;
        const channels = Object.keys(req?.subs ?? {});
        const body = {
          ...common(p, f),
          ...dataField(p, req?.data),
          ...(req?.name ? { name: req.name } : {}),
          ...(req?.version ? { version: req.version } : {}),
          ...(channels.length > 0 ? { channels } : {}),
        };
        const reply = await call('connect', p, f, body, 'centrifugo', onFailure);
        refusal(reply, 'centrifugo', f);
        // No result: no credentials (3501 "client credentials not found").
        if (!reply.result) throw new PresenceError('unauthorized', 'the connect proxy returned no credentials');
        try {
          const r = parse(ConnectResultSchema, reply.result);
          const subs = Object.fromEntries(
            Object.entries(r.subs ?? {}).map(([ch, o]) => [ch, { override: o.override, expire_at: o.expire_at, info: raw(o.info, o.b64info, `subs.${ch}.b64info`), data: raw(o.data, o.b64data, `subs.${ch}.b64data`) }]),
          );
          const user = r.user ?? '';
          // In the shape of a connection token's claims, which the endpoint reads.
          const claims = { sub: user, expire_at: r.expire_at, info: raw(r.info, r.b64info, 'b64info'), data: raw(r.data, r.b64data, 'b64data'), channels: r.channels, subs, meta: r.meta };
          return { userId: user, claims: JSON.parse(JSON.stringify(claims)) as Record<string, unknown> };
        } catch (err) {
          throw bad('centrifugo', 'connect', p, err);
        }
      },
    });
  }

  /** A refresh or sub_refresh call: a failed call gives 60 more seconds; no result, or `expired`, ends it. */
  const refreshCall = async (kind: string, p: ProxyEndpoint, f: Facts, body: Record<string, unknown>): Promise<RefreshOutcome> => {
    let reply: ProxyReply;
    try {
      reply = await callProxy(p, body, proxyHeaders(p, f.transportHeaders, f.emulated));
    } catch (err) {
      if (!(err instanceof ProxyCallError)) throw err;
      onFailure(kind, p, err.message);
      return { expiresAt: Date.now() + 60_000 };
    }
    if (!reply.result) return { expired: true };
    let r: z.output<typeof RefreshResultSchema>;
    try {
      r = parse(RefreshResultSchema, reply.result);
    } catch (err) {
      onFailure(kind, p, (err as Error).message);
      return { expiresAt: Date.now() + 60_000 };
    }
    if (r.expired) return { expired: true };
    try {
      return { expiresAt: r.expire_at ? r.expire_at * 1_000 : undefined, info: raw(r.info, r.b64info, 'b64info'), meta: r.meta };
    } catch (err) {
      onFailure(kind, p, (err as Error).message);
      throw CentrifugoDisconnect.of(DISCONNECTS.internal);
    }
  };

  if (settings.refresh) {
    const p = settings.refresh;
    list.push({
      name: 'centrifugo-refresh-proxy',
      transports: ['centrifugo'],
      refreshes: (c) => c.channel === undefined,
      async onRefresh(ctx) {
        if (ctx.channel !== undefined) return undefined;
        const f = facts(ctx.transport, ctx.connection, ctx.userId);
        return refreshCall('refresh', p, f, { ...common(p, f), user: f.user, ...metaField(p, f) });
      },
    });
  }

  const subRefresh = settings.subRefresh;
  if (subRefresh && subRefresh.size > 0) {
    const endpoint = (channel: string | undefined): ProxyEndpoint | undefined => {
      const name = channel === undefined ? undefined : ns(channel)?.subRefreshProxy;
      return name === undefined ? undefined : subRefresh.get(name);
    };
    list.push({
      name: 'centrifugo-sub-refresh-proxy',
      transports: ['centrifugo'],
      refreshes: (c) => endpoint(c.channel) !== undefined,
      async onRefresh(ctx) {
        const p = endpoint(ctx.channel);
        if (!p) return undefined;
        const f = facts(ctx.transport, ctx.connection, ctx.userId);
        return refreshCall('sub_refresh', p, f, { ...common(p, f), user: f.user, channel: ctx.channel, ...metaField(p, f) });
      },
    });
  }

  const subscribe = settings.subscribe;
  if (subscribe && subscribe.size > 0) {
    const endpoint = (ctx: ActionContext): ProxyEndpoint | undefined => {
      if (ctx.action !== 'subscribe' || ctx.token) return undefined;
      const found = options.namespaces.lookup(ctx.target);
      if (!found || found.options.subscribeProxy === undefined) return undefined;
      // User-limited channels are decided by their user list, never by the proxy.
      if (found.parts.users && found.options.allowUserLimitedChannels) return undefined;
      return subscribe.get(found.options.subscribeProxy);
    };
    list.push({
      name: 'centrifugo-subscribe-proxy',
      decides: (ctx) => endpoint(ctx) !== undefined,
      async onSubscribe(ctx): Promise<ActionOutcome | undefined> {
        const p = endpoint(ctx);
        if (!p) return undefined;
        const f = facts(ctx.transport, ctx.connection, ctx.userId);
        const reply = await call('subscribe', p, f, { ...common(p, f), user: f.user, channel: ctx.target, ...dataField(p, ctx.data), ...metaField(p, f) }, ctx.transport, onFailure);
        refusal(reply, ctx.transport, f);
        try {
          const r = parse(SubscribeResultSchema, reply.result);
          return { info: raw(r.info, r.b64info, 'b64info'), data: raw(r.data, r.b64data, 'b64data'), expiresAt: r.expire_at ? r.expire_at * 1_000 : undefined, override: r.override as ActionOutcome['override'] };
        } catch (err) {
          throw bad(ctx.transport, 'subscribe', p, err);
        }
      },
    });
  }

  const publish = settings.publish;
  if (publish && publish.size > 0) {
    const endpoint = (ctx: ActionContext): ProxyEndpoint | undefined => {
      if (ctx.action !== 'publish') return undefined;
      const name = ns(ctx.target)?.publishProxy;
      return name === undefined ? undefined : publish.get(name);
    };
    list.push({
      name: 'centrifugo-publish-proxy',
      decides: (ctx) => endpoint(ctx) !== undefined,
      async onPublish(ctx): Promise<ActionOutcome | undefined> {
        const p = endpoint(ctx);
        if (!p) return undefined;
        const f = facts(ctx.transport, ctx.connection, ctx.userId);
        const reply = await call('publish', p, f, { ...common(p, f), user: f.user, channel: ctx.target, ...dataField(p, ctx.data), ...metaField(p, f) }, ctx.transport, onFailure);
        refusal(reply, ctx.transport, f);
        try {
          const r = parse(PublishResultSchema, reply.result);
          return { data: raw(r.data, r.b64data, 'b64data'), skipHistory: r.skip_history };
        } catch (err) {
          throw bad(ctx.transport, 'publish', p, err);
        }
      },
    });
  }

  const rpc = settings.rpc;
  if (rpc && rpc.proxies.size > 0) {
    const boundary = rpc.boundary ?? ':';
    list.push({
      name: 'centrifugo-rpc-proxy',
      transports: ['centrifugo'],
      async onRpc(ctx) {
        const method = ctx.event ?? ctx.target;
        let name: string | undefined;
        if (rpc.every !== undefined) name = rpc.every;
        else {
          const i = method.indexOf(boundary);
          const nsName = i > 0 ? method.slice(0, i) : '';
          if (!rpc.namespaces.has(nsName)) throw CentrifugoError.of(CLIENT_ERRORS.methodNotFound, `rpc namespace '${nsName}' is not configured`);
          name = rpc.namespaces.get(nsName);
          if (name === undefined) throw CentrifugoError.of(CLIENT_ERRORS.notAvailable, `rpc proxy not enabled for '${method}'`);
        }
        const p = rpc.proxies.get(name);
        if (!p) throw CentrifugoError.of(CLIENT_ERRORS.notAvailable, `rpc proxy '${name}' is not configured`);
        const f = facts(ctx.transport, ctx.connection, ctx.userId);
        const reply = await call('rpc', p, f, { ...common(p, f), user: f.user, method, ...dataField(p, ctx.data), ...metaField(p, f) }, ctx.transport, onFailure);
        refusal(reply, ctx.transport, f);
        try {
          const r = parse(RpcResultSchema, reply.result);
          return raw(r.data, r.b64data, 'b64data') ?? null;
        } catch (err) {
          throw bad(ctx.transport, 'rpc', p, err);
        }
      },
    });
  }
  return list;
}
