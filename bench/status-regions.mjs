#!/usr/bin/env node
// SCENARIO=status-regions: user status across regions on a NATS hub with two
// leaf nodes (separate nats-server processes from deploy/nats/*.conf, own
// JetStream domains), one realtime-message node per region, against the
// Redis status store (two nodes on one redis-server) in the same run:
//
//   - cached reads per region: GET /api/v2/presence/:id of warmed users,
//     closed loop (CONNECTIONS, DURATION_S), req/s and latency;
//   - propagation: PUT on node A, time until node B pushes the status:event
//     to a Socket.IO watcher (the same watch that invalidates B's cache),
//     from the start of the PUT, one change in flight;
//   - write latency: sequential PUTs on node A (NATS: from a leaf region,
//     so every write crosses the leaf link to the hub).
//
//   npm run build:app && node bench/status-regions.mjs
//   ROUNDS=2 SAMPLES=300 USERS=1000 DURATION_S=5 CONNECTIONS=32
// Stores alternate order per round; medians over rounds are printed.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { Pool } from 'undici';
import { startRedis } from './lib/redis.mjs';
import { freePort, startServer } from './lib/servers.mjs';
import { histogram, median, summarize } from './lib/stats.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
const env = (name, def) => Number(process.env[name] ?? def);
const ROUNDS = env('ROUNDS', 2);
const SAMPLES = env('SAMPLES', 300);
const USERS = env('USERS', 1000);
const DURATION_S = env('DURATION_S', 5);
const CONNECTIONS = env('CONNECTIONS', 32);
const natsBin = ['/usr/sbin/nats-server', ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'nats-server'))].reverse().find((p) => existsSync(p)) ?? 'nats-server';

const cleanup = [];
const dir = mkdtempSync(join(tmpdir(), 'rm-bench-regions-'));
cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));

async function until(what, fn, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A nats-server from deploy/nats/<conf> on free ports. */
async function nats(name, conf, extra = {}) {
  const client = await freePort();
  const monitor = await freePort();
  const proc = spawn(natsBin, ['-c', join(root, 'deploy/nats', conf)], {
    env: { PATH: process.env.PATH, NATS_SERVER_NAME: name, NATS_LISTEN: `127.0.0.1:${client}`, NATS_MONITOR: `127.0.0.1:${monitor}`, NATS_STORE_DIR: join(dir, name), ...extra },
    stdio: 'ignore',
  });
  cleanup.push(async () => {
    if (proc.exitCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
    }
  });
  await until(`nats ${name}`, async () => (await fetch(`http://127.0.0.1:${monitor}/healthz`)).ok);
  return { url: `nats://127.0.0.1:${client}`, monitor, pid: proc.pid };
}

async function topology() {
  const leafPort = await freePort();
  const hub = await nats('hub', 'hub.conf', { NATS_LEAF_LISTEN: `127.0.0.1:${leafPort}` });
  const leaves = [];
  for (const region of ['eu', 'us']) leaves.push(await nats(region, 'leaf.conf', { NATS_DOMAIN: region, NATS_HUB_LEAF_URL: `nats://127.0.0.1:${leafPort}` }));
  await until('leaves linked', async () => ((await (await fetch(`http://127.0.0.1:${hub.monitor}/leafz`)).json()).leafs ?? []).length === 2);
  return { hub, leaves };
}

async function node(extraEnv) {
  const s = await startServer('ours', { DEMO_DIR: 'off', ...extraEnv });
  cleanup.push(() => s.stop());
  await until('ready', async () => (await fetch(`${s.url}/ready`)).ok);
  return s;
}

const users = Array.from({ length: USERS }, (_, i) => `bench-${i}`);

async function putStatus(pool, id, body) {
  const res = await pool.request({ path: `/api/v2/presence/${id}`, method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`PUT ${id}: ${res.statusCode} ${text}`);
}

async function writes(a) {
  const pool = new Pool(a.url, { connections: 1 });
  const h = histogram();
  for (let i = 0; i < SAMPLES; i++) {
    const t = performance.now();
    await putStatus(pool, users[i % users.length], { status: 'busy', message: `w${i}` });
    h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
  }
  await pool.close();
  return summarize(h);
}

async function propagation(a, b) {
  const pool = new Pool(a.url, { connections: 1 });
  const sock = io(b.url, { transports: ['websocket'], forceNew: true });
  await new Promise((r, j) => (sock.once('connect', r), sock.once('connect_error', j)));
  const probe = users.slice(0, Math.min(100, users.length));
  const sub = await sock.timeout(5_000).emitWithAck('status:subscribe', { userIds: probe });
  if (!sub.ok) throw new Error(`status:subscribe: ${JSON.stringify(sub)}`);
  const waiting = new Map();
  sock.on('status:event', (e) => waiting.get(e.message)?.(performance.now()));
  const h = histogram();
  let lost = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const message = `p${i}-${Date.now()}`;
    const seen = new Promise((r) => waiting.set(message, r));
    const t = performance.now();
    await putStatus(pool, probe[i % probe.length], { status: 'away', message });
    const at = await Promise.race([seen, new Promise((r) => setTimeout(() => r(undefined), 2_000))]);
    waiting.delete(message);
    if (at === undefined) lost++;
    else h.recordValue(Math.max(1, Math.round((at - t) * 1000)));
  }
  sock.close();
  await pool.close();
  return { ...summarize(h), lost };
}

async function cachedReads(n) {
  const pool = new Pool(n.url, { connections: CONNECTIONS });
  // Warm: every user read once, so the node's cache holds them all.
  for (let i = 0; i < users.length; i += 50) {
    await Promise.all(users.slice(i, i + 50).map(async (id) => (await pool.request({ path: `/api/v2/presence/${id}`, method: 'GET' })).body.text()));
  }
  // 1 s unmeasured at full load first (JIT of the server and of this client).
  const h = histogram();
  let done = 0;
  let errors = 0;
  await load(pool, 1, histogram(), () => {});
  await load(pool, DURATION_S, h, (ok) => (ok ? done++ : errors++));
  await pool.close();
  return { rps: Math.round(done / DURATION_S), errors, ...summarize(h) };
}

async function load(pool, seconds, h, count) {
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, w) => {
      let i = w;
      while (performance.now() < until) {
        const t = performance.now();
        const res = await pool.request({ path: `/api/v2/presence/${users[(i += 7) % users.length]}`, method: 'GET' });
        await res.body.text();
        count(res.statusCode === 200);
        h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
      }
    }),
  );
}

