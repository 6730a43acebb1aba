#!/usr/bin/env node
// Reaper throughput and leave lateness of one node on Redis (127.0.0.1 only,
// bounded, self-stopping). Run after `npx tsc -b packages/protocol packages/server`:
//   node bench/reaper-load-test.mjs                       # 100,000 rooms, defaults (TTL 30 s, interval 3 s)
//   ROOMS=20000 TTL_MS=6000 INTERVAL_MS=600 node bench/reaper-load-test.mjs
// Phases: join ROOMS rooms (one member each) → steady: every member heartbeats
// every TTL/3 for 2 × TTL while SILENT extra members join (spread over one TTL)
// and never heartbeat → mass expiry: every member stops at once (a node with
// ROOMS members dies). Reports rooms visited/s and leaves/s of the reaper, pass
// durations, and the lateness of every leave beyond last heartbeat + TTL.
// A private redis-server is started unless REDIS_URL is set. Results go to
// bench/results/reaper-<rooms>.json and .md.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { PresenceService, RedisEngine } from '../packages/server/dist/index.js';
import { startRedis } from './lib/redis.mjs';
import { save, table } from './lib/report.mjs';

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const ROOMS = num('ROOMS', 100_000);
const TTL = num('TTL_MS', 30_000);
const INTERVAL = num('INTERVAL_MS', 3_000);
const SILENT = num('SILENT', 200);
const STEADY_MS = num('STEADY_MS', 2 * TTL);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => process.stderr.write(`${m}\n`);
const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const redis = await startRedis();
const client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
const engine = new RedisEngine({ redis: client, keyPrefix: `rb${randomUUID().slice(0, 6)}:` });
const passes = [];
let phase = 'setup';
const svc = new PresenceService({
  engine,
  ttlMs: TTL,
  reaperIntervalMs: INTERVAL,
  observeReap: (r) => {
    if (!('error' in r)) passes.push({ ...r, phase, at: Date.now() });
  },
});
const leftAt = new Map();
await svc.subscribe((e) => {
  if (e.type === 'leave') leftAt.set(e.connId, Date.now());
});

