import { Cluster, type Redis } from 'ioredis';
import type { StorageReset } from '../../core/presence/engine.js';
import type { HealthCheck } from '../../core/shared/health.js';
import { LogSummary } from '../../core/shared/log-summary.js';
import { silentLogger, type Logger } from '../../core/shared/logger.js';
import { BackendLog, type BackendLogOptions } from './backend-log.js';
import { ClusterClassicSubscriber } from './classic-subscriber.js';
import { IdentityWatcher } from './identity.js';
import { KeySpace } from './keys.js';

export type RedisClient = Redis | Cluster;

/** Whether the subscriber connection delivers every message (see {@link RedisBackend.onSubscriberState}). */
export type SubscriberState = 'up' | 'down';

export interface RedisBackendOptions {
  /** Client for commands and scripts. Not closed by the backend. */
  redis: RedisClient;
  /**
   * Client for SSUBSCRIBE (a subscribed connection cannot run commands).
   * @default a duplicate of `redis` (with sharded subscribers on a cluster), made on first use and closed by the backend
   */
  subscriber?: RedisClient;
  /** Prefix of every key and channel. @default 'rm:' */
  keyPrefix?: string;
  /**
   * Period of the check of every master's `run_id` and `master_replid` (a
   * restart or failover that loaded older data), besides the check on every
   * reconnect; 0 checks on reconnects only.
   * @default 5000
   */
  identityCheckIntervalMs?: number;
  /**
   * The backend log (docs/channels.md, "Backend log"): every channel
   * publication and user status event also appended to one of `partitions`
   * Redis Streams. @default off
   */
  backendLog?: BackendLogOptions | undefined;
  /**
   * On a Cluster, how long a classic subscription ({@link RedisBackend.subscribeGlobal})
   * is tried (across lost connections and nodes) before it is given up,
   * logged and rejected. @default 10000
   */
  classicSubscribeTimeoutMs?: number;
  logger?: Logger;
}

/**
 * One Redis deployment as the capabilities share it: the command client, one
 * sharded-pub/sub subscriber connection, the key space and the health check.
 * Presence uses it now; channels and user status will use the same backend,
 * so a node holds one subscriber connection whatever it serves.
 */
export class RedisBackend {
  readonly kind: 'redis' | 'redis-cluster';
  readonly redis: RedisClient;
  readonly keys: KeySpace;
  readonly logger: Logger;
  readonly health: HealthCheck;
  /** The backend log, when `backendLog` turned it on (the broker and the status store append through it). */
  readonly log: BackendLog | undefined;
  private subscriber: RedisClient | undefined;
  private readonly ownsSubscriber: boolean;
  private readonly channels = new Map<string, (message: string) => void>();
  /** A Redis outage makes the subscriber report an error per reconnect attempt (and per channel left): log the first, then summaries. */
  private readonly subscriberErrors: LogSummary;
  /** Classic (not sharded) channels: the global presence feed. */
  private readonly globalChannels = new Map<string, (message: string) => void>();
  private readonly resetListeners = new Set<(reset: StorageReset) => void>();
  private readonly subscriberStateListeners = new Set<(state: SubscriberState) => void>();
  /** `down` while {@link subscriberDown} or {@link classicDown}. */
  private subscriberState: SubscriberState = 'up';
  /** From the subscriber client's close until it is ready again (and, on one Redis, its classic channels are confirmed). */
  private subscriberDown = false;
  /** Cluster only: the classic channels' connection was lost and is not re-subscribed yet. */
  private classicDown = false;
  /** Cluster only: classic channels on a connection of their own (see {@link ClusterClassicSubscriber}); made on first use. */
  private classic: ClusterClassicSubscriber | undefined;
  private readonly classicSubscribeTimeoutMs: number | undefined;
  /** Counts subscriber closes: a re-subscription confirmed after a later close does not report `up`. */
  private subscriberCloses = 0;
  private readonly identity: IdentityWatcher;

