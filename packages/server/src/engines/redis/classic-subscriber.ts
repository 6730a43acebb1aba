import { Redis, type RedisOptions } from 'ioredis';
import { LogSummary } from '../../core/shared/log-summary.js';
import type { Logger } from '../../core/shared/logger.js';

export interface ClassicSubscriberOptions {
  /** The cluster's nodes as the client knows them now (options of its pool connections: host, port, credentials, TLS). */
  nodes: () => RedisOptions[];
  /** Every message of a subscribed channel. */
  onMessage: (channel: string, message: string) => void;
  /** `down` when a connection that had its channels confirmed is lost, `up` once a new one has them all confirmed again. */
  onState: (state: 'up' | 'down') => void;
  logger: Logger;
  /** How long {@link ClusterClassicSubscriber.subscribe} tries before it gives up (logged, rejected). @default 10000 */
  subscribeTimeoutMs?: number;
  /** Bound of one connect plus its re-subscription; past it the connection is dropped and another node tried. @default 5000 */
  connectTimeoutMs?: number;
  /** Ceiling of the backoff between connection attempts (full jitter, from 100 ms doubling). @default 2000 */
  retryMaxDelayMs?: number;
}

/**
 * Classic (not sharded) pub/sub on a Redis Cluster, on a connection of our
 * own to one node. A Cluster forwards every PUBLISH to every node over its
 * bus, so one connection to any node hears every classic channel.
 *
 * ioredis's Cluster has such a connection (its ClusterSubscriber), but it
 * runs the ready check: a SUBSCRIBE issued while that connection is
 * connecting is written before the check's INFO, which Redis then refuses
 * in subscriber mode; ioredis fails every command queued on the connection
 * with that error ("Connection in subscriber mode, only subscriber commands
 * may be used" or "Ready check failed") and drops it for another node, and
 * node switches are not reported. Here the connection skips the ready
 * check, channels are confirmed before `subscribe` resolves, a lost
 * connection is replaced (by another node when there is one) with every
 * channel re-subscribed, and the gap is reported through `onState`.
 */
