import {
  CHANNEL_LIMITS,
  ChannelError,
  ChannelSchema,
  ClientInfoSchema,
  PresenceError,
  StreamPositionSchema,
  TagsSchema,
  createChannelSchemas,
  parsePayload,
  utf8Length,
  channelParts,
  type Channel,
  type ChannelSchemas,
  type ClientInfo,
  type HistoryOptions,
  type HistoryResult,
  type JsonValue,
  type PublishResult,
  type RecoveryResult,
  type StreamPosition,
} from 'realtime-message-protocol';
import type { z } from 'zod';
import { systemClock, type Clock } from '../shared/clock.js';
import { Hub } from '../shared/hub.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { newEpoch, type ChannelBroker, type ChannelPresencePort, type PublicationBody, type PublishCommand, type ReadResult } from './broker.js';
import { ChannelFeeds, channelSources, type ChannelHub, type ChannelTopics } from './feeds.js';
import { ChannelNamespaces, type ChannelAction, type ChannelClient, type NamespaceOptions } from './namespaces.js';
import { ChannelSubscription, type ChannelListener, type SubscribeOptions } from './subscription.js';

export interface ChannelServiceOptions {
  /** Where channels live: `new MemoryBroker()` or a `RedisBroker`. */
  broker: ChannelBroker;
  /** Namespace options (from a channels config). @default ChannelNamespaces.defaults(): every channel open, history 100 for 300 s */
  namespaces?: ChannelNamespaces;
  /**
   * The node's Hub, shared with the other capabilities; its `channel` source
   * must be `channelSources(new ChannelFeeds({ broker, namespaces }))` over
   * the same broker and namespaces. @default a Hub of its own
   */
  hub?: ChannelHub;
  /** The presence of channels (the rooms of the same names), wired by the composition root. @default none: presence is `not_available` */
  presence?: ChannelPresencePort;
  /** Largest `data` of one publication, in UTF-8 bytes of JSON. @default 65536 */
  maxDataBytes?: number;
  /** Largest history `limit`, and what `-1` means. @default 300 */
  historyMaxLimit?: number;
  /** Most publications a recovery returns; a subscriber that missed more is not recovered. @default 300 */
  recoveryMaxLimit?: number;
  /** Position check period of the service's own feeds (see {@link ChannelFeeds}); unused with `hub`. @default 10000 */
  positionCheckMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** `{ user, client }` strings within ClientInfoSchema's bounds and nothing else: what transports make; anything else goes through the schema. */
function isPlainInfo(info: ClientInfo): boolean {
  const max = CHANNEL_LIMITS.maxChannelLength * 2;
  let keys = 0;
  for (const _ in info) keys++;
  return keys === 2 && typeof info.user === 'string' && typeof info.client === 'string' && info.user.length <= max && info.client.length <= max;
}

export type ChannelOp = 'publish' | 'history' | 'recover' | 'remove_history' | 'presence' | 'presence_stats';

/** Optional context of a publish: who published and tags. */
export interface PublishOptions {
  /** The publisher, shown to subscribers (Centrifugo's `ClientInfo`). */
  info?: ClientInfo;
  tags?: Record<string, string>;
  /**
   * Deliver to the subscribers but keep nothing (Centrifugo's
   * `skip_history`): the publication has no offset (0 in the result and in
   * what subscribers get) and the channel's newest offset does not move, so
   * positions and recovery are not affected. @default false
   */
  skipHistory?: boolean;
}

/**
 * Channels (SPEC §8) over a {@link ChannelBroker}: validation, namespaces,
 * publish, history, recovery, live subscriptions with a no-loss handoff,
 * and the channel's presence through a port.
 *
 * Every method validates its input and rejects with a `PresenceError` (a
 * `ChannelError` for the channel-specific reasons) with a stable code;
 * nothing else escapes. Methods that take a `client` check the namespace's
 * permissions for that client; without one (the application, the server
 * API) they only check that the channel exists and has the feature.
 *
 * @example
 * const channels = new ChannelService({ broker: new MemoryBroker() });
 * const sub = await channels.subscribe('chat:1', (e) => console.log(e));
 * const { offset, epoch } = await channels.publish('chat:1', { text: 'hi' });
 * const missed = await channels.recover('chat:1', { offset: offset - 1, epoch });
 */
export class ChannelService {
  readonly broker: ChannelBroker;
  readonly namespaces: ChannelNamespaces;
  readonly schemas: ChannelSchemas;
  private readonly hub: ChannelHub;
  private readonly ownHub: Hub<ChannelTopics> | undefined;
  private readonly ownFeeds: ChannelFeeds | undefined;
  private readonly presencePort: ChannelPresencePort | undefined;
  private readonly maxDataBytes: number;
  private readonly historyMaxLimit: number;
  private readonly recoveryMaxLimit: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly subscriptions = new Set<ChannelSubscription>();
  private disposed = false;

