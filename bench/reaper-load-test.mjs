#!/usr/bin/env node
// Reaper throughput and leave lateness of one node on Redis (127.0.0.1 only,
// bounded, self-stopping). Run after `npx tsc -b packages/protocol packages/server`:
//   node bench/reaper-load-test.mjs                       # 100,000 rooms, defaults (TTL 30 s, interval 3 s)
//   ROOMS=20000 TTL_MS=6000 INTERVAL_MS=600 node bench/reaper-load-test.mjs
//   SCENARIO=churn node bench/reaper-load-test.mjs        # 100 clients × 20 joins/s of distinct rooms for 60 s
// Phases: join ROOMS rooms (one member each) → steady: every member heartbeats
// every TTL/3 for 2 × TTL while SILENT extra members join (spread over one TTL)
// and never heartbeat → mass expiry: every member stops at once (a node with
// ROOMS members dies). Reports rooms visited/s and leaves/s of the reaper, pass
// durations, and the lateness of every leave beyond last heartbeat + TTL.
// A private redis-server is started unless REDIS_URL is set. Results go to
// bench/results/reaper-<rooms>.json and .md.
//
// SCENARIO=churn: distinct-room churn at the full rate limit instead. SOCKETS
// clients (default 100) each join a new room every 1000 / RATE ms (default 20
// events/s, the default per-socket rate limit) for CHURN_MS (default 60 s),
// one member per room, and then stay silent: every room's member must get its
// timeout leave. Engine level, like the rest of this file: a client is a
// paced join loop, not a Socket.IO socket (a socket may hold at most 64 rooms
// by default, so it could only keep this rate by reconnecting; the reaper's
// load is the same). Joins are sent on schedule without waiting for acks.
// Lateness is the leave's arrival minus (the join's send time + TTL), so it
// includes the join's own latency. Results: bench/results/reaper-churn.{json,md}.
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
const SCENARIO = env.SCENARIO || 'rooms';
const SOCKETS = num('SOCKETS', 100);
const RATE = num('RATE', 20);
const CHURN_MS = num('CHURN_MS', 60_000);
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
const leaveInfo = { total: 0, timeout: 0, badSeq: 0 };
await svc.subscribe((e) => {
  if (e.type === 'leave') {
    leftAt.set(e.connId, Date.now());
    leaveInfo.total++;
    if (e.reason === 'timeout') leaveInfo.timeout++;
    // Churn rooms hold one join (seq 1) then this leave: any other seq means the room's numbering restarted.
    if (e.roomId.startsWith('churn-') && e.seq !== 2) leaveInfo.badSeq++;
  }
});
if (SCENARIO === 'churn') {
  await runChurn();
  process.exit(0);
}

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