async function measure(store, a, b) {
  const out = { store };
  out.write = await writes(a);
  out.propagation = await propagation(a, b);
  out.readsA = await cachedReads(a);
  out.readsB = await cachedReads(b);
  return out;
}

async function main() {
  const { leaves } = await topology();
  const redis = await startRedis();
  cleanup.push(() => redis.stop());
  const bucket = `bench_${Date.now()}`;
  const natsNodes = [
    await node({ STATUS_STORE: 'nats', NATS_URL: leaves[0].url, NATS_HUB_DOMAIN: 'hub', NATS_BUCKET: bucket, REGION: 'eu', NODE_ID: '1' }),
    await node({ STATUS_STORE: 'nats', NATS_URL: leaves[1].url, NATS_HUB_DOMAIN: 'hub', NATS_BUCKET: bucket, REGION: 'us', NODE_ID: '1' }),
  ];
  const prefix = `bench${Date.now()}:`;
  const redisNodes = [await node({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, NODE_ID: 'a' }), await node({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, NODE_ID: 'b' })];
  const runs = { nats: [], redis: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['nats', 'redis'] : ['redis', 'nats'];
    for (const store of order) {
      const [a, b] = store === 'nats' ? natsNodes : redisNodes;
      const m = await measure(store, a, b);
      runs[store].push(m);
      console.error(`round ${r + 1} ${store}: ${JSON.stringify(m)}`);
    }
  }
  const med = (store, pick) => Math.round(median(runs[store].map(pick)) * 100) / 100;
  const rows = [
    ['write p50 / p99 (ms)', (s) => `${med(s, (m) => m.write.p50)} / ${med(s, (m) => m.write.p99)}`],
    ['propagation A → B p50 / p99 (ms)', (s) => `${med(s, (m) => m.propagation.p50)} / ${med(s, (m) => m.propagation.p99)}`],
    ['propagation lost (> 2 s)', (s) => String(runs[s].reduce((n, m) => n + m.propagation.lost, 0))],
    ['cached reads A req/s (p50 / p99 ms)', (s) => `${med(s, (m) => m.readsA.rps)} (${med(s, (m) => m.readsA.p50)} / ${med(s, (m) => m.readsA.p99)})`],
    ['cached reads B req/s (p50 / p99 ms)', (s) => `${med(s, (m) => m.readsB.rps)} (${med(s, (m) => m.readsB.p50)} / ${med(s, (m) => m.readsB.p99)})`],
  ];
  const table = [
    `| status-regions (${ROUNDS} rounds, ${SAMPLES} samples, ${USERS} users, ${CONNECTIONS} connections × ${DURATION_S} s) | NATS: A in eu, B in us (leaves) | Redis: A and B on one Redis |`,
    '| --- | --- | --- |',
    ...rows.map(([label, f]) => `| ${label} | ${f('nats')} | ${f('redis')} |`),
  ].join('\n');
  console.log(table);
  if (process.env.RESULTS_DIR) {
    mkdirSync(process.env.RESULTS_DIR, { recursive: true });
    writeFileSync(join(process.env.RESULTS_DIR, 'status-regions.json'), JSON.stringify({ at: new Date().toISOString(), runs }, null, 2));
    writeFileSync(join(process.env.RESULTS_DIR, 'status-regions.md'), `${table}\n`);
  }
}

try {
  await main();
} finally {
  for (const c of cleanup.reverse()) await c().catch(() => {});
}