  constructor(options: ChannelServiceOptions) {
    this.broker = options.broker;
    this.namespaces = options.namespaces ?? ChannelNamespaces.defaults();
    this.presencePort = options.presence;
    this.maxDataBytes = options.maxDataBytes ?? CHANNEL_LIMITS.defaultMaxDataBytes;
    this.historyMaxLimit = options.historyMaxLimit ?? CHANNEL_LIMITS.defaultHistoryMaxLimit;
    this.recoveryMaxLimit = options.recoveryMaxLimit ?? CHANNEL_LIMITS.defaultRecoveryMaxLimit;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.schemas = createChannelSchemas({ maxDataBytes: this.maxDataBytes, historyMaxLimit: this.historyMaxLimit });
    if (options.hub) {
      this.hub = options.hub;
    } else {
      this.ownFeeds = new ChannelFeeds({ broker: this.broker, namespaces: this.namespaces, positionCheckMs: options.positionCheckMs, clock: this.clock, logger: this.logger });
      this.ownHub = new Hub<ChannelTopics>(channelSources(this.ownFeeds), { logger: this.logger });
      this.hub = this.ownHub;
    }
  }

  // -- validation -----------------------------------------------------------

  private parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
    const res = parsePayload(schema, input);
    if (!res.ok) throw new PresenceError(res.error.code, res.error.message);
    return res.value;
  }

  /**
   * The options of a channel's namespace after checking its name: the name
   * rules, a known namespace (`unknown_channel`), the namespace's
   * `channel_regex`, and with `client` the permission for `action`
   * (`forbidden`).
   */
  resolve(channel: unknown, action?: ChannelAction, client?: ChannelClient): { channel: Channel; options: NamespaceOptions } {
    return this.resolveParsed(this.parse(ChannelSchema, channel), action, client);
  }

  /** {@link resolve} for a name that already passed `ChannelSchema` (a transport's request schema). */
  resolveParsed(name: Channel, action?: ChannelAction, client?: ChannelClient): { channel: Channel; options: NamespaceOptions } {
    const found = this.namespaces.lookup(name);
    if (!found) {
      const known = this.namespaces.names.filter(Boolean).join(', ') || 'none';
      throw new ChannelError('unknown_channel', `channel '${name}' is in namespace '${channelParts(name).namespace}', which is not configured (configured: ${known}); add it to the channels config`);
    }
    const { options, parts } = found;
    if (options.channelRegex) {
      const rest = options.name === '' ? name.replace(/^\$/, '') : name.slice(name.indexOf(':') + 1);
      if (!options.channelRegex.test(rest)) throw new PresenceError('invalid_payload', `channel '${name}' does not match channel_regex of its namespace`);
    }
    if (action && client && !ChannelNamespaces.permits(options, parts, action, client)) {
      throw new PresenceError('forbidden', `${action} on channel '${name}' is not allowed for ${client.user === '' ? 'anonymous clients' : `user '${client.user}'`}${client.subscribed ? '' : ' (not subscribed)'} by its namespace options`);
    }
    return { channel: name, options };
  }

  private requireHistory(channel: Channel, ns: NamespaceOptions): void {
    if (!ns.history) throw new ChannelError('not_available', `channel '${channel}' keeps no history: set history_size and history_ttl of its namespace`);
  }

