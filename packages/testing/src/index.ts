// Test helpers of this repository, one copy for every workspace (private, not published).
export { freePort } from './ports.js';
export { testKeyPair, type TestKeyType } from './keys.js';
export { waitFor } from './wait.js';
export { RedisServer, RedisClusterServers, redisCli } from './redis-server.js';
export { NatsServer, NatsHubAndLeaves, LinkProxy, natsServerBinary, type NatsServerOptions } from './nats-server.js';
export { redisFixture, redisNodes, redisClient, keysUnder, startRedis, type EngineFixture, type RedisTarget } from './redis-fixture.js';
export { NodeProcess, CLI } from './node-process.js';
export { startGateway, testEngine, connect, request, listen, settle, room, type Gateway, type GatewayOptions, type Client, type Listener } from './gateway.js';
export { startServer } from './server.js';
export { TestEngine, type EngineOpName } from './test-engine.js';
export { browserSkipReason, launchChromium, CHROMIUM } from './browser.js';

declare module 'vitest' {
  /** What the global setup (global-setup.ts) provides to every test file, through `inject()`. */
  export interface ProvidedContext {
    /** A redis-server shared by the run; isolate by key prefix. */
    redisUrl: string;
    /** Startup nodes of a shared 3-master Redis Cluster. */
    clusterNodes: Array<{ host: string; port: number }>;
  }
}
