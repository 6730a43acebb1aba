import { hostname } from 'node:os';
import {
  PresenceError,
  StatusUpdateSchema,
  StatusUserIdSchema,
  parsePayload,
  type StatusRecord,
  type StatusUpdate,
  type UserId,
} from 'realtime-message-protocol';
import type { z } from 'zod';
import { systemClock, type Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { StatusCache, type StatusCacheOptions } from './cache.js';
import { toRecord, type StatusState } from './model.js';
import type { StatusCommand, StatusContext, StatusFeedItem, StatusFeedState, StatusStore, SweepResult } from './store.js';

export interface StatusServiceOptions {
  /** Where status lives: `new MemoryStatusStore()` or a Redis status store. */
  store: StatusStore;
  /** Reported as `nodeId` on the records this node changes. @default `<hostname>-<pid>` */
  nodeId?: string;
  /** Automatic away after this long without reported activity (SPEC §7 rule 3); 0 = off. @default 0 */
  awayAfterMs?: number;
  /** Period of the sweeper that emits expiry and automatic-away events. @default 1000 */
  sweepIntervalMs?: number;
  /** Most users one store sweep call visits; a pass calls until nothing is due or one interval passed. @default 1000 */
  sweepBatchSize?: number;
  /** The node-local cache of records, or `false` for none. @default { max: 100000, ttlMs: 300000 } */
  cache?: StatusCacheOptions | false;
  /** @default the system clock */
  clock?: Clock;
  /** @default silent */
  logger?: Logger;
  /** Called after every store call with its duration; for metrics. */
  observe?: (op: StatusOp, durationMs: number, outcome: 'ok' | 'error') => void;
  /** Called once per read with the cache hits and misses of its users; for metrics. */
  observeCache?: (hits: number, misses: number) => void;
  /** Called for every status event this node receives (from any node); for metrics. */
  observeEvent?: (event: StatusRecord) => void;
}

export type { ConnectionChange, StatusListener, StatusOp, StatusRead } from './service-types.js';
import type { ConnectionChange, StatusListener, StatusOp, StatusRead } from './service-types.js';

const MAX_SWEEP_CALLS = 100;

/**
 * User status (SPEC §7) over a {@link StatusStore}: validation, the model's
 * rules, a node-local cache kept exact by the store's feed, the sweeper that
 * turns expiries into events, and the status events of every node.
 *
 * @example
 * const status = new StatusService({ store: new MemoryStatusStore() });
 * await status.start();
 * await status.set('ada', { status: 'busy', message: 'in a meeting', ttlSeconds: 3600 });
 * const off = await status.subscribe((record) => console.info(record.userId, record.status));
 * (await status.get('ada')).status; // 'offline' until ada connects, then 'busy'
 */
export class StatusService {
  readonly store: StatusStore;
  readonly nodeId: string;
  readonly awayAfterMs: number;
  private readonly sweepIntervalMs: number;
  private readonly sweepBatchSize: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly options: StatusServiceOptions;
  private readonly cache: StatusCache | undefined;
  /** True while the feed is subscribed and delivering: only then may the cache answer or be filled. */
  private feedLive = false;
  /** The feed's subscription resolved (it may be interrupted since). */
  private feedSubscribed = false;
  /** When the store reported the feed interrupted; undefined while it delivers. */
  private feedLostAt: number | undefined;
  private readonly listeners = new Set<StatusListener>();
  private readonly resumeListeners = new Set<() => void>();
  private readonly endedListeners = new Set<(ended: { conn: string; rank: number }) => void>();
  private unsubscribeFeed: (() => Promise<void>) | undefined;
  private starting: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<SweepResult> | undefined;
  private disposed = false;

  constructor(options: StatusServiceOptions) {
    this.options = options;
    this.store = options.store;
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}`;
    this.awayAfterMs = nonNegativeInt('awayAfterMs', options.awayAfterMs ?? 0);
    this.sweepIntervalMs = nonNegativeInt('sweepIntervalMs', options.sweepIntervalMs ?? 1_000) || 1;
    this.sweepBatchSize = nonNegativeInt('sweepBatchSize', options.sweepBatchSize ?? 1_000) || 1;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.cache = options.cache === false ? undefined : new StatusCache({ now: () => this.clock.now(), ...options.cache });
  }

  /** Cache hits and misses since start, and entries held. */
  get cacheStats(): { hits: number; misses: number; size: number } {
    return { hits: this.cache?.hits ?? 0, misses: this.cache?.misses ?? 0, size: this.cache?.size ?? 0 };
  }

  /**
   * Subscribes to the store's feed (which keeps the cache exact and feeds
   * {@link subscribe}) and, unless `sweep: false`, starts the sweeper.
   * Idempotent. Until it resolves, reads go to the store.
   */
  start(opts: { sweep?: boolean } = {}): Promise<void> {
    this.checkOpen();
    if (opts.sweep !== false && !this.sweepTimer) this.startSweeper();
    return (this.starting ??= this.call('subscribe', () =>
      this.store.subscribe(
        (item) => this.onFeed(item),
        (state) => this.onFeedState(state),
      ),
    ).then(
      (off) => {
        this.unsubscribeFeed = off;
        this.feedSubscribed = true;
        this.feedLive = !this.disposed && this.feedLostAt === undefined;
      },
      (err: unknown) => {
        this.starting = undefined;
        throw err;
      },
    ));
  }

  /**
   * The feed broke: invalidations may be lost from now on, so the cache
   * neither answers nor fills, but keeps its entries (exact as of now) for
   * {@link getManyOrStale}. When it resumes, whatever was written meanwhile
   * never reached the cache: it is emptied before it answers again.
   */
  private onFeedState(state: StatusFeedState): void {
    if (state === 'interrupted') {
      this.feedLostAt ??= this.clock.now();
      this.feedLive = false;
      this.logger.warn({ store: this.store.kind }, 'status feed interrupted: reads go to the store (cached answers only while it is unreachable, marked stale)');
      return;
    }
    if (this.feedLostAt === undefined) return;
    this.feedLostAt = undefined;
    this.cache?.clear();
    this.feedLive = this.feedSubscribed && !this.disposed;
    this.logger.info({ store: this.store.kind }, 'status feed resumed: the node-local cache was emptied');
    for (const l of [...this.resumeListeners]) {
      try {
        l();
      } catch (err) {
        this.logger.error({ err }, 'status feed-resume listener threw');
      }
    }
  }

  /** Calls `listener` each time the feed resumes after an interruption (events of the gap may be missed: the socket transport reads its users again); returns its removal. */
  onFeedResumed(listener: () => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  /** Calls `listener` with each end of a presence connection the store reports applied; returns its removal, or undefined when the store reports none. */
  onConnectionEnded(listener: (ended: { conn: string; rank: number }) => void): (() => void) | undefined {
    if (this.store.reportsEnds !== true) return undefined;
    this.endedListeners.add(listener);
    return () => this.endedListeners.delete(listener);
  }

  private onFeed(item: StatusFeedItem): void {
    this.cache?.invalidate(item.userId, item.version);
    if (item.ended) for (const l of this.endedListeners) l(item.ended);
    const event = item.event;
    if (!event) return;
    this.options.observeEvent?.(event);
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (err) {
        this.logger.error({ err }, 'status listener threw');
      }
    }
  }

  /**
   * Receives every status event of every user from every node (exactly one
   * per change, in order per user) until the returned function is called.
   * Starts the feed if needed.
   */
  async subscribe(listener: StatusListener): Promise<() => Promise<void>> {
    if (typeof listener !== 'function') throw new TypeError('subscribe(listener) needs a listener function');
    await this.start({ sweep: this.sweepTimer !== undefined });
    const l: StatusListener = (e) => listener(e);
    this.listeners.add(l);
    return async () => {
      this.listeners.delete(l);
    };
  }

  /** The user's record as of now; a user never seen is `offline` with `lastSeen: null`. */
  async get(userId: string): Promise<StatusRecord> {
    const [record] = await this.getMany([userId]);
    return record!;
  }

  /**
   * The user's record when this node's cache holds it (and the feed that
   * keeps the cache exact delivers), without a promise: the hot path of a
   * single read. Undefined otherwise (not counted as a miss: the read that
   * follows, {@link getMany}, counts it).
   */
  cachedRecord(userId: string): StatusRecord | undefined {
    const cache = this.feedLive ? this.cache : undefined;
    if (cache === undefined || typeof userId !== 'string') return undefined;
    const now = this.clock.now();
    // Only valid ids are ever cached: a hit needs no parse.
    const hit = cache.hit(userId as UserId, now);
    if (hit === undefined) return undefined;
    this.options.observeCache?.(1, 0);
    return toRecord(userId as UserId, hit ?? undefined, now, this.awayAfterMs);
  }

  /** Records in request order (duplicates answered twice). Cached users cost no store call. */
  async getMany(userIds: readonly string[]): Promise<StatusRecord[]> {
    this.checkOpen();
    if (!Array.isArray(userIds)) throw new PresenceError('invalid_payload', 'userIds must be an array of user ids');
    const ids = new Array<UserId>(userIds.length);
    const states = new Array<StatusState | null | undefined>(userIds.length);
    const wanted = new Set<UserId>();
    const cache = this.feedLive ? this.cache : undefined;
    let now = this.clock.now();
    let hits = 0;
    for (let i = 0; i < userIds.length; i++) {
      const raw = userIds[i];
      // Only valid ids are ever cached: a hit needs no parse.
      const hit = cache && typeof raw === 'string' ? cache.get(raw as UserId, now) : undefined;
      if (hit !== undefined) {
        ids[i] = raw as UserId;
        states[i] = hit;
        hits++;
        continue;
      }
      ids[i] = this.parse(StatusUserIdSchema, raw);
      wanted.add(ids[i]!);
    }
    if (cache) this.options.observeCache?.(hits, userIds.length - hits);
    const missing = [...wanted];
    if (missing.length > 0) {
      const fills = cache ? missing.map((id) => cache.beginRead(id)) : [];
      let read: Array<StatusState | undefined>;
      try {
        read = await this.call('read', () => this.store.read(missing));
      } catch (err) {
        for (const f of fills) f(undefined, false);
        throw err;
      }
      const byId = new Map<UserId, StatusState | undefined>();
      missing.forEach((id, i) => {
        byId.set(id, read[i]);
        fills[i]?.(read[i]);
      });
      for (let i = 0; i < ids.length; i++) if (states[i] === undefined) states[i] = byId.get(ids[i]!) ?? null;
      now = this.clock.now();
    }
    return ids.map((id, i) => toRecord(id, states[i] ?? undefined, now, this.awayAfterMs));
  }

  /**
   * {@link getMany} that degrades instead of failing while the store cannot
   * be reached: when the store read fails with `unavailable` and every
   * requested user is held in this node's cache (filled while the feed
   * delivered, so exact as of the moment the node lost the store), answers
   * from the cache with `stale: true`. Any other failure, or a user not
   * held, throws as getMany does. Once the feed resumes, the cache is
   * emptied, so no stale entry is served after recovery.
   *
   * @example
   * const read = await status.getManyOrStale(['ada', 'bob']);
   * if (read.stale) reply.header('status-stale', '1');
   */
  async getManyOrStale(userIds: readonly string[]): Promise<StatusRead> {
    try {
      return { users: await this.getMany(userIds), stale: false };
    } catch (err) {
      const cache = this.cache;
      if (!cache || !(err instanceof PresenceError) || err.code !== 'unavailable') throw err;
      const now = this.clock.now();
      const users: StatusRecord[] = [];
      for (const raw of userIds) {
        const id = this.parse(StatusUserIdSchema, raw);
        const state = cache.peekStale(id);
        if (state === undefined) throw err;
        users.push({ ...toRecord(id, state ?? undefined, now, this.awayAfterMs), stale: true });
      }
      return { users, stale: true, since: this.feedLostAt ?? now };
    }
  }

  /**
   * Sets the user's status (SPEC §7): `away`, `busy` or `offline`
   * (invisible) is a manual status, expiring after `ttlSeconds` if given;
   * `online` clears the manual status and, with `ttlSeconds`, keeps the user
   * connected that long without a socket. `message` sets (null clears) the
   * message, expiring after `messageTtlSeconds` if given.
   */
  async set(userId: string, update: StatusUpdate): Promise<StatusRecord> {
    this.checkOpen();
    const id = this.parse(StatusUserIdSchema, userId);
    const u = this.parse(StatusUpdateSchema, update);
    const ctx = this.context();
    const ttl = u.ttlSeconds === undefined ? null : ctx.now + u.ttlSeconds * 1000;
    const messageExpiresAt = u.messageTtlSeconds === undefined ? null : ctx.now + u.messageTtlSeconds * 1000;
    const manual = u.status === 'online' ? null : u.status;
    return this.write({
      ...ctx,
      userId: id,
      type: 'set',
      manual,
      manualExpiresAt: manual === null ? null : ttl,
      keepAliveUntil: manual === null && ttl !== null ? ttl : undefined,
      message: u.message,
      messageExpiresAt,
    });
  }

  /** Clears the manual status and the message (`DELETE`). */
  async clear(userId: string): Promise<StatusRecord> {
    this.checkOpen();
    return this.write({ ...this.context(), userId: this.parse(StatusUserIdSchema, userId), type: 'clear' });
  }

  /** Reports activity for automatic away. A no-op (no store call) when automatic away is off. */
  async activity(userId: string): Promise<void> {
    this.checkOpen();
    const id = this.parse(StatusUserIdSchema, userId);
    if (this.awayAfterMs === 0) return;
    await this.write({ ...this.context(), userId: id, type: 'activity' });
  }

  /**
   * A presence connection of the user became live or ended. Idempotent and
   * order-free per connection (see {@link StatusCommand}), so every node may
   * report every presence event it sees.
   */
  async connection(change: ConnectionChange): Promise<void> {
    this.checkOpen();
    const id = this.parse(StatusUserIdSchema, change.userId);
    // A connection change fills no new cache entry (most users nobody reads): the record is wanted only for a cached user.
    const stateWanted = this.feedLive && this.cache !== undefined && this.cache.holds(id);
    const cmd: StatusCommand = { now: this.clock.now(), nodeId: this.nodeId, awayAfterMs: this.awayAfterMs, userId: id, type: 'conn', conn: change.conn, epoch: change.epoch, live: change.live, stateWanted };
    const res = await this.call(cmd.type, () => this.store.write(cmd));
    if (this.feedLive) this.cache?.fillFromWrite(id, res.state, true);
  }

  private async write(cmd: StatusCommand): Promise<StatusRecord> {
    const res = await this.call(cmd.type, () => this.store.write(cmd));
    if (this.feedLive) this.cache?.fillFromWrite(cmd.userId, res.state);
    return toRecord(cmd.userId, res.state, cmd.now, this.awayAfterMs);
  }

  private context(): StatusContext {
    return { now: this.clock.now(), nodeId: this.nodeId, awayAfterMs: this.awayAfterMs };
  }

  private startSweeper(): void {
    const tick = (): void => {
      void this.sweepNow()
        .catch((err: unknown) => this.logger.warn({ err }, 'status sweep failed; retrying next interval'))
        .finally(() => {
          if (this.sweepTimer && !this.disposed) {
            this.sweepTimer = setTimeout(tick, this.sweepIntervalMs);
            this.sweepTimer.unref();
          }
        });
    };
    this.sweepTimer = setTimeout(tick, this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /**
   * Runs one sweep now: every user whose deadline passed (expiries,
   * automatic away) is visited and gets its event, in store calls of at most
   * `sweepBatchSize` users. Safe on every node at once. Concurrent calls
   * share one pass.
   */
  sweepNow(): Promise<SweepResult> {
    if (this.disposed) return Promise.resolve({ visited: 0, events: 0, more: false });
    if (this.sweeping) return this.sweeping;
    const run = async (): Promise<SweepResult> => {
      const total: SweepResult = { visited: 0, events: 0, more: false };
      for (let i = 0; i < MAX_SWEEP_CALLS && !this.disposed; i++) {
        const r = await this.call('sweep', () => this.store.sweep({ ...this.context(), limit: this.sweepBatchSize, intervalMs: this.sweepIntervalMs }));
        total.visited += r.visited;
        total.events += r.events;
        total.more = r.more;
        if (!r.more) break;
      }
      return total;
    };
    this.sweeping = run().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private checkOpen(): void {
    if (this.disposed) throw new PresenceError('internal', 'the status service was disposed');
  }

  private parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
    const res = parsePayload(schema, input);
    if (!res.ok) throw new PresenceError(res.error.code, res.error.message);
    return res.value;
  }

  /** Runs a store call, turning failures into `unavailable` (store unreachable) or `internal`. */
  private async call<T>(op: StatusOp, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const out = await fn();
      this.options.observe?.(op, performance.now() - started, 'ok');
      return out;
    } catch (err) {
      this.options.observe?.(op, performance.now() - started, 'error');
      if (err instanceof PresenceError) throw err;
      if (this.store.isUnavailable?.(err)) {
        throw new PresenceError('unavailable', `status storage (${this.store.kind}) cannot be reached during ${op}; retry with backoff`, { cause: err });
      }
      this.logger.error({ err, op, store: this.store.kind }, 'status store call failed');
      throw new PresenceError('internal', `status storage failed during ${op}; retry with backoff`, { cause: err });
    }
  }

  /** Stops the sweeper and the feed; does not close the store. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.feedLive = false;
    this.feedSubscribed = false;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.listeners.clear();
    await this.starting?.catch(() => undefined);
    await this.unsubscribeFeed?.();
    await this.sweeping?.catch(() => undefined);
  }
}

function nonNegativeInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new PresenceError('invalid_payload', `${name} must be an integer >= 0 (got ${String(value)})`);
  return value;
}
