import { NAMESPACE_NAME_PATTERN, channelParts, type ChannelParts } from 'realtime-message-protocol';
import { z } from 'zod';

/**
 * The options of one namespace, in the names of Centrifugo's config.json
 * (`channel.without_namespace` and `channel.namespaces[]` in v6; top-level
 * options and `namespaces` in v5). Every field is optional; unset means
 * false / 0, as in Centrifugo.
 */
export interface NamespaceConfig {
  presence?: boolean;
  join_leave?: boolean;
  force_push_join_leave?: boolean;
  history_size?: number;
  /** A Go duration (`"300s"`, `"1h30m"`) or seconds. */
  history_ttl?: string | number;
  /** A Go duration or seconds; 0/unset = the global `history_meta_ttl` (720h). */
  history_meta_ttl?: string | number;
  force_recovery?: boolean;
  allow_recovery?: boolean;
  force_positioning?: boolean;
  allow_positioning?: boolean;
  force_recovery_mode?: 'stream';
  allow_subscribe_for_client?: boolean;
  allow_subscribe_for_anonymous?: boolean;
  allow_publish_for_client?: boolean;
  allow_publish_for_subscriber?: boolean;
  allow_publish_for_anonymous?: boolean;
  allow_presence_for_client?: boolean;
  allow_presence_for_subscriber?: boolean;
  allow_presence_for_anonymous?: boolean;
  allow_history_for_client?: boolean;
  allow_history_for_subscriber?: boolean;
  allow_history_for_anonymous?: boolean;
  allow_user_limited_channels?: boolean;
  /** Applied to the part of the name after the namespace. */
  channel_regex?: string;
  subscribe_proxy_enabled?: boolean;
  subscribe_proxy_name?: string;
  publish_proxy_enabled?: boolean;
  publish_proxy_name?: string;
  sub_refresh_proxy_enabled?: boolean;
  sub_refresh_proxy_name?: string;
}

/** Centrifugo v6's `channel` section. */
export interface ChannelsConfig {
  without_namespace?: NamespaceConfig;
  namespaces?: Array<NamespaceConfig & { name: string }>;
  /** The default `history_meta_ttl` of every namespace. @default "720h" */
  history_meta_ttl?: string | number;
}

/** One namespace's options, resolved (times in ms). */
export interface NamespaceOptions {
  /** `''` for channels without a namespace. */
  name: string;
  presence: boolean;
  joinLeave: boolean;
  forcePushJoinLeave: boolean;
  /** True when both historySize and historyTtlMs are set. */
  history: boolean;
  historySize: number;
  historyTtlMs: number;
  historyMetaTtlMs: number;
  forceRecovery: boolean;
  allowRecovery: boolean;
  forcePositioning: boolean;
  allowPositioning: boolean;
  allowSubscribeForClient: boolean;
  allowSubscribeForAnonymous: boolean;
  allowPublishForClient: boolean;
  allowPublishForSubscriber: boolean;
  allowPublishForAnonymous: boolean;
  allowPresenceForClient: boolean;
  allowPresenceForSubscriber: boolean;
  allowPresenceForAnonymous: boolean;
  allowHistoryForClient: boolean;
  allowHistoryForSubscriber: boolean;
  allowHistoryForAnonymous: boolean;
  allowUserLimitedChannels: boolean;
  channelRegex: RegExp | undefined;
  subscribeProxy: string | undefined;
  publishProxy: string | undefined;
  subRefreshProxy: string | undefined;
}

/** A config the server cannot run with; the message names the option. */
export class ChannelsConfigError extends Error {
  override readonly name = 'ChannelsConfigError';
}

/** Centrifugo's default `history_meta_ttl`: 720h. */
export const DEFAULT_HISTORY_META_TTL_MS = 720 * 3_600_000;

/**
 * What every channel gets when the server has no channels config (SPEC §8):
 * subscribe, publish by subscribers, presence with join/leave, history of
 * 100 publications for 300 s and recovery, also for anonymous users (open
 * mode), in every namespace.
 */
