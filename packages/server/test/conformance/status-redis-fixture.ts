import { redisNodes, type RedisTarget } from 'realtime-message-testing';
import { RedisBackend, type RedisClient } from '../../src/index.js';
import { RedisStatusStore } from '../../src/engines/redis/status-store.js';
import type { StatusFixture } from './status.suite.js';

/** A status store that closes the backend it made. */
class OwnedStatusStore extends RedisStatusStore {
  constructor(private readonly owned: RedisBackend) {
    super({ backend: owned });
  }
  override async close(): Promise<void> {
    await super.close();
    await this.owned.close();
  }
}

/** Status stores over one real Redis (or cluster), isolated by a key prefix; each peer is a node with its own clients. */
export async function statusRedisFixture(target: RedisTarget): Promise<StatusFixture & { prefix: string; clients: RedisClient[] }> {
  const { prefix, clients, first, peer, cleanup } = await redisNodes(target, 'ts', (redis, keyPrefix) => new OwnedStatusStore(new RedisBackend({ redis, keyPrefix })));
  return { prefix, clients, store: first, peer, cleanup };
}