// -- setup ---------------------------------------------------------------
const members = new Array(ROOMS);
const lastBeat = new Float64Array(ROOMS);
let t0 = performance.now();
for (let i = 0; i < ROOMS; i += 500) {
  await Promise.all(
    Array.from({ length: Math.min(500, ROOMS - i) }, async (_, j) => {
      const k = i + j;
      const r = await svc.join({ roomId: `room-${k}`, userId: 'ada' });
      members[k] = { roomId: `room-${k}`, connId: r.connId, epoch: r.epoch };
      lastBeat[k] = Date.now();
    }),
  );
}
log(`joined ${ROOMS} rooms in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
svc.start();

// -- heartbeats: member k beats in tick k % TICKS of every TTL/3 period ---
const TICK_MS = 100;
const TICKS = Math.max(1, Math.round(TTL / 3 / TICK_MS));
let beating = true;
let beats = 0;
const beatLoop = (async () => {
  let tick = 0;
  let next = performance.now();
  while (beating) {
    const group = [];
    for (let k = tick % TICKS; k < ROOMS; k += TICKS) group.push(k);
    tick++;
    await Promise.all(
      group.map(async (k) => {
        const at = Date.now();
        await svc.heartbeat(members[k]);
        lastBeat[k] = at;
        beats++;
      }),
    );
    next += TICK_MS;
    await sleep(Math.max(0, next - performance.now()));
  }
})();

// -- steady phase with silent members -------------------------------------
phase = 'steady';
const steadyStart = Date.now();
const silent = [];
const silentLoop = (async () => {
  for (let i = 0; i < SILENT; i++) {
    const joinedAt = Date.now();
    const r = await svc.join({ roomId: `room-${(i * 7919) % ROOMS}`, userId: 'bob' });
    silent.push({ connId: r.connId, joinedAt });
    await sleep(TTL / SILENT);
  }
})();
await sleep(STEADY_MS);
await silentLoop;
await sleep(Math.max(0, silent.at(-1).joinedAt + TTL + 2 * INTERVAL - Date.now()));
const steadyEnd = Date.now();
const steadyLate = silent.map((s) => (leftAt.has(s.connId) ? leftAt.get(s.connId) - (s.joinedAt + TTL) : Infinity));
const steadyPasses = passes.filter((p) => p.phase === 'steady' && p.at >= steadyStart + TTL);
const steadySecs = (steadyEnd - steadyStart - TTL) / 1000;
log(`steady: ${beats} heartbeats, silent leave lateness max ${Math.max(...steadyLate)} ms`);

// -- mass expiry ------------------------------------------------------------
phase = 'expiry';
beating = false;
await beatLoop;
const expiryStart = Date.now();
const deadline = expiryStart + 2 * TTL + 30_000;
const ids = members.map((m) => m.connId);
while (Date.now() < deadline && ids.some((id) => !leftAt.has(id))) await sleep(200);
const expiryLate = ids.map((id, k) => (leftAt.has(id) ? leftAt.get(id) - (lastBeat[k] + TTL) : Infinity));
const leaveTimes = ids.map((id) => leftAt.get(id)).filter((x) => x !== undefined);
const firstLeave = Math.min(...leaveTimes);
const lastLeave = Math.max(...leaveTimes);
const expiryPasses = passes.filter((p) => p.phase === 'expiry');
const busy = expiryPasses.reduce((n, p) => n + p.durationMs, 0) / 1000;
const expiryLeaves = expiryPasses.reduce((n, p) => n + p.leaves, 0);

await svc.dispose();
await engine.close();
client.disconnect();
await redis.stop();

const sum = (xs, f) => xs.reduce((n, x) => n + f(x), 0);
const result = {
  machine: `${(await import('node:os')).cpus().length} cores, ${(await import('node:os')).cpus()[0]?.model ?? ''}`,
  rooms: ROOMS,
  ttlMs: TTL,
  intervalMs: INTERVAL,
  steady: {
    heartbeatsPerSec: Math.round(beats / ((expiryStart - steadyStart) / 1000)),
    roomsVisitedPerSec: Math.round(sum(steadyPasses, (p) => p.visitedRooms) / steadySecs),
    slotsVisitedPerSec: Math.round(sum(steadyPasses, (p) => p.visitedSlots) / steadySecs),
    passMsP50: pct(steadyPasses.map((p) => p.durationMs), 50),
    passMsMax: Math.max(...steadyPasses.map((p) => p.durationMs)),
    maxBacklog: Math.max(...steadyPasses.map((p) => p.backlog)),
    silentLeaves: `${steadyLate.filter(Number.isFinite).length}/${SILENT}`,
    lateMsP50: pct(steadyLate, 50),
    lateMsMax: Math.max(...steadyLate),
  },
  expiry: {
    leaves: `${leaveTimes.length}/${ROOMS}`,
    spreadS: (lastLeave - firstLeave) / 1000,
    leavesPerBusySec: Math.round(expiryLeaves / Math.max(busy, 0.001)),
    roomsPerBusySec: Math.round(sum(expiryPasses, (p) => p.visitedRooms) / Math.max(busy, 0.001)),
    passMsMax: Math.max(...expiryPasses.map((p) => p.durationMs)),
    lateMsP50: pct(expiryLate, 50),
    lateMsP99: pct(expiryLate, 99),
    lateMsMax: Math.max(...expiryLate),
  },
};
console.log(JSON.stringify(result, null, 2));
const rows = [
  ['steady', `${result.steady.heartbeatsPerSec} hb/s`, `${result.steady.roomsVisitedPerSec} rooms/s visited`, `pass p50 ${result.steady.passMsP50.toFixed(0)} ms, max ${result.steady.passMsMax.toFixed(0)} ms`, `${result.steady.silentLeaves} leaves`, `late p50 ${result.steady.lateMsP50} ms, max ${result.steady.lateMsMax} ms`],
  ['mass expiry', `${result.expiry.leaves} leaves in ${result.expiry.spreadS.toFixed(1)} s`, `${result.expiry.leavesPerBusySec} leaves/s, ${result.expiry.roomsPerBusySec} rooms/s while busy`, `pass max ${result.expiry.passMsMax.toFixed(0)} ms`, '', `late p50 ${result.expiry.lateMsP50} ms, p99 ${result.expiry.lateMsP99} ms, max ${result.expiry.lateMsMax} ms`],
];
save(`reaper-${ROOMS}`, result, table(['phase', 'load', 'reaper throughput', 'pass time', 'leaves', 'lateness beyond last heartbeat + TTL'], rows));
process.exit(0);