export const DEFAULT_NAMESPACE: NamespaceConfig = {
  presence: true,
  join_leave: true,
  history_size: 100,
  history_ttl: '300s',
  allow_recovery: true,
  allow_positioning: true,
  allow_subscribe_for_client: true,
  allow_subscribe_for_anonymous: true,
  allow_publish_for_subscriber: true,
  allow_publish_for_anonymous: true,
  allow_presence_for_subscriber: true,
  allow_presence_for_anonymous: true,
  allow_history_for_subscriber: true,
  allow_history_for_anonymous: true,
};

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** A Go duration (`"300s"`, `"1h30m"`, `"500ms"`, `"0"`) or a number of seconds, in ms. */
export function parseDuration(value: string | number, what: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new ChannelsConfigError(`${what} must be a duration ("300s") or seconds >= 0 (got ${value})`);
    return Math.round(value * 1_000);
  }
  if (value === '0' || value === '') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0;
  let end = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    ms += Number(m[1]) * UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (end !== value.length || end === 0) throw new ChannelsConfigError(`${what} must be a duration such as "300s", "1h30m" or "500ms" (got ${JSON.stringify(value)})`);
  return Math.round(ms);
}

const duration = z.union([z.string(), z.number()]);
const NAMESPACE_SHAPE = {
  presence: z.boolean(),
  join_leave: z.boolean(),
  force_push_join_leave: z.boolean(),
  history_size: z.number().int().min(0),
  history_ttl: duration,
  history_meta_ttl: duration,
  force_recovery: z.boolean(),
  allow_recovery: z.boolean(),
  force_positioning: z.boolean(),
  allow_positioning: z.boolean(),
  force_recovery_mode: z.literal('stream', { error: "only 'stream' recovery is supported" }),
  allow_subscribe_for_client: z.boolean(),
  allow_subscribe_for_anonymous: z.boolean(),
  allow_publish_for_client: z.boolean(),
  allow_publish_for_subscriber: z.boolean(),
  allow_publish_for_anonymous: z.boolean(),
  allow_presence_for_client: z.boolean(),
  allow_presence_for_subscriber: z.boolean(),
  allow_presence_for_anonymous: z.boolean(),
  allow_history_for_client: z.boolean(),
  allow_history_for_subscriber: z.boolean(),
  allow_history_for_anonymous: z.boolean(),
  allow_user_limited_channels: z.boolean(),
  channel_regex: z.string(),
  subscribe_proxy_enabled: z.boolean(),
  subscribe_proxy_name: z.string(),
  publish_proxy_enabled: z.boolean(),
  publish_proxy_name: z.string(),
  sub_refresh_proxy_enabled: z.boolean(),
  sub_refresh_proxy_name: z.string(),
} as const;
const KNOWN = new Set(Object.keys(NAMESPACE_SHAPE));
const namespaceSchema = z.object(NAMESPACE_SHAPE).partial();

