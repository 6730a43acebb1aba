import { randomUUID } from 'node:crypto';
import { redisClient, type RedisTarget } from 'realtime-message-testing';
import { RedisBackend, type RedisClient } from '../../src/index.js';
import { RedisStatusStore } from '../../src/engines/redis/status-store.js';
import type { StatusFixture } from './status.suite.js';

/** Status stores over one real Redis (or cluster), isolated by a key prefix; each peer is a node with its own clients. */
export async function statusRedisFixture(target: RedisTarget): Promise<StatusFixture & { prefix: string; clients: RedisClient[] }> {
  const prefix = `ts:${randomUUID().slice(0, 8)}:`;
  const clients: RedisClient[] = [];
  const backends: RedisBackend[] = [];
  const make = async (): Promise<RedisStatusStore> => {
    const client = redisClient(target);
    clients.push(client);
    const backend = new RedisBackend({ redis: client, keyPrefix: prefix });
    backends.push(backend);
    return new RedisStatusStore({ backend });
  };
  const store = await make();
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      await Promise.all(backends.map((b) => b.close()));
      for (const c of clients) c.disconnect();
    })());
  return { prefix, clients, store, peer: make, cleanup };
}
