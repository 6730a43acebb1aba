import { Cluster, Redis } from 'ioredis';
import { PresenceService as CorePresenceService, type PresenceOptions } from '../core/presence/service.js';
import { RedisEngine } from '../engines/redis/redis-engine.js';
import type { RedisClient } from '../engines/redis/backend.js';

/** Options of the Redis form: every {@link PresenceOptions} but the engine, plus the key prefix. */
export interface RedisPresenceOptions extends Omit<PresenceOptions, 'engine' | 'hub'> {
  /** Prefix of every key and channel. @default 'rm:' */
  keyPrefix?: string;
  /** Start the reaper now (the original design's service ran it on its own). @default true */
  startReaper?: boolean;
}

function isRedisClient(value: unknown): value is RedisClient {
  if (value instanceof Redis || value instanceof Cluster) return true;
  // Another copy of ioredis: recognise the client by what the engine uses.
  const v = value as Partial<Record<'defineCommand' | 'evalsha' | 'duplicate', unknown>> | null;
  return typeof value === 'object' && v !== null && typeof v.defineCommand === 'function' && typeof v.evalsha === 'function' && typeof v.duplicate === 'function';
}

/**
 * The presence service, in the two forms users know:
 *
 * - `new PresenceService({ engine, ...options })`: over any engine (memory,
 *   Redis, yours); the caller starts the reaper and owns the engine.
 * - `new PresenceService(redis, { ttlMs, reaperIntervalMs, reaperLookbackMs })`:
 *   the original design's form, over an ioredis client or cluster. It makes
 *   its own Redis engine, starts its reaper, and `stop()` releases everything
 *   it opened (the reaper, its subscriber connection); the caller's client
 *   stays open.
 *
 * @example
 * const presence = new PresenceService(redis, { ttlMs: 30_000, reaperIntervalMs: 3_000, reaperLookbackMs: 60_000 });
 * await presence.subscribe((event) => console.log('presence event', event)); // every event of every room
 * await presence.stop();
 */
export class PresenceService extends CorePresenceService {
  private readonly ownedEngine: RedisEngine | undefined;

  constructor(options: PresenceOptions);
  constructor(redis: RedisClient, options?: RedisPresenceOptions);
  constructor(first: PresenceOptions | RedisClient, options: RedisPresenceOptions = {}) {
    if (isRedisClient(first)) {
      if (typeof options !== 'object' || options === null) throw new TypeError('new PresenceService(redis, options): options must be an object');
      const engine = new RedisEngine({ redis: first, keyPrefix: options.keyPrefix, logger: options.logger });
      super({ ...options, engine });
      this.ownedEngine = engine;
      if (options.startReaper !== false) this.start();
      return;
    }
    const engine = (first as Partial<PresenceOptions> | null | undefined)?.engine;
    if (typeof first !== 'object' || first === null || typeof engine !== 'object' || engine === null || typeof engine.join !== 'function') {
      throw new TypeError('new PresenceService(...) needs an ioredis client or cluster (new PresenceService(redis, options)) or options with an engine (new PresenceService({ engine: new MemoryEngine() }))');
    }
    super(first as PresenceOptions);
    this.ownedEngine = undefined;
  }

  /** Stops the reaper, drops every subscription, and closes what this service opened (never the caller's Redis client). */
  override async dispose(): Promise<void> {
    await super.dispose();
    await this.ownedEngine?.close();
  }
}