  constructor(options: RedisBackendOptions) {
    this.redis = options.redis;
    this.kind = options.redis.isCluster ? 'redis-cluster' : 'redis';
    this.keys = new KeySpace(options.keyPrefix ?? 'rm:');
    this.logger = options.logger ?? silentLogger;
    this.log = options.backendLog && options.backendLog.partitions > 0 ? new BackendLog({ ...options.backendLog, redis: options.redis, keys: this.keys, logger: this.logger }) : undefined;
    this.subscriberErrors = new LogSummary(this.logger, 'redis subscriber error');
    this.subscriber = options.subscriber;
    this.ownsSubscriber = options.subscriber === undefined;
    this.classicSubscribeTimeoutMs = options.classicSubscribeTimeoutMs;
    const redis = this.redis;
    this.health = { name: this.kind, check: async () => void (await redis.ping()) };
    this.identity = new IdentityWatcher({
      redis,
      intervalMs: options.identityCheckIntervalMs ?? 5_000,
      logger: this.logger,
      onReset: (reset) => {
        this.logger.warn({ ...reset }, 'redis data was reset (restart or failover): every client resyncs');
        for (const listener of [...this.resetListeners]) listener(reset);
      },
    });
    this.identity.start();
  }

  /**
   * Calls `listener` when the Redis data the node talks to was replaced
   * (a restart that loaded an older RDB/AOF, a failover): see
   * {@link IdentityWatcher}. Returns a function that stops the calls.
   */
  onReset(listener: (reset: StorageReset) => void): () => void {
    this.resetListeners.add(listener);
    return () => void this.resetListeners.delete(listener);
  }

  /**
   * Calls `listener('down')` when the subscriber connection closes (messages
   * published from then on are lost to this node) and `listener('up')` once
   * it is back and every classic channel ({@link subscribeGlobal}) is
   * subscribed again, confirmed by Redis. ioredis re-subscribes on its own
   * after a reconnect; this says when that is done, so a consumer can
   * resynchronise what it may have missed in between. On a Cluster the
   * classic channels' own connection counts too: `down` when it is lost,
   * `up` once a new one (on another node if need be) has them confirmed.
   * Returns a function that stops the calls.
   */
  onSubscriberState(listener: (state: SubscriberState) => void): () => void {
    this.ensureSubscriber();
    this.subscriberStateListeners.add(listener);
    return () => void this.subscriberStateListeners.delete(listener);
  }

  private updateSubscriberState(): void {
    const state: SubscriberState = this.subscriberDown || this.classicDown ? 'down' : 'up';
    if (this.subscriberState === state) return;
    this.subscriberState = state;
    for (const listener of [...this.subscriberStateListeners]) {
      try {
        listener(state);
      } catch (err) {
        this.logger.error({ err }, 'subscriber state listener threw');
      }
    }
  }

  private onSubscriberReady(sub: RedisClient): void {
    if (!this.subscriberDown) return;
    const closes = this.subscriberCloses;
    const up = (): void => {
      if (closes !== this.subscriberCloses || this.subscriber !== sub) return;
      this.subscriberDown = false;
      this.updateSubscriberState();
    };
    // On a Cluster the classic channels have their own connection, which reports its own state.
    if (sub.isCluster) return up();
    // Redis answers commands of a connection in order: once this SUBSCRIBE is
    // answered, the channels are subscribed (whether by it or by ioredis's own
    // re-subscription), and every later message reaches this node.
    const channels = [...this.globalChannels.keys()];
    void (channels.length > 0 ? sub.subscribe(...channels) : Promise.resolve()).then(
      up,
      (err: unknown) => this.subscriberErrors.note('resubscribe failed', { err: err instanceof Error ? err.message : String(err) }),
    );
  }

