#!/usr/bin/env node
// Engine-level heartbeat cost, this build against another, alternating, on one
// private redis-server (127.0.0.1, bounded): no sockets, no Socket.IO, so the
// noise of the full server is out of the picture.
//   PREVIOUS_DIST=$(dirname $(dirname $(bash bench/build-previous.sh HEAD~1))) node bench/heartbeat-micro.mjs
// Each round runs CONNS connections (one per room) through `engine.heartbeat`
// for ROUND_MS, CONCURRENCY calls in flight, first one build then the other
// (the order alternates per round); reports the median heartbeats/s per build.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startRedis } from './lib/redis.mjs';

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const ROUNDS = num('ROUNDS', 7);
const ROUND_MS = num('ROUND_MS', 3_000);
const CONNS = num('CONNS', 5_000);
const CONCURRENCY = num('CONCURRENCY', 64);
const builds = [['current', '../packages/server/dist/index.js']];
if (env.PREVIOUS_DIST) builds.push(['previous', `${env.PREVIOUS_DIST}/index.js`]);

const redis = await startRedis();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function prepare(name, path) {
  const { RedisEngine } = await import(new URL(path, import.meta.url).href);
  const client = new Redis(redis.url);
  const engine = new RedisEngine({ redis: client, keyPrefix: `hm${randomUUID().slice(0, 6)}:` });
  const now = Date.now();
  const t = { ttlMs: 30_000, lookbackMs: 60_000 };
  const conns = [];
  for (let i = 0; i < CONNS; i++) {
    const r = await engine.join({ ...t, now, roomId: `room-${i}`, userId: 'ada', freshConnId: randomUUID() });
    conns.push({ roomId: `room-${i}`, connId: r.connId, epoch: r.epoch });
  }
  let clock = now;
  return {
    name,
    async round() {
      let n = 0;
      const end = performance.now() + ROUND_MS;
      const worker = async (w) => {
        for (let i = w; performance.now() < end; i = (i + CONCURRENCY) % CONNS) {
          // The clock moves 2 ms per call: every hash's `.t` refresh branch runs about as often as in production (once per keep / 3).
          clock += 2;
          const res = await engine.heartbeat({ ...t, now: clock, ...conns[i], maxStateBytes: 16_384 });
          if (!res.ok) throw new Error(`heartbeat failed: ${res.code}`);
          n++;
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
      return (n / ROUND_MS) * 1000;
    },
    close: () => client.disconnect(),
  };
}

const runs = [];
for (const [name, path] of builds) runs.push(await prepare(name, path));
const results = Object.fromEntries(runs.map((r) => [r.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? runs : [...runs].reverse();
  for (const r of order) results[r.name].push(await r.round());
  process.stderr.write(`round ${round + 1}: ${order.map((r) => `${r.name} ${results[r.name].at(-1).toFixed(0)}/s`).join(', ')}\n`);
}
for (const r of runs) r.close();
await redis.stop();
console.log(JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { medianPerSec: Math.round(median(v)), rounds: v.map(Math.round) }])), null, 2));
process.exit(0);