export class ClusterClassicSubscriber {
  private readonly channels = new Set<string>();
  private readonly logger: Logger;
  private readonly problems: LogSummary;
  private readonly subscribeTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly retryMaxDelayMs: number;
  /** The connection being made or in use. */
  private conn: Redis | undefined;
  private connNode = '';
  /** `conn` is ready and the channels it was given on connect are confirmed. */
  private up = false;
  /** A `down` was reported and no `up` since. */
  private reportedDown = false;
  /** Connection attempts that failed in a row (backoff). */
  private failures = 0;
  /** The node of the last connection that failed or was lost: the next attempt takes another one when there is. */
  private avoid = '';
  private known: RedisOptions[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Resolvers of waits for the next change of `up` (or close). */
  private readonly changed = new Set<() => void>();

  constructor(private readonly options: ClassicSubscriberOptions) {
    this.logger = options.logger;
    this.problems = new LogSummary(options.logger, 'redis classic subscriber');
    this.subscribeTimeoutMs = options.subscribeTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.retryMaxDelayMs = options.retryMaxDelayMs ?? 2_000;
  }

  /** Whether a connection is up with its channels confirmed. */
  get isUp(): boolean {
    return this.up;
  }

  /**
   * SUBSCRIBE `channel`; resolves once Redis confirmed it on the current
   * connection (it is then re-subscribed on every later connection). Tries
   * again across lost connections and nodes for up to `subscribeTimeoutMs`,
   * then logs, forgets the channel and rejects.
   */
  async subscribe(channel: string): Promise<void> {
    if (this.closed) throw new Error('the classic subscriber is closed');
    this.channels.add(channel);
    this.start();
    const deadline = Date.now() + this.subscribeTimeoutMs;
    let lastError: unknown;
    for (;;) {
      if (!this.channels.has(channel)) throw new Error(`channel '${channel}' was unsubscribed while subscribing`);
      let conn: Redis;
      try {
        conn = await this.whenUp(deadline);
      } catch (err) {
        if (this.channels.delete(channel) && !this.closed) {
          this.logger.warn({ channel, timeoutMs: this.subscribeTimeoutMs, lastError: describe(lastError ?? err) }, 'redis classic subscription not confirmed in time; giving up (this node misses the channel)');
        }
        throw err;
      }
      try {
        await bounded(conn.subscribe(channel), Math.min(this.connectTimeoutMs, deadline - Date.now()), 'SUBSCRIBE not answered');
        // Confirmed on a connection that is still ours: from here the connection loop keeps it.
        if (this.conn === conn && this.up) return;
      } catch (err) {
        lastError = err;
        this.problems.note('subscribe failed; trying again', { channel, node: this.connNode, err: describe(err) });
        // A connection that does not answer is dropped (the loop makes another); a refusal is tried again after a pause.
        if (err instanceof TimeoutError && this.conn === conn) conn.disconnect();
        else await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(100, deadline - Date.now()))));
      }
    }
  }

  /** UNSUBSCRIBE `channel` (nothing to do when no connection is up: a new one will not subscribe it). */
  async unsubscribe(channel: string): Promise<void> {
    if (!this.channels.delete(channel)) return;
    const conn = this.conn;
    if (!conn || !this.up) return;
    await bounded(conn.unsubscribe(channel), this.connectTimeoutMs, 'UNSUBSCRIBE not answered').catch((err: unknown) =>
      this.problems.note('unsubscribe failed', { channel, err: describe(err) }),
    );
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.channels.clear();
    this.problems.stop();
    const conn = this.conn;
    this.conn = undefined;
    this.up = false;
    conn?.disconnect();
    this.notify();
  }

  private start(): void {
    if (!this.conn && !this.timer && !this.closed) this.connect();
  }

  private notify(): void {
    const waiting = [...this.changed];
    this.changed.clear();
    for (const resolve of waiting) resolve();
  }

  private async whenUp(deadline: number): Promise<Redis> {
    for (;;) {
      if (this.closed) throw new Error('the classic subscriber is closed');
      if (this.up && this.conn) return this.conn;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no classic subscriber connection to the Redis Cluster within ${this.subscribeTimeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.changed.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.changed.add(done);
      });
    }
  }

  /** A node to connect to: one the cluster knows now (else the last ones it knew), another than `avoid` when there is one. */
  private pick(): RedisOptions | undefined {
    const now = this.options.nodes();
    if (now.length > 0) this.known = now;
    const others = this.known.filter((n) => nodeKey(n) !== this.avoid);
    const from = others.length > 0 ? others : this.known;
    return from[Math.floor(Math.random() * from.length)];
  }

  private connect(): void {
    const node = this.pick();
    if (!node) {
      // The cluster client has not resolved its startup nodes yet (it does so right after it is made): look again soon, quietly
      // (a subscription that gives up logs it).
      this.retry(undefined, undefined, 10);
      return;
    }
    const key = nodeKey(node);
    const conn = new Redis({
      host: node.host,
      port: node.port,
      username: node.username,
      password: node.password,
      tls: node.tls,
      family: node.family,
      connectionName: 'rm-classic-subscriber',
      // No ready check: its INFO is refused once a SUBSCRIBE went first (see the class comment).
      enableReadyCheck: false,
      // This class reconnects, to another node when it can, and re-subscribes itself.
      retryStrategy: null,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: null,
      disableClientInfo: true,
      connectTimeout: this.connectTimeoutMs,
      lazyConnect: true,
    });
    this.conn = conn;
    this.connNode = key;
    this.up = false;
    conn.on('error', (err: unknown) => this.problems.note('connection error', { node: key, err: describe(err) }));
    conn.on('message', (channel: string, message: string) => {
      if (this.conn === conn) this.options.onMessage(channel, message);
    });
    conn.once('end', () => this.onEnd(conn, key));
    const channels = [...this.channels];
    const guard = setTimeout(() => {
      this.problems.note('connect or re-subscribe timed out', { node: key, timeoutMs: this.connectTimeoutMs });
      conn.disconnect();
    }, this.connectTimeoutMs);
    guard.unref();
    conn
      .connect()
      .then(() => (channels.length > 0 ? conn.subscribe(...channels) : undefined))
      .then(
        () => {
          clearTimeout(guard);
          if (this.conn !== conn || conn.status !== 'ready') return;
          this.up = true;
          this.failures = 0;
          // Channels given up while connecting were subscribed all the same.
          const stale = channels.filter((c) => !this.channels.has(c));
          if (stale.length > 0) conn.unsubscribe(...stale).catch((err: unknown) => this.problems.note('unsubscribe failed', { err: describe(err) }));
          if (this.reportedDown) {
            this.reportedDown = false;
            this.logger.info({ node: key, channels: channels.length }, 'redis classic subscriber back: channels re-subscribed');
            this.options.onState('up');
          }
          this.notify();
        },
        (err: unknown) => {
          clearTimeout(guard);
          if (this.conn !== conn) return;
          this.problems.note('connect or re-subscribe failed', { node: key, err: describe(err) });
          conn.disconnect();
        },
      );
  }

  private onEnd(conn: Redis, key: string): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    const wasUp = this.up;
    this.up = false;
    if (this.closed) return;
    this.avoid = key;
    if (wasUp) {
      this.reportedDown = true;
      this.logger.warn({ node: key, channels: this.channels.size }, 'redis classic subscriber connection lost: messages are missed until it is re-subscribed (on another node when the cluster has one)');
      this.options.onState('down');
      // The first attempt after a loss is at once (another node): every moment without it loses messages.
      this.connect();
      return;
    }
    this.retry('connection attempt failed', key);
  }

  /** The next connection attempt, after a backoff from `baseMs` doubling per failure in a row, with full jitter, at most `retryMaxDelayMs`. */
  private retry(reason: string | undefined, node: string | undefined, baseMs = 100): void {
    if (this.closed) return;
    this.failures++;
    const ceiling = Math.min(this.retryMaxDelayMs, baseMs * 2 ** Math.min(this.failures, 10));
    const delay = Math.max(5, Math.floor(Math.random() * ceiling));
    if (reason !== undefined) this.problems.note(reason, { node, retryInMs: delay });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed && !this.conn) this.connect();
    }, delay);
    this.timer.unref();
  }
}

function nodeKey(n: RedisOptions): string {
  return `${n.host ?? 'localhost'}:${n.port ?? 6379}`;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class TimeoutError extends Error {}

/** `promise`, or a {@link TimeoutError} after `ms` (the promise itself is left to settle). */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  promise.catch(() => undefined);
  // No time left is not a connection that failed to answer: a plain error, so the connection is kept.
  if (ms <= 0) return Promise.reject(new Error(`${what}: no time left`));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