function resolveNamespace(name: string, raw: unknown, where: string, defaultMetaTtlMs: number, warnings: string[]): NamespaceOptions {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ChannelsConfigError(`${where} must be an object`);
  for (const key of Object.keys(raw)) if (!KNOWN.has(key) && key !== 'name') warnings.push(`${where}.${key} is not supported and is ignored`);
  const res = namespaceSchema.safeParse(raw);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    throw new ChannelsConfigError(`${where}.${issue.path.join('.')}: ${issue.message}`);
  }
  const c = res.data;
  const historySize = c.history_size ?? 0;
  const historyTtlMs = parseDuration(c.history_ttl ?? 0, `${where}.history_ttl`);
  if ((historySize > 0) !== (historyTtlMs > 0)) throw new ChannelsConfigError(`${where}: history_size and history_ttl must be set together (history needs both)`);
  const ownMeta = parseDuration(c.history_meta_ttl ?? 0, `${where}.history_meta_ttl`);
  const historyMetaTtlMs = ownMeta > 0 ? ownMeta : defaultMetaTtlMs;
  // The meta record must outlive the history it describes, or a new epoch would be made while old publications are still readable.
  if (historyMetaTtlMs <= historyTtlMs) throw new ChannelsConfigError(`${where}: history_meta_ttl (${historyMetaTtlMs} ms) must be longer than history_ttl (${historyTtlMs} ms)`);
  const history = historySize > 0;
  if (c.force_recovery && !history) throw new ChannelsConfigError(`${where}: force_recovery needs history (history_size and history_ttl)`);
  let channelRegex: RegExp | undefined;
  if (c.channel_regex !== undefined) {
    try {
      channelRegex = new RegExp(c.channel_regex, 'u');
    } catch (err) {
      throw new ChannelsConfigError(`${where}.channel_regex is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return {
    name,
    presence: c.presence ?? false,
    joinLeave: c.join_leave ?? false,
    forcePushJoinLeave: c.force_push_join_leave ?? false,
    history,
    historySize,
    historyTtlMs,
    historyMetaTtlMs,
    forceRecovery: c.force_recovery ?? false,
    allowRecovery: c.allow_recovery ?? false,
    forcePositioning: c.force_positioning ?? false,
    allowPositioning: c.allow_positioning ?? false,
    allowSubscribeForClient: c.allow_subscribe_for_client ?? false,
    allowSubscribeForAnonymous: c.allow_subscribe_for_anonymous ?? false,
    allowPublishForClient: c.allow_publish_for_client ?? false,
    allowPublishForSubscriber: c.allow_publish_for_subscriber ?? false,
    allowPublishForAnonymous: c.allow_publish_for_anonymous ?? false,
    allowPresenceForClient: c.allow_presence_for_client ?? false,
    allowPresenceForSubscriber: c.allow_presence_for_subscriber ?? false,
    allowPresenceForAnonymous: c.allow_presence_for_anonymous ?? false,
    allowHistoryForClient: c.allow_history_for_client ?? false,
    allowHistoryForSubscriber: c.allow_history_for_subscriber ?? false,
    allowHistoryForAnonymous: c.allow_history_for_anonymous ?? false,
    allowUserLimitedChannels: c.allow_user_limited_channels ?? false,
    channelRegex,
    subscribeProxy: c.subscribe_proxy_enabled ? (c.subscribe_proxy_name ?? 'default') : undefined,
    publishProxy: c.publish_proxy_enabled ? (c.publish_proxy_name ?? 'default') : undefined,
    subRefreshProxy: c.sub_refresh_proxy_enabled ? (c.sub_refresh_proxy_name ?? 'default') : undefined,
  };
}

/** A client action on a channel that the namespace options allow or not. */
export type ChannelAction = 'subscribe' | 'publish' | 'history' | 'presence';

/** Who asks: a client's user (`''` = anonymous) and whether it is subscribed to the channel. */
export interface ChannelClient {
  user: string;
  subscribed?: boolean;
}

/**
 * The namespaces of a deployment: which options a channel gets, and whether
 * a client may act on it. Built from a channels config (Centrifugo's shape)
 * by {@link ChannelNamespaces.fromConfig}, or the open default.
 */
export class ChannelNamespaces {
  private constructor(
    private readonly byName: ReadonlyMap<string, NamespaceOptions>,
    /** `default`: a channel of an unknown namespace gets the options of channels without one (no config given); `refuse`: unknown_channel. */
    readonly unknown: 'default' | 'refuse',
    /** What the config had that is ignored (unsupported options), for a warning at start. */
    readonly warnings: readonly string[],
  ) {}

  /**
   * The namespaces of a Centrifugo config: the v6 file (`{ channel: {...} }`),
   * its `channel` section (`{ without_namespace, namespaces }`), or a v5 file
   * (namespace options at the top level, and `namespaces`). Throws a
   * {@link ChannelsConfigError} naming the bad option.
   * @example ChannelNamespaces.fromConfig({ without_namespace: { presence: true }, namespaces: [{ name: 'chat', history_size: 50, history_ttl: '300s' }] })
   */
  static fromConfig(input: unknown): ChannelNamespaces {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ChannelsConfigError('the channels config must be a JSON object');
    const root = input as Record<string, unknown>;
    let section: Record<string, unknown>;
    let withoutNamespace: unknown;
    if (typeof root['channel'] === 'object' && root['channel'] !== null) {
      section = root['channel'] as Record<string, unknown>;
      withoutNamespace = section['without_namespace'] ?? {};
    } else if ('without_namespace' in root) {
      section = root;
      withoutNamespace = root['without_namespace'];
    } else {
      // v5: the options of channels without a namespace sit at the top level, among every other setting.
      section = root;
      withoutNamespace = Object.fromEntries(Object.entries(root).filter(([k]) => KNOWN.has(k)));
    }
    const warnings: string[] = [];
    const metaTtl = parseDuration((section['history_meta_ttl'] ?? root['history_meta_ttl'] ?? 0) as string | number, 'history_meta_ttl');
    const defaultMetaTtlMs = metaTtl > 0 ? metaTtl : DEFAULT_HISTORY_META_TTL_MS;
    const byName = new Map<string, NamespaceOptions>();
    byName.set('', resolveNamespace('', withoutNamespace, 'without_namespace', defaultMetaTtlMs, warnings));
    const list = section['namespaces'] ?? [];
    if (!Array.isArray(list)) throw new ChannelsConfigError('namespaces must be an array');
    list.forEach((ns: unknown, i) => {
      const name = (ns as { name?: unknown } | null)?.name;
      if (typeof name !== 'string' || !NAMESPACE_NAME_PATTERN.test(name)) {
        throw new ChannelsConfigError(`namespaces[${i}].name must match ${NAMESPACE_NAME_PATTERN.source} (got ${JSON.stringify(name)})`);
      }
      if (byName.has(name)) throw new ChannelsConfigError(`namespaces[${i}]: namespace '${name}' is defined twice`);
      byName.set(name, resolveNamespace(name, ns, `namespaces[${i}]`, defaultMetaTtlMs, warnings));
    });
    return new ChannelNamespaces(byName, 'refuse', warnings);
  }

  /** No config: every channel, in any namespace, gets {@link DEFAULT_NAMESPACE}. */
  static defaults(): ChannelNamespaces {
    return new ChannelNamespaces(new Map([['', resolveNamespace('', DEFAULT_NAMESPACE, 'default', DEFAULT_HISTORY_META_TTL_MS, [])]]), 'default', []);
  }

  /** The configured namespace names (`''` is channels without a namespace). */
  get names(): string[] {
    return [...this.byName.keys()];
  }

  /** The options of a channel's namespace, or undefined when the namespace is unknown (and unknown ones are refused). */
  lookup(channel: string): { options: NamespaceOptions; parts: ChannelParts } | undefined {
    const parts = channelParts(channel);
    const options = this.byName.get(parts.namespace) ?? (this.unknown === 'default' ? this.byName.get('') : undefined);
    return options && { options, parts };
  }

  /**
   * Whether the namespace options let a client do `action` (Centrifugo's
   * rules without tokens and proxies, which transports and extensions add):
   * subscribe needs `allow_subscribe_for_client` (or a user-limited channel
   * naming the user); publish, history and presence need `..._for_client`,
   * or `..._for_subscriber` while subscribed; anonymous users (`''`) also
   * need `..._for_anonymous`. Private (`$`) channels need a token: never by
   * options alone.
   */
  static permits(ns: NamespaceOptions, parts: ChannelParts, action: ChannelAction, client: ChannelClient): boolean {
    if (parts.private) return false;
    const anonymous = client.user === '';
    const subscribed = client.subscribed === true;
    switch (action) {
      case 'subscribe':
        if (parts.users && ns.allowUserLimitedChannels) return !anonymous && parts.users.includes(client.user);
        return ns.allowSubscribeForClient && (!anonymous || ns.allowSubscribeForAnonymous);
      case 'publish':
        return (ns.allowPublishForClient || (ns.allowPublishForSubscriber && subscribed)) && (!anonymous || ns.allowPublishForAnonymous);
      case 'history':
        return (ns.allowHistoryForClient || (ns.allowHistoryForSubscriber && subscribed)) && (!anonymous || ns.allowHistoryForAnonymous);
      case 'presence':
        return (ns.allowPresenceForClient || (ns.allowPresenceForSubscriber && subscribed)) && (!anonymous || ns.allowPresenceForAnonymous);
    }
  }
}
