import clusterKeySlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { RedisClusterServers, keysUnder, redisNodes, startRedis, waitFor, redisCli, type RedisTarget } from 'realtime-message-testing';
import { RedisBackend, RedisBroker, type RedisClient } from '../../src/index.js';
import type { ChannelFixture, FaultyChannelFixture } from './channels.suite.js';

/** A broker that closes the backend it was given (each fixture node owns its backend). */
class OwnedBroker extends RedisBroker {
  constructor(private readonly owned: RedisBackend) {
    super({ backend: owned });
  }
  override async close(): Promise<void> {
    await super.close();
    await this.owned.close();
  }
}

/** Brokers over one real Redis (or cluster), isolated by a key prefix; each peer is a node with its own clients. */
export async function channelRedisFixture(target: RedisTarget): Promise<ChannelFixture & { prefix: string; clients: RedisClient[] }> {
  const { prefix, clients, first, peer, cleanup } = await redisNodes(target, 'tc', (redis, keyPrefix) => new OwnedBroker(new RedisBackend({ redis, keyPrefix, identityCheckIntervalMs: 200 })));
  return {
    prefix,
    clients,
    broker: first,
    peer,
    cleanup,
    keyTtls: async () => {
      const client = clients[0]!;
      const keys = await keysUnder(client, prefix);
      return Promise.all(keys.map(async (k) => [k, await client.pttl(k)] as [string, number]));
    },
  };
}

/** Every master of a deployment, as plain clients of the caller (disconnected after the test). */
function masters(client: RedisClient): Redis[] {
  return client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
}

/** Kills every pub/sub connection on the deployment (which is the test's own, so they are the fixture's subscribers). */
async function killSubscribers(client: RedisClient): Promise<number> {
  let killed = 0;
  for (const node of masters(client)) {
    const list = (await node.client('LIST')) as string;
    for (const line of list.split('\n')) {
      const fields = Object.fromEntries(line.split(' ').map((kv) => kv.split('=') as [string, string]));
      if (Number(fields['ssub'] ?? 0) > 0 || Number(fields['sub'] ?? 0) > 0) {
        await node.client('KILL', 'ID', fields['id']!);
        killed++;
      }
    }
  }
  return killed;
}

/** A redis-server of the test's own, to kill connections on and restart. */
export async function faultyRedisFixture(): Promise<FaultyChannelFixture> {
  const server = await startRedis();
  const fixture = await channelRedisFixture({ url: server.url });
  return {
    ...fixture,
    dropSubscribers: () => killSubscribers(fixture.clients[0]!),
    restart: async () => {
      await server.restart();
    },
  };
}

/** A 3-master Redis Cluster of the test's own; `restart` restarts the master that holds the channel (its data is lost). */
export async function faultyClusterFixture(): Promise<FaultyChannelFixture> {
  const cluster = await RedisClusterServers.start(3);
  onTestFinished(() => cluster.stop());
  const fixture = await channelRedisFixture({ clusterNodes: cluster.startupNodes });
  return {
    ...fixture,
    dropSubscribers: () => killSubscribers(fixture.clients[0]!),
    restart: async (channel: string) => {
      const slot = clusterKeySlot(`{ch:${channel}}`);
      const slots = await fixture.clients[0]!.cluster('SLOTS');
      const port = slots.find(([from, to]) => slot >= from && slot <= to)![2]![1];
      const node = cluster.nodes.find((n) => n.port === port)!;
      await node.restart();
      for (const n of cluster.nodes) {
        await waitFor(async () => (await redisCli(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), { timeoutMs: 20_000, intervalMs: 50, what: `cluster state ok on ${n.port}` });
      }
    },
  };
}