// -- churn scenario ---------------------------------------------------------
async function runChurn() {
  const osm = await import('node:os');
  const period = 1000 / RATE;
  const joins = []; // { connId, sentAt, ackAt }
  let errors = 0;
  svc.start();
  phase = 'churn';
  const start = Date.now();
  const t0 = performance.now();
  const inflight = [];
  const runClient = async (c) => {
    // Client c sends its n-th join at t0 + c × period / SOCKETS + n × period: SOCKETS × RATE joins/s in all, evenly spread.
    for (let n = 0; ; n++) {
      const due = t0 + (c * period) / SOCKETS + n * period;
      if (due - t0 >= CHURN_MS) return;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const rec = { connId: undefined, sentAt: Date.now(), ackAt: 0 };
      joins.push(rec);
      inflight.push(
        svc.join({ roomId: `churn-${c}-${n}`, userId: `u${c}` }).then(
          (r) => {
            rec.connId = r.connId;
            rec.ackAt = Date.now();
          },
          () => {
            errors++;
          },
        ),
      );
    }
  };
  await Promise.all(Array.from({ length: SOCKETS }, (_, c) => runClient(c)));
  const churnEnd = Date.now();
  await Promise.all(inflight);
  log(`churn: ${joins.length} joins sent in ${((churnEnd - start) / 1000).toFixed(1)} s, ${errors} errors`);
  const ok = joins.filter((j) => j.connId !== undefined);
  const lastSent = Math.max(...joins.map((j) => j.sentAt));
  const deadline = lastSent + TTL + INTERVAL + 30_000;
  while (Date.now() < deadline && ok.some((j) => !leftAt.has(j.connId))) await sleep(200);
  const end = Date.now();
  const late = ok.map((j) => (leftAt.has(j.connId) ? leftAt.get(j.connId) - (j.sentAt + TTL) : Infinity));
  const joinMs = ok.map((j) => j.ackAt - j.sentAt);
  // Reaper throughput while leaves come due at the full churn rate: from the first joins' deadline to the last's.
  const winFrom = start + TTL;
  const winTo = churnEnd + TTL;
  const win = passes.filter((p) => p.at >= winFrom && p.at <= winTo);
  const all = passes.filter((p) => p.at >= start);
  const winS = (winTo - winFrom) / 1000;
  const busyS = win.reduce((n, p) => n + p.durationMs, 0) / 1000;
  const sumW = (f) => win.reduce((n, p) => n + f(p), 0);
  const dueEvery = TTL + INTERVAL;
  await svc.dispose();
  await engine.close();
  client.disconnect();
  await redis.stop();
  const result = {
    scenario: 'churn',
    machine: `${osm.cpus().length} cores, ${osm.cpus()[0]?.model ?? ''}`,
    redis: env.REDIS_URL ? 'REDIS_URL' : 'private redis-server on 127.0.0.1',
    sockets: SOCKETS,
    ratePerSocket: RATE,
    churnMs: CHURN_MS,
    ttlMs: TTL,
    intervalMs: INTERVAL,
    joins: {
      sent: joins.length,
      ok: ok.length,
      errors,
      offeredPerSec: SOCKETS * RATE,
      sentPerSec: Math.round(joins.length / ((churnEnd - start) / 1000)),
      ackMsP50: pct(joinMs, 50),
      ackMsP99: pct(joinMs, 99),
      ackMsMax: Math.max(...joinMs),
      activeRoomsAtPeak: Math.min(joins.length, Math.round(SOCKETS * RATE * (dueEvery / 1000))),
    },
    leaves: {
      received: `${late.filter(Number.isFinite).length}/${ok.length}`,
      events: leaveInfo.total,
      timeoutReason: leaveInfo.timeout,
      seqNot2: leaveInfo.badSeq,
      lateMsP50: pct(late, 50),
      lateMsP99: pct(late, 99),
      lateMsMax: Math.max(...late),
      withinInterval: late.filter((x) => x <= INTERVAL).length,
      withinIntervalPlus3s: late.filter((x) => x <= INTERVAL + 3_000).length,
      waitedS: (end - churnEnd) / 1000,
    },
    reaper: {
      windowS: winS,
      passes: win.length,
      roomsVisitedPerSec: Math.round(sumW((p) => p.visitedRooms) / winS),
      leavesPerSec: Math.round(sumW((p) => p.leaves) / winS),
      leavesPerBusySec: Math.round(sumW((p) => p.leaves) / Math.max(busyS, 0.001)),
      roomsPerBusySec: Math.round(sumW((p) => p.visitedRooms) / Math.max(busyS, 0.001)),
      busyShare: Number((busyS / winS).toFixed(3)),
      slotsVisitedPerSec: Math.round(sumW((p) => p.visitedSlots) / winS),
      passMsP50: pct(win.map((p) => p.durationMs), 50),
      passMsMax: Math.max(...all.map((p) => p.durationMs)),
      maxBacklog: Math.max(...all.map((p) => p.backlog)),
      maxLagMs: Math.max(...all.map((p) => p.lagMs)),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  const r = result;
  const rows = [
    [
      `${SOCKETS} × ${RATE} joins/s, ${CHURN_MS / 1000} s, TTL ${TTL / 1000} s, interval ${INTERVAL / 1000} s`,
      `${r.joins.ok}/${r.joins.sent} joins (${r.joins.sentPerSec}/s sent, ack p99 ${r.joins.ackMsP99} ms), ~${r.joins.activeRoomsAtPeak} rooms active at peak`,
      `${r.reaper.roomsVisitedPerSec} rooms/s visited, ${r.reaper.leavesPerSec} leaves/s (${r.reaper.leavesPerBusySec} leaves/s, ${r.reaper.roomsPerBusySec} rooms/s while busy; busy ${(r.reaper.busyShare * 100).toFixed(0)} %)`,
      `pass p50 ${r.reaper.passMsP50.toFixed(0)} ms, max ${r.reaper.passMsMax.toFixed(0)} ms; backlog max ${r.reaper.maxBacklog}, lag max ${r.reaper.maxLagMs} ms`,
      `${r.leaves.received} leaves (${r.leaves.timeoutReason} timeout, ${r.leaves.seqNot2} with seq ≠ 2)`,
      `late p50 ${r.leaves.lateMsP50} ms, p99 ${r.leaves.lateMsP99} ms, max ${r.leaves.lateMsMax} ms; ${r.leaves.withinInterval} ≤ interval, ${r.leaves.withinIntervalPlus3s} ≤ interval + 3 s`,
    ],
  ];
  save('reaper-churn', result, table(['load', 'joins', 'reaper throughput', 'pass time', 'leaves', 'lateness beyond join sent + TTL'], rows));
}
