#!/usr/bin/env node
// Several builds of the status REST API against the bare route, in the same
// run: each round runs every server once (the order rotating), so a noisy
// shared machine hits all of them alike. Prints medians of throughput, server
// CPU per request (from /proc: far less noisy than throughput), latency, GC
// and event-loop delay (bench/lib/probe.mjs) and Redis CPU per request.
//   CLIS='{"before":"/tmp/rm-previous-<sha>/packages/server/dist/app/cli.js","after":"packages/server/dist/app/cli.js"}' \
//     [ENGINE=memory|redis] [KIND=get|batch|put] [RATE=0 (closed loop, 64 in flight)|<req/s open loop>] \
//   (a build may also be ["<cli.js>", "--node-flag", ...]: node flags for that one)
//     [USERS=100000] [ROUNDS=4] [DUR=4000 ms] [PROFILE_DIR=<dir>] node bench/lib/status-ab.mjs
// PROFILE_DIR: every server writes a CPU profile there when it stops, and
// the measured windows are written beside it (windows.json: pid, the
// CLOCK_MONOTONIC µs of each run, requests): compare two with
// `node bench/profile-diff.mjs <dir> <name> <name>`.
// (a build of an earlier commit: bash bench/build-previous.sh <commit>)
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { probeOptions, startDiagnostics } from './diagnostics.mjs';
import { httpEach, httpLoad } from './http-load.mjs';
import { startRedis } from './redis.mjs';
import { startServer } from './servers.mjs';
import { median, sampleTree } from './stats.mjs';

const env = process.env;
const users = Number(env.USERS ?? 100_000);
const rounds = Number(env.ROUNDS ?? 4);
const durationMs = Number(env.DUR ?? 4_000);
const rate = Number(env.RATE ?? 0);
const kind = env.KIND ?? 'get';
const engine = env.ENGINE ?? 'memory';
const clis = JSON.parse(env.CLIS ?? '{"this tree":"packages/server/dist/app/cli.js"}');
const diag = probeOptions();
const profileDir = env.PROFILE_DIR ? resolve(env.PROFILE_DIR) : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
const execArgv = [...diag.execArgv, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

const redis = engine === 'redis' ? await startRedis() : undefined;
const servers = {};
const loads = {};
try {
  for (const [name, spec] of Object.entries(clis)) {
    // A build is its CLI's path, or [path, ...node flags] (a V8 setting tried on one of them).
    const [cli, ...nodeArgs] = Array.isArray(spec) ? spec : [spec];
    process.env.OURS_CLI = resolve(cli);
    servers[name] = await startServer('ours', { ...(redis ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `ab${randomUUID().slice(0, 6)}:` } : {}), ...diag.env }, { execArgv: [...execArgv, ...nodeArgs] });
  }
  servers.bare = await startServer('http-bare', { ...diag.env }, { execArgv });
  const prefix = 'u-';
  const put = (i) => ({ method: 'PUT', path: `/api/v2/presence/${prefix}${i}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(i % 2 ? { status: 'busy', message: 'in a meeting', ttlSeconds: 3600 } : { status: 'online', ttlSeconds: 3600 }) });
  for (const name of Object.keys(clis)) await httpEach(servers[name].url, users, put, { concurrency: 64 });
  const spec = kind === 'batch' ? { kind, prefix, users, batchSize: 100 } : { kind, prefix, users };
  const names = Object.keys(servers);
  for (const n of names) loads[n] = await httpLoad(servers[n].url, { threads: 2, connections: 32 });
  for (const n of names) await loads[n].run({ mode: 'closed', concurrency: 64, durationMs: 2_000, spec, record: false });
  const out = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const n of names.slice(r % names.length).concat(names.slice(0, r % names.length))) {
      const s0 = sampleTree(servers[n].pid);
      const d = await startDiagnostics(servers[n], redis?.url);
      const fromUs = monoUs();
      const res = await loads[n].run({ mode: rate ? 'open' : 'closed', concurrency: 64, rate, durationMs, spec, lateMs: 2 });
      const toUs = monoUs();
      const g = await d.stop(res.ok);
      const s1 = sampleTree(servers[n].pid);
      const row = { perSec: res.perSec, us: ((s1.cpu - s0.cpu) * 1e6) / Math.max(1, res.ok), p50: res.latency.p50, p99: res.latency.p99, late: res.lateShare, gc: g.server?.gc.msPerSecond, gcMax: g.server?.gc.maxMs, loop99: g.server?.eventLoopDelay.p99, redisUs: g.redis?.cpuMicrosPerAck, errors: res.errors, window: [fromUs, toUs], requests: res.ok };
      out[n].push(row);
      console.error(`r${r + 1} ${n}: ${row.perSec}/s, ${row.us.toFixed(1)} µs CPU/request, p50 ${row.p50.toFixed(2)} p99 ${row.p99.toFixed(2)} ms, late ${row.late}, GC ${row.gc} ms/s (max ${row.gcMax}), loop p99 ${row.loop99} ms${Object.keys(res.errors).length ? ` errors ${JSON.stringify(res.errors)}` : ''}`);
    }
  }
  const med = (n, f) => median(out[n].map(f));
  console.log(`\n${kind} ${rate ? `${rate}/s open loop` : 'closed loop, 64 in flight'}, ${engine}, ${users} users, ${rounds} rounds × ${durationMs / 1000} s (medians)\n`);
  console.log('| server | req/s | ratio to bare | server CPU µs/request | p50 ms | p99 ms | GC ms/s | longest GC ms | loop delay p99 ms | Redis CPU µs/request |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const n of names) {
    console.log(`| ${n} | ${Math.round(med(n, (x) => x.perSec))} | ${(med(n, (x) => x.perSec) / med('bare', (x) => x.perSec)).toFixed(2)} | ${med(n, (x) => x.us).toFixed(1)} | ${med(n, (x) => x.p50).toFixed(2)} | ${med(n, (x) => x.p99).toFixed(2)} | ${med(n, (x) => x.gc ?? NaN)} | ${med(n, (x) => x.gcMax ?? NaN)} | ${med(n, (x) => x.loop99 ?? NaN)} | ${redis ? med(n, (x) => x.redisUs ?? NaN) : '-'} |`);
  }
  for (const n of names) if (n !== 'bare') console.log(`${n} / bare, per round: ${out[n].map((x, i) => (x.perSec / out.bare[i].perSec).toFixed(2)).join(' ')}`);
  if (profileDir) {
    const windows = Object.fromEntries(names.map((n) => [n, { pid: servers[n].pid, runs: out[n].map((x) => ({ window: x.window, requests: x.requests })) }]));
    writeFileSync(`${profileDir}/windows.json`, JSON.stringify(windows, null, 1));
  }
} finally {
  for (const l of Object.values(loads)) await l.close();
  for (const s of Object.values(servers)) await s.stop();
  await redis?.stop();
}
