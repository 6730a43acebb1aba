import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { RedisClusterServers, redisCli, waitFor } from 'realtime-message-testing';
import { RedisBackend, RedisEngine, type RedisClient } from '../src/index.js';
import type { Logger } from '../src/core/shared/logger.js';
import type { StatusFeedState } from '../src/core/status/store.js';
import { RedisStatusStore } from '../src/engines/redis/status-store.js';

/**
 * Classic pub/sub (SUBSCRIBE) on a Redis Cluster: the user-status feed
 * (`<prefix>status`) and the all-presence-events feed (`<prefix>events`).
 * ioredis's own cluster subscriber loses a SUBSCRIBE issued while its
 * connection runs the ready check (the check's INFO is refused once the
 * connection is subscribed, and every queued command fails), which took the
 * feed away from about one node start in ten. These tests start nodes the
 * way a server does and require every classic subscription to be confirmed
 * and to deliver, and the connection to come back when its node goes away.
 */

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The clients of one node as the server makes them (app/server.ts): a command Cluster and a subscriber Cluster with sharded subscribers. */
function nodeClients(nodes: Array<{ host: string; port: number }>): { redis: Cluster; sub: Cluster } {
  const redis = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  const sub = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 }, shardedSubscribers: true });
  for (const c of [redis, sub]) c.on('error', () => {});
  onTestFinished(() => {
    redis.disconnect();
    sub.disconnect();
  });
  return { redis, sub };
}

