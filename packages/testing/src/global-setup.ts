import type { TestProject } from 'vitest/node';
import { RedisClusterServers, RedisServer } from './redis-server.js';

/** One shared redis-server and one shared 3-master cluster for the whole run; tests isolate by key prefix. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [single, cluster] = await Promise.all([RedisServer.start(), RedisClusterServers.start(3)]);
  project.provide('redisUrl', single.url);
  project.provide('clusterNodes', cluster.startupNodes);
  return async () => {
    await Promise.all([single.stop(), cluster.stop()]);
  };
}
