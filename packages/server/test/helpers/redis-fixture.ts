import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { RedisEngine, type RedisClient } from '../../src/index.js';
import type { EngineFixture } from '../conformance/suite.js';

export type RedisTarget = { url: string } | { clusterNodes: Array<{ host: string; port: number }> };

export function connect(target: RedisTarget): RedisClient {
  return 'url' in target
    ? new Redis(target.url, { maxRetriesPerRequest: 2, lazyConnect: false })
    : new Cluster(target.clusterNodes, { redisOptions: { maxRetriesPerRequest: 2 } });
}

/** Every key under `prefix`, on every master. */
export async function keysUnder(client: RedisClient, prefix: string): Promise<string[]> {
  const nodes = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  const out: string[] = [];
  for (const n of nodes) out.push(...(await n.keys(`${prefix}*`)));
  return out;
}

/** Engines over one real Redis (or cluster), isolated from other tests by a unique key prefix. */
export async function redisFixture(target: RedisTarget): Promise<EngineFixture & { prefix: string; clients: RedisClient[] }> {
  const prefix = `t:${randomUUID().slice(0, 8)}:`;
  const clients: RedisClient[] = [];
  const engines: RedisEngine[] = [];
  const make = async (): Promise<RedisEngine> => {
    const client = connect(target);
    clients.push(client);
    const engine = new RedisEngine({ redis: client, keyPrefix: prefix });
    engines.push(engine);
    return engine;
  };
  const engine = await make();
  return {
    prefix,
    clients,
    engine,
    peer: make,
    isEmpty: async () => (await keysUnder(clients[0]!, prefix)).length === 0,
    cleanup: async () => {
      await Promise.all(engines.map((e) => e.close()));
      for (const c of clients) c.disconnect();
    },
  };
}