  /**
   * Runs a broker call, turning storage failures into `unavailable` /
   * `internal`. One promise reaction on top of the broker's (no async
   * frame): this runs for every publish.
   */
  private call<T>(op: ChannelOp, fn: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new PresenceError('internal', 'the channel service was disposed'));
    let run: Promise<T>;
    try {
      run = fn();
    } catch (err) {
      return Promise.reject(this.failure(op, err));
    }
    return run.catch((err: unknown) => {
      throw this.failure(op, err);
    });
  }

  private failure(op: ChannelOp, err: unknown): PresenceError {
    if (err instanceof PresenceError) return err;
    if (this.broker.isUnavailable?.(err)) {
      return new PresenceError('unavailable', `channel storage (${this.broker.kind}) cannot be reached during ${op}; retry with backoff`, { cause: err });
    }
    this.logger.error({ err, op, broker: this.broker.kind }, 'channel broker call failed');
    return new PresenceError('internal', `channel storage failed during ${op}; retry with backoff`, { cause: err });
  }

  private read(channel: Channel, ns: NamespaceOptions, sinceOffset: number | undefined, limit: number, reverse: boolean): Promise<ReadResult> {
    return this.broker.read({ channel, sinceOffset, limit: ns.history ? limit : 0, reverse, metaTtlMs: ns.historyMetaTtlMs, newEpoch: newEpoch(), now: this.clock.now() });
  }

  // -- commands -------------------------------------------------------------

  /**
   * Publishes `data` (any JSON value) to the channel: appended to its
   * history (when the namespace keeps one) and delivered to every
   * subscriber on every node, atomically and in offset order. With `client`,
   * the namespace must allow that client to publish. With `skipHistory`,
   * delivered in order with the others but not kept: `{ offset: 0, epoch }`.
   */
  async publish(channel: string, data: unknown, options: PublishOptions = {}, client?: ChannelClient): Promise<PublishResult> {
    const { channel: name, options: ns } = this.resolve(channel, 'publish', client);
    const body: PublicationBody = { data: this.parse(this.schemas.data, data) };
    if (options.info !== undefined) body.info = this.parse(ClientInfoSchema, options.info);
    if (options.tags !== undefined) body.tags = this.parse(TagsSchema, options.tags);
    const skipHistory = options.skipHistory;
    if (skipHistory !== undefined && typeof skipHistory !== 'boolean') throw new PresenceError('invalid_payload', 'skipHistory must be a boolean');
    return this.publishBody(name, ns, body, skipHistory === true);
  }

  /**
   * {@link publish} of a request that already passed `schemas.publish`
   * (a transport parsed it): `channel`, `data` and `tags` are taken as
   * valid, not parsed again; the namespace and the permission are checked,
   * and `info` (made by the transport) is checked (a cheap test for the
   * usual `{ user, client }`, else the schema). Rejects as {@link publish}.
   */
  publishParsed(channel: Channel, data: JsonValue, options: PublishOptions = {}, client?: ChannelClient): Promise<PublishResult> {
    try {
      const { options: ns } = this.resolveParsed(channel, 'publish', client);
      const body: PublicationBody = { data };
      if (options.info !== undefined) body.info = isPlainInfo(options.info) ? options.info : this.parse(ClientInfoSchema, options.info);
      if (options.tags !== undefined) body.tags = options.tags;
      return this.publishBody(channel, ns, body, options.skipHistory === true);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private publishBody(channel: Channel, ns: NamespaceOptions, body: PublicationBody, skipHistory: boolean): Promise<PublishResult> {
    const encoded = JSON.stringify(body);
    // data, info and tags each have a limit; this bounds what one publication may cost in storage.
    const bytes = utf8Length(encoded);
    const cap = this.maxDataBytes + 2 * CHANNEL_LIMITS.maxInfoBytes + 16_384;
    if (bytes > cap) return Promise.reject(new PresenceError('payload_too_large', `the publication is ${bytes} bytes of JSON; the limit is ${cap}`));
    const cmd: PublishCommand = {
      channel,
      body,
      encoded,
      historySize: ns.history ? ns.historySize : 0,
      historyTtlMs: ns.history ? ns.historyTtlMs : 0,
      metaTtlMs: ns.historyMetaTtlMs,
      newEpoch: newEpoch(),
      now: this.clock.now(),
    };
    if (skipHistory) cmd.skipHistory = true;
    return this.call('publish', () => this.broker.publish(cmd));
  }

  /**
   * Reads history: publications after `since` (exclusive; with `reverse`,
   * before it, newest first), at most `limit` (0: only the stream position;
   * -1: as many as allowed), and the channel's current position. A `since`
   * of another epoch, or ahead of the stream, is `unrecoverable_position`.
   */
  async history(channel: string, options: HistoryOptions = {}, client?: ChannelClient): Promise<HistoryResult> {
    const { channel: name, options: ns } = this.resolve(channel, 'history', client);
    this.requireHistory(name, ns);
    const o = this.parse(this.schemas.historyOptions, options);
    const limit = o.limit === -1 ? this.historyMaxLimit : o.limit;
    const res = await this.call('history', () => this.read(name, ns, o.since?.offset, limit, o.reverse));
    if (o.since) this.checkSince(name, o.since, res.position);
    return { publications: res.publications, offset: res.position.offset, epoch: res.position.epoch };
  }

  private checkSince(channel: Channel, since: StreamPosition, top: StreamPosition): void {
    if (since.epoch !== '' && since.epoch !== top.epoch) {
      throw new ChannelError('unrecoverable_position', `position epoch '${since.epoch}' is not the current epoch '${top.epoch}' of channel '${channel}': its history was lost; reload and read from the current position`);
    }
    if (since.offset > top.offset) {
      throw new ChannelError('unrecoverable_position', `position offset ${since.offset} is ahead of channel '${channel}' (newest offset ${top.offset})`, {
        // With the current epoch an offset ahead of the stream was never handed out: a bad request, not a lost history.
        code: since.epoch === top.epoch ? 'invalid_payload' : 'stale_epoch',
      });
    }
  }

  /**
   * Every publication after `since`, in order, with `recovered: true`; or
   * none with `recovered: false` when that is impossible (another epoch, the
   * missed part fell out of history, more than `recoveryMaxLimit` missed,
   * or a position ahead of the stream). Never a partial list.
   */
  async recover(channel: string, since: StreamPosition, client?: ChannelClient): Promise<RecoveryResult> {
    const { channel: name, options: ns } = this.resolve(channel, 'subscribe', client);
    return this.recoverParsed(name, ns, this.parse(StreamPositionSchema, since));
  }

  /** {@link recover} for a channel that passed {@link resolve}. */
  async recoverParsed(channel: Channel, ns: NamespaceOptions, since: StreamPosition): Promise<RecoveryResult> {
    const res = await this.call('recover', () => this.read(channel, ns, since.offset, this.recoveryMaxLimit, false));
    const top = res.position;
    const pubs = res.publications;
    const sameEpoch = since.epoch === '' || since.epoch === top.epoch;
    const recovered = sameEpoch && (pubs.length === 0 ? top.offset === since.offset : pubs[0]!.offset === since.offset + 1 && pubs[pubs.length - 1]!.offset === top.offset);
    return { recovered, publications: recovered ? pubs : [], offset: top.offset, epoch: top.epoch };
  }

  /** Drops the channel's history; its epoch and newest offset stay, so older positions are no longer recoverable. */
  async removeHistory(channel: string): Promise<void> {
    const { channel: name } = this.resolve(channel);
    await this.call('remove_history', () => this.broker.removeHistory(name));
  }

  /** The connections present in the channel (its presence room): client id → info. */
  async presence(channel: string, client?: ChannelClient): Promise<Record<string, ClientInfo>> {
    const { channel: name } = this.resolvePresence(channel, client);
    return this.call('presence', () => this.presencePort!.presence(name));
  }

  /** How many connections and distinct users are present in the channel. */
  async presenceStats(channel: string, client?: ChannelClient): Promise<{ numClients: number; numUsers: number }> {
    const { channel: name } = this.resolvePresence(channel, client);
    return this.call('presence_stats', () => this.presencePort!.stats(name));
  }

  private resolvePresence(channel: string, client?: ChannelClient): { channel: Channel } {
    const r = this.resolve(channel, 'presence', client);
    if (!r.options.presence) throw new ChannelError('not_available', `channel '${r.channel}' has no presence: set presence in its namespace options`);
    if (!this.presencePort) throw new ChannelError('not_available', 'channel presence is not wired on this server (ChannelServiceOptions.presence)');
    return r;
  }

  // -- live -----------------------------------------------------------------

  /**
   * Subscribes `listener` to the channel's live publications on this node
   * (through the node's Hub: the first subscriber of a channel subscribes at
   * the broker). With `since`, recovers from that position first; live
   * publications that arrive during the history read are held and merged by
   * offset, so the subscriber sees no gap and no duplicate. The result holds
   * the recovered publications; live ones reach `listener` from `start()`
   * (called by itself on the next turn of the event loop unless
   * `manualStart`). A lost continuity (see {@link ChannelFeedItem}) reaches
   * the listener as `unrecoverable` and ends the subscription.
   */
  async subscribe(channel: string, listener: ChannelListener, options: SubscribeOptions = {}, client?: ChannelClient): Promise<ChannelSubscription> {
    const { channel: name, options: ns } = this.resolve(channel, 'subscribe', client);
    const since = options.since === undefined ? undefined : this.parse(StreamPositionSchema, options.since);
    if (this.disposed) throw new PresenceError('internal', 'the channel service was disposed');
    const sub = new ChannelSubscription(name, listener, { ...options, since }, (s) => this.subscriptions.delete(s));
    this.subscriptions.add(sub);
    try {
      await sub.open(
        (l) => this.call('recover', () => this.hub.subscribe('channel', name, l)),
        (position) => (position ? this.recoverParsed(name, ns, position) : this.call('recover', () => this.read(name, ns, undefined, 0, false)).then((r) => ({ recovered: false, publications: [], ...r.position }))),
      );
    } catch (err) {
      this.subscriptions.delete(sub);
      throw err;
    }
    return sub;
  }

  /** Ends every subscription and releases what the service made (its Hub and feeds); never the broker, which the caller owns. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.subscriptions].map((s) => s.unsubscribe()));
    this.ownFeeds?.dispose();
    await this.ownHub?.dispose();
  }
}