function recordingLogger(): Logger & { lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg: msg ?? '', obj });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Settles within `ms`: 'ok', the error message, or 'timeout'. */
async function outcome(p: Promise<unknown>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([p.then(() => 'ok', (err: unknown) => `rejected: ${err instanceof Error ? err.message : String(err)}`), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** PUBLISH `message` on `channel` every 100 ms until `received()` or `ms`; whether it was received. */
async function deliveredWithin(pub: RedisClient, channel: string, message: string, received: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!received() && Date.now() < deadline) {
    await pub.publish(channel, message);
    await sleep(100);
  }
  return received();
}

describe('Redis Cluster: classic pub/sub feeds', () => {
  it('20 fresh nodes subscribe the status and events feeds (while connecting and right after ready): every subscription is confirmed and delivers', { timeout: 90_000 }, async () => {
    const nodes = inject('clusterNodes');
    const pub = new Cluster(nodes);
    pub.on('error', () => {});
    onTestFinished(() => void pub.disconnect());
    const failures: string[] = [];

    const startNode = async (i: number): Promise<void> => {
      const { redis, sub } = nodeClients(nodes);
      const keyPrefix = `rcc:${randomUUID().slice(0, 8)}:`;
      const backend = new RedisBackend({ redis, subscriber: sub, keyPrefix, identityCheckIntervalMs: 0 });
      onTestFinished(() => backend.close());
      const engine = new RedisEngine({ backend });
      const store = new RedisStatusStore({ backend });
      // Half the nodes subscribe while their clients connect (and refresh their slots), half once they are ready:
      // then each SUBSCRIBE goes out a moment after the one before, as a node start issues them.
      if (i % 2 === 1) await new Promise((resolve) => sub.once('ready', resolve));
      const got = new Map<string, number>();
      const count = (channel: string) => () => void got.set(channel, (got.get(channel) ?? 0) + 1);
      // Each outcome is taken at once (bounded), so a rejection is handled when it happens.
      const subscriptions: Array<{ channel: string; message: string; done: Promise<string> }> = [];
      const statusUser = `u${i}`;
      subscriptions.push({
        channel: backend.keys.statusChannel,
        message: JSON.stringify({ u: statusUser, v: 1 }),
        done: outcome(store.subscribe((item) => item.userId === statusUser && count(backend.keys.statusChannel)()), 12_000),
      });
      await sleep(Math.random() * 2);
      subscriptions.push({
        channel: backend.keys.allEvents,
        message: JSON.stringify({ type: 'leave', roomId: 'r', userId: statusUser, connId: 'c', epoch: 1 }),
        done: outcome(engine.subscribeAll((event) => event.userId === statusUser && count(backend.keys.allEvents)()), 12_000),
      });
      for (let k = 0; k < 4; k++) {
        await sleep(Math.random() * 2);
        // Sharded subscriptions of rooms go out on the same subscriber client meanwhile.
        void engine.subscribe(`room-${k}` as never, () => {}).catch(() => {});
        const channel = `${keyPrefix}extra:${k}`;
        subscriptions.push({ channel, message: 'x', done: outcome(backend.subscribeGlobal(channel, count(channel)), 12_000) });
      }
      const outcomes = await Promise.all(subscriptions.map((s) => s.done));
      for (const [k, s] of subscriptions.entries()) {
        if (outcomes[k] !== 'ok') {
          failures.push(`node ${i} ${s.channel}: ${outcomes[k]}`);
          continue;
        }
        if (!(await deliveredWithin(pub, s.channel, s.message, () => (got.get(s.channel) ?? 0) > 0, 3_000))) failures.push(`node ${i} ${s.channel}: confirmed, nothing delivered`);
      }
    };

    // Five nodes start at a time, as in a rolling deploy.
    for (let i = 0; i < 20; i += 5) await Promise.all([0, 1, 2, 3, 4].map((j) => startNode(i + j)));
    expect(failures).toEqual([]);
  });

  describe('on a cluster of its own', () => {
    it('the classic connection comes back on another node when its node dies (feed interrupted, then resumed and delivering); with every node gone a subscription is given up in bounded time, logged', { timeout: 90_000 }, async () => {
      const cluster = await RedisClusterServers.start(3);
      onTestFinished(() => cluster.stop());
      const { redis, sub } = nodeClients(cluster.startupNodes);
      const logger = recordingLogger();
      const backend = new RedisBackend({ redis, subscriber: sub, keyPrefix: 'rcc:', identityCheckIntervalMs: 0, classicSubscribeTimeoutMs: 1_500, logger });
      onTestFinished(() => backend.close());
      const store = new RedisStatusStore({ backend });
      const states: StatusFeedState[] = [];
      const users: string[] = [];
      await store.subscribe(
        (item) => users.push(item.userId),
        (state) => states.push(state),
      );

      // The node holding the classic subscriber connection (named by the backend).
      const classicNode = async (): Promise<number | undefined> => {
        for (const n of cluster.nodes) {
          const list = await redisCli(n.port, 'CLIENT', 'LIST').catch(() => '');
          if (list.split('\n').some((l) => l.includes('name=rm-classic-subscriber') && / sub=[1-9]/.test(l))) return n.port;
        }
        return undefined;
      };
      const first = await waitFor(classicNode, { timeoutMs: 5_000, what: 'the classic subscriber connection' });
      const survivor = cluster.nodes.find((n) => n.port !== first)!;
      const direct = new Redis(survivor.port, '127.0.0.1');
      direct.on('error', () => {});
      onTestFinished(() => void direct.disconnect());
      expect(await deliveredWithin(direct, backend.keys.statusChannel, JSON.stringify({ u: 'before', v: 1 }), () => users.includes('before'), 3_000)).toBe(true);

      await cluster.nodes.find((n) => n.port === first)!.kill();
      await waitFor(() => states.includes('resumed'), { timeoutMs: 5_000, what: 'the status feed resumed' });
      expect(states).toEqual(['interrupted', 'resumed']);
      const second = await waitFor(classicNode, { timeoutMs: 5_000, what: 'the classic subscriber connection again' });
      expect(second).not.toBe(first);
      expect(await deliveredWithin(direct, backend.keys.statusChannel, JSON.stringify({ u: 'after', v: 2 }), () => users.includes('after'), 3_000)).toBe(true);
      expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('classic subscriber connection lost'))).toBe(true);

      // Every node gone: a new subscription is tried for classicSubscribeTimeoutMs, then rejected and logged.
      for (const n of cluster.nodes) await n.kill();
      const started = Date.now();
      const result = await outcome(backend.subscribeGlobal('rcc:never', () => {}), 10_000);
      expect(result).toMatch(/^rejected: /);
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('not confirmed in time') && (l.obj as { channel?: string }).channel === 'rcc:never')).toBe(true);
    });
  });
});