  private ensureSubscriber(): RedisClient {
    if (!this.subscriber) {
      this.subscriber = this.redis.isCluster
        ? (this.redis as Cluster).duplicate(undefined, { shardedSubscribers: true })
        : // No ready check: ioredis writes a SSUBSCRIBE issued while connecting (it is allowed during
          // loading) before its ready-check INFO, which Redis then refuses in subscriber mode; the failed
          // check reconnects and the subscription is silently lost (the room's events never arrive).
          (this.redis as Redis).duplicate({ enableReadyCheck: false });
    }
    const sub = this.subscriber;
    if (sub.listenerCount('smessage') === 0) {
      sub.on('smessage', (channel: string, message: string) => this.channels.get(channel)?.(message));
      sub.on('message', (channel: string, message: string) => this.globalChannels.get(channel)?.(message));
      sub.on('error', (err: unknown) => this.subscriberErrors.note('subscriber', { err: err instanceof Error ? err.message : String(err) }));
      sub.on('close', () => {
        this.subscriberCloses++;
        if (this.subscriber !== sub) return;
        this.subscriberDown = true;
        this.updateSubscriberState();
      });
      sub.on('ready', () => this.onSubscriberReady(sub));
    }
    return sub;
  }

  /**
   * SSUBSCRIBE to one channel, with one listener. The node's Hub subscribes a
   * topic once, so a second subscription of a channel that is still
   * subscribed is a programming error and is refused.
   */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    return this.listen(this.channels, channel, listener, 'sharded');
  }

  /**
   * SUBSCRIBE (classic pub/sub, every node of a cluster) to one channel, with
   * one listener; for feeds that span every room, such as all presence events.
   * Resolves once Redis confirmed the subscription. On a Cluster the channel
   * is on a connection of its own to one node (see {@link ClusterClassicSubscriber}),
   * tried again across nodes for up to `classicSubscribeTimeoutMs`, then
   * logged and rejected; a lost connection is replaced and re-subscribed,
   * reported through {@link onSubscriberState}.
   */
  subscribeGlobal(channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    return this.listen(this.globalChannels, channel, listener, 'classic');
  }

  private async listen(
    map: Map<string, (message: string) => void>,
    channel: string,
    listener: (message: string) => void,
    mode: 'sharded' | 'classic',
  ): Promise<() => Promise<void>> {
    if (map.has(channel)) throw new Error(`channel '${channel}' is already subscribed; subscribe through the Hub`);
    const sub = this.ensureSubscriber();
    const classic = mode === 'classic' && this.redis.isCluster ? this.ensureClassic() : undefined;
    map.set(channel, listener);
    try {
      await (classic ? classic.subscribe(channel) : mode === 'sharded' ? sub.ssubscribe(channel) : sub.subscribe(channel));
    } catch (err) {
      if (map.get(channel) === listener) map.delete(channel);
      throw err;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      if (map.get(channel) !== listener) return;
      map.delete(channel);
      if (classic) return classic.unsubscribe(channel);
      await (mode === 'sharded' ? sub.sunsubscribe(channel) : sub.unsubscribe(channel)).catch((err: unknown) =>
        this.subscriberErrors.note(`${mode === 'sharded' ? 'sunsubscribe' : 'unsubscribe'} failed`, { err: err instanceof Error ? err.message : String(err), channel }),
      );
    };
  }

  private ensureClassic(): ClusterClassicSubscriber {
    return (this.classic ??= new ClusterClassicSubscriber({
      // The command client's view of the masters: it is connected whatever this node serves.
      nodes: () => (this.redis as Cluster).nodes('master').map((node) => node.options),
      onMessage: (channel, message) => this.globalChannels.get(channel)?.(message),
      onState: (state) => {
        this.classicDown = state === 'down';
        this.updateSubscriberState();
      },
      logger: this.logger,
      subscribeTimeoutMs: this.classicSubscribeTimeoutMs,
    }));
  }

  /** Drops every subscription and closes the subscriber connection the backend made. Never closes `redis`. */
  async close(): Promise<void> {
    this.identity.stop();
    this.log?.close();
    this.resetListeners.clear();
    this.subscriberStateListeners.clear();
    this.channels.clear();
    this.globalChannels.clear();
    this.subscriberErrors.stop();
    this.classic?.close();
    this.classic = undefined;
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub && this.ownsSubscriber) sub.disconnect();
  }
}
