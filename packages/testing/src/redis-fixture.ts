import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { RedisEngine, type PresenceEngine, type RedisClient } from 'realtime-message';
import { RedisServer } from './redis-server.js';

/** What an engine conformance target gives each test: isolated storage and a way to make more nodes on it. */
export interface EngineFixture {
  engine: PresenceEngine;
  /** Another engine over the same storage: another node of the cluster. */
  peer(): Promise<PresenceEngine>;
  /** True when nothing of this fixture is left in storage. */
  isEmpty(): Promise<boolean>;
  cleanup(): Promise<void>;
}

export type RedisTarget = { url: string } | { clusterNodes: Array<{ host: string; port: number }> };

/** A new ioredis client (or Cluster) for the target; the caller disconnects it. */
export function redisClient(target: RedisTarget): RedisClient {
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

/**
 * Nodes over one real Redis (or cluster), each with its own client, isolated
 * from other tests by a unique key prefix: `build` makes what a node holds
 * (an engine, a store) from its client. Cleaned up after the test;
 * `cleanup()` may also be called earlier (it runs once).
 */
export async function redisNodes<T extends { close(): Promise<void> }>(
  target: RedisTarget,
  prefixBase: string,
  build: (client: RedisClient, prefix: string) => T,
): Promise<{ prefix: string; clients: RedisClient[]; first: T; peer: () => Promise<T>; cleanup: () => Promise<void> }> {
  const prefix = `${prefixBase}:${randomUUID().slice(0, 8)}:`;
  const clients: RedisClient[] = [];
  const nodes: T[] = [];
  const peer = async (): Promise<T> => {
    const client = redisClient(target);
    clients.push(client);
    const node = build(client, prefix);
    nodes.push(node);
    return node;
  };
  const first = await peer();
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      await Promise.all(nodes.map((n) => n.close()));
      for (const c of clients) c.disconnect();
    })());
  onTestFinished(cleanup);
  return { prefix, clients, first, peer, cleanup };
}

/** Engines over one real Redis (or cluster): {@link redisNodes} of RedisEngines. */
export async function redisFixture(target: RedisTarget): Promise<EngineFixture & { prefix: string; clients: RedisClient[] }> {
  const { prefix, clients, first, peer, cleanup } = await redisNodes(target, 't', (redis, keyPrefix) => new RedisEngine({ redis, keyPrefix }));
  return {
    prefix,
    clients,
    engine: first,
    peer,
    isEmpty: async () => (await keysUnder(clients[0]!, prefix)).length === 0,
    cleanup,
  };
}

/** A redis-server of the test's own (for tests that kill or restart it), stopped after the test. */
export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  const server = await RedisServer.start(extraArgs);
  onTestFinished(() => server.stop());
  return server;
}
