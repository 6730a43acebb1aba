#!/usr/bin/env node
// What one sweep of the Redis status store costs the node while a repair
// pass runs (one SCAN page per sweep, continuously once 100,000 users fill
// most of the 16,384 slot deadline indexes): the sweep's wall time, the
// node's CPU and the longest event-loop stall (1 ms timer) per sweep.
//   [SRV=<path of a build's packages/server/dist/index.js>] [USERS=100000] [SWEEPS=12] node bench/lib/status-repair-probe.mjs
// (an earlier build: bash bench/build-previous.sh <commit>, then SRV=/tmp/rm-previous-<sha>/packages/server/dist/index.js)
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis } from './redis.mjs';
import { median } from './stats.mjs';

const srv = await import(pathToFileURL(resolve(process.env.SRV ?? 'packages/server/dist/index.js')).href);
const users = Number(process.env.USERS ?? 100_000);
const sweeps = Number(process.env.SWEEPS ?? 12);
const redis = await startRedis();
const seeder = new Redis(redis.url);
const client = new Redis(redis.url);
const backend = new srv.RedisBackend({ redis: client, keyPrefix: 'probe:', identityCheckIntervalMs: 0 });
try {
  // Each user's record and its place in its slot's deadline index (an hour away), as the status writes leave them.
  const far = Date.now() + 3_600_000;
  for (let i = 0; i < users; i += 5_000) {
    const p = seeder.pipeline();
    for (let j = i; j < Math.min(users, i + 5_000); j++) {
      const k = backend.keys.user(`user-${j}`);
      p.hset(k.record, 'v', '1');
      p.zadd(k.dueIndex, far, `user-${j}`);
    }
    await p.exec();
  }
  const store = new srv.RedisStatusStore({ backend });
  let maxLag = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const t = performance.now();
    maxLag = Math.max(maxLag, t - last - 1);
    last = t;
  }, 1);
  const rows = [];
  for (let i = 0; i < sweeps; i++) {
    maxLag = 0;
    const [t0, c0] = [performance.now(), process.cpuUsage()];
    await store.sweep({ now: Date.now(), nodeId: 'probe', awayAfterMs: 0, limit: 1_000, intervalMs: 1_000 });
    const c = process.cpuUsage(c0);
    rows.push({ ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1_000, lagMs: maxLag });
    await new Promise((r) => setTimeout(r, 200));
  }
  clearInterval(timer);
  const f = (x) => x.toFixed(1);
  console.log(`${users} users, ${await seeder.dbsize()} keys, ${sweeps} sweeps: CPU per sweep median ${f(median(rows.map((r) => r.cpuMs)))} max ${f(Math.max(...rows.map((r) => r.cpuMs)))} ms; event-loop stall median ${f(median(rows.map((r) => r.lagMs)))} max ${f(Math.max(...rows.map((r) => r.lagMs)))} ms; wall median ${f(median(rows.map((r) => r.ms)))} ms`);
} finally {
  seeder.disconnect();
  await backend.close();
  client.disconnect();
  await redis.stop();
}
// The backend's subscriber may still be reconnecting to the stopped server.
process.exit(0);
