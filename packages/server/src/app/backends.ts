import type { PresenceEngine } from '../core/presence/engine.js';
import type { HealthCheck } from '../core/shared/health.js';
import type { Logger } from '../core/shared/logger.js';
import { MemoryEngine } from '../engines/memory/memory-engine.js';
import { RedisBackend, type RedisClient } from '../engines/redis/backend.js';
import type { BackendLogOptions } from '../engines/redis/backend-log.js';
import { RedisEngine } from '../engines/redis/redis-engine.js';
import type { StatusStore } from '../core/status/store.js';
import { MemoryStatusStore } from '../engines/memory/status-store.js';
import { RedisStatusStore } from '../engines/redis/status-store.js';
import type { ChannelBroker } from '../core/channels/broker.js';
import { MemoryBroker } from '../engines/memory/channel-broker.js';
import { RedisBroker } from '../engines/redis/channel-broker.js';
import type { ControlBus } from '../core/shared/control.js';
import { RedisControlBus } from '../engines/redis/control-bus.js';

/** The storage of one node, chosen once by the composition root and shared by every capability. */
export interface Backends {
  /** `memory`, `redis` or `redis-cluster`. */
  readonly kind: string;
  readonly presence: PresenceEngine;
  /** User status on the same storage; undefined for backends around an engine the caller made (status needs its own store then). */
  readonly status?: StatusStore | undefined;
  /** Channels on the same storage; undefined for backends around an engine the caller made. */
  readonly channels?: ChannelBroker | undefined;
  /** The node-to-node control bus (cluster-wide server API operations); undefined with memory (one node). */
  readonly control?: ControlBus | undefined;
  /** What `/ready` checks. */
  readonly health: readonly HealthCheck[];
  /** Releases what was opened here (subscriber connections); never a client that was handed in. */
  close(): Promise<void>;
}

export interface BackendOptions {
  /** An ioredis client or cluster; without it everything lives in this process. */
  redis?: RedisClient | undefined;
  /** A dedicated SSUBSCRIBE client. @default a duplicate of `redis` */
  subscriber?: RedisClient | undefined;
  /** @default 'rm:' */
  keyPrefix?: string | undefined;
  /** The backend log (Redis only; docs/channels.md, "Backend log"). @default off */
  backendLog?: BackendLogOptions | undefined;
  /** Least time between two heartbeat calls to Redis (`RedisEngineOptions.heartbeatWindowMs`). @default 2 */
  heartbeatWindowMs?: number | undefined;
  /** Least time between two sends of connection changes to the status store (`RedisStatusStoreOptions.connWindowMs`). @default 5 */
  statusWindowMs?: number | undefined;
  logger?: Logger | undefined;
}

/** Memory when no Redis is given, Redis (single or Cluster) otherwise. */
export function createBackends(options: BackendOptions): Backends {
  const logOn = options.backendLog !== undefined && options.backendLog.partitions > 0;
  if (!options.redis) {
    if (logOn) throw new TypeError('backendLog needs `redis`: the log is a set of Redis Streams, and the memory backends have none');
    const presence = new MemoryEngine();
    const status = new MemoryStatusStore();
    const channels = new MemoryBroker();
    return {
      kind: 'memory',
      presence,
      status,
      channels,
      health: [{ name: 'memory', check: async () => {} }],
      close: async () => {
        await presence.close();
        await status.close();
        await channels.close();
      },
    };
  }
  const redis = new RedisBackend({
    redis: options.redis,
    subscriber: options.subscriber,
    keyPrefix: options.keyPrefix,
    backendLog: logOn ? options.backendLog : undefined,
    logger: options.logger,
  });
  const presence = new RedisEngine({ backend: redis, heartbeatWindowMs: options.heartbeatWindowMs, logger: options.logger });
  const status = new RedisStatusStore({ backend: redis, connWindowMs: options.statusWindowMs, logger: options.logger });
  const channels = new RedisBroker({ backend: redis, logger: options.logger });
  return {
    kind: redis.kind,
    presence,
    status,
    channels,
    control: new RedisControlBus(redis),
    health: [redis.health],
    close: async () => {
      await presence.close();
      await status.close();
      await channels.close();
      await redis.close();
    },
  };
}

/** Backends around an engine the caller made (and keeps: it is not closed here). */
export function backendsOf(engine: PresenceEngine): Backends {
  return { kind: engine.kind, presence: engine, health: [{ name: engine.kind, check: () => engine.ping() }], close: async () => {} };
}
