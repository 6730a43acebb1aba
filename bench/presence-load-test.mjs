#!/usr/bin/env node
// realtime-message benchmark harness. One command per scenario:
//   SCENARIO=basic|compare|cross-node|scale|churn|sweep|status|channels|centrifugo|smoke npm run benchmark:presence
// See docs/benchmarks.md for every variable and the recorded results.
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ack, churnLoop, closeSockets, closedLoop, countEvents, joinAll, openLoop, openSockets, poolLoop } from './lib/load.mjs';
import { probeOptions, readProbe, startDiagnostics } from './lib/diagnostics.mjs';
import { scenarioCentrifugo } from './lib/centrifugo-scenario.mjs';
import { scenarioChannels } from './lib/channels-scenario.mjs';
import { scenarioScale as runScale } from './lib/scale-scenario.mjs';
import { startRedis } from './lib/redis.mjs';
import { latencyChart, recordedPath, save, table } from './lib/report.mjs';
import { startServer } from './lib/servers.mjs';
import { scenarioStatus } from './lib/status-scenario.mjs';
import { countError, histogram, median, recordSince, sampleTree, summarize, usage } from './lib/stats.mjs';

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const SCENARIO = env.SCENARIO ?? 'basic';
const ENGINE = env.ENGINE ?? 'memory';
/** CLIENT=raw: the compare, cross-node and churn load generators speak the Socket.IO packet format over raw WebSockets (bench/lib/raw-client.mjs; less CPU than socket.io-client, same latency). */
const CLIENT = env.CLIENT ?? 'sio';
const ms = (x) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '-');

function progress(label) {
  let last = 0;
  const tty = process.stderr.isTTY;
  return {
    update({ sent, acked, h }) {
      const now = performance.now();
      if (now - last < 1_000) return;
      last = now;
      const line = `[${label}] sent ${sent}  acked ${acked}  p99 ${ms(h.getValueAtPercentile(99) / 1000)} ms`;
      process.stderr.write(tty ? `\r${line}   ` : `${line}\n`);
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

/** Starts our server for an engine (memory | redis), with a private Redis when needed. */
async function ours(engine, redis, extra = {}, kind = 'ours', options = {}) {
  return startServer(kind, engine === 'redis' ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `b${randomUUID().slice(0, 6)}:`, ...extra } : extra, options);
}

/**
 * Connect + join clients, run heartbeats, sample the server; returns one row of results.
 * `rooms` (or `usersPerRoom`) places the clients; `churnPerMin` members leave and rejoin
 * a minute during the measured phase; `redisUrl` adds Redis figures to the diagnostics.
 */
async function heartbeatRun(server, { clients, usersPerRoom, rate, durationMs, patchRatio, label, churnPerMin = 0, redisUrl }) {
  const sockets = await openSockets(server.url, clients, { client: CLIENT });
  const events = countEvents(sockets);
  await joinAll(sockets, { usersPerRoom, roomPrefix: `r${randomUUID().slice(0, 6)}-` });
  // Unmeasured warm-up: a freshly started server is still compiling its hot
  // paths (JIT); without this, short runs measure warm-up, not steady state.
  // Open-loop runs warm up at their own rate (a closed loop of 1,000 clients is another load).
  const warmupMs = num('WARMUP_S', 2) * 1000;
  if (warmupMs > 0) {
    if (rate > 0) await openLoop(sockets, { rate, durationMs: warmupMs, patchRatio, drainMs: 1_000 });
    else await closedLoop(sockets, { durationMs: warmupMs, patchRatio });
  }
  events.events = 0;
  const diag = await startDiagnostics(server, redisUrl);
  const before = sampleTree(server.pid);
  const churn = churnLoop(sockets, { perMinute: churnPerMin, offset: Math.floor(Math.random() * clients) });
  const res = rate > 0 ? await openLoop(sockets, { rate, durationMs, patchRatio, progress: progress(label) }) : await closedLoop(sockets, { durationMs, patchRatio, progress: progress(label) });
  const ch = await churn.stop();
  const after = sampleTree(server.pid);
  const diagnostics = await diag.stop(res.acked);
  closeSockets(sockets);
  return {
    label, acksPerSec: res.acksPerSec, sent: res.sent, errors: res.errors, latency: summarize(res.h),
    ...(patchRatio > 0 && res.hPatched ? { patchedLatency: summarize(res.hPatched) } : {}),
    eventsPerSec: Math.round(events.events / res.seconds), server: usage(before, after), diagnostics,
    ...(churnPerMin > 0 ? { churn: { cycles: ch.cycles, errors: ch.errors, leave: summarize(ch.leave), join: summarize(ch.join) } } : {}),
  };
}

// ---------------------------------------------------------------------------

async function scenarioBasic() {
  const clients = num('ROOM_COUNT', 100) * num('USERS_PER_ROOM', 2);
  const redis = ENGINE === 'redis' && !env.TARGET_URL ? await startRedis() : undefined;
  const server = env.TARGET_URL ? { url: env.TARGET_URL, pid: undefined, stop: async () => {} } : await ours(ENGINE, redis);
  try {
    // Join phase: end-to-end delay from a join on one socket to the event on the others.
    const sockets = await openSockets(server.url, clients);
    const sentAt = new Map();
    const delay = histogram();
    for (const s of sockets) s.on('presence:event', (e) => e.type === 'join' && sentAt.has(e.userId) && recordSince(delay, sentAt.get(e.userId)));
    const usersPerRoom = num('USERS_PER_ROOM', 2);
    const prefix = `r${randomUUID().slice(0, 6)}-`;
    await Promise.all(sockets.map(async (s, i) => {
      s.roomId = `${prefix}${Math.floor(i / usersPerRoom)}`;
      sentAt.set(`user-${i}`, performance.now());
      const a = await ack(s, 'presence:join', { roomId: s.roomId, userId: `user-${i}` });
      if (!a?.ok) throw new Error(JSON.stringify(a));
    }));
    await new Promise((r) => setTimeout(r, 300));
    const events = countEvents(sockets);
    const before = server.pid ? sampleTree(server.pid) : undefined;
    const rate = num('HEARTBEATS_PER_SEC', 1_000);
    const durationMs = num('DURATION_S', 10) * 1000;
    const res = rate > 0 ? await openLoop(sockets, { rate, durationMs, patchRatio: num('PATCH_RATIO', 0.1), progress: progress('basic') }) : await closedLoop(sockets, { durationMs, patchRatio: num('PATCH_RATIO', 0.1), progress: progress('basic') });
    const cpu = before ? usage(before, sampleTree(server.pid)) : undefined;
    closeSockets(sockets);
    const result = { scenario: 'basic', engine: ENGINE, clients, offeredRate: rate || 'closed loop', acksPerSec: res.acksPerSec, errors: res.errors, latency: summarize(res.h), eventsPerSec: Math.round(events.events / res.seconds), joinEventDelay: summarize(delay), server: cpu };
    const l = result.latency;
    save(`basic-${ENGINE}`, result, [`### basic (${ENGINE} engine, ${clients} clients, ${rate || 'closed loop'} heartbeats/s offered, PATCH_RATIO ${num('PATCH_RATIO', 0.1)})`, '', table(['acks/s', 'errors', 'p50 (ms)', 'p90 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'max (ms)', 'events/s', 'join→event p99 (ms)', 'server CPU (% of one core)', 'server RSS (MB)'], [[result.acksPerSec, JSON.stringify(res.errors), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.max), result.eventsPerSec, ms(result.joinEventDelay.p99), cpu ? cpu.cpuPercent : '-', cpu ? cpu.rssMB : '-']])].join('\n'));
  } finally {
    await server.stop();
    await redis?.stop();
  }
}

/**
 * The loads of the comparison. `closed`/`open`: CLIENTS sockets, 2 per room, no
 * patches (closed loop, or RATE heartbeats/s open loop). `realistic`: 1,000
 * clients in 100 rooms, 10,000 heartbeats/s offered open loop, one client in
 * fifty leaving and rejoining each minute; `realistic-patch`: the same with one
 * heartbeat in ten carrying a state patch (fanned out to the room).
 */
function compareModes() {
  const clients = num('CLIENTS', 200);
  const rate = num('RATE', 10_000);
  const durationMs = num('DURATION_S', 8) * 1000;
  const rClients = num('REALISTIC_CLIENTS', 1_000);
  const rRooms = num('REALISTIC_ROOMS', 100);
  const rRate = num('REALISTIC_RATE', 10_000);
  const rDurationMs = num('REALISTIC_S', 60) * 1000;
  const realistic = (patchRatio) => ({
    clients: rClients, usersPerRoom: Math.ceil(rClients / rRooms), rate: rRate, durationMs: rDurationMs, patchRatio, churnPerMin: rClients / 50,
    describe: `realistic: ${rClients} clients in ${rRooms} rooms, ${rRate}/s open loop, ${rClients / 50} leave+rejoin/min${patchRatio ? `, 1 in ${Math.round(1 / patchRatio)} patches` : ', no patches'}`,
  });
  return {
    closed: { clients, usersPerRoom: 2, rate: 0, durationMs, patchRatio: 0, describe: `closed loop, ${clients} clients` },
    open: { clients, usersPerRoom: 2, rate, durationMs, patchRatio: 0, describe: `${rate}/s open loop, ${clients} clients` },
    realistic: realistic(0),
    'realistic-patch': realistic(0.1),
  };
}

const CONTENDER_NAMES = { ours: 'ours (this tree)', previous: 'previous build', base: 'baseline' };

/**
 * Ours against the baselines, and against an earlier build (PREVIOUS_CLI), in
 * the same run: every round runs every contender once, the order rotating
 * each round so that drift of a noisy machine hits every side. Every server
 * runs with the probe (event-loop delay, GC), so the diagnostics show where a
 * tail comes from.
 *   plan: [[engine, modes...]], contenders: subset of base/ours/previous.
 */
async function compareRuns({ plan, contenders, rounds, name, title }) {
  const modes = compareModes();
  const redis = await startRedis();
  const pairs = { memory: ['bare', 'baseline (a): bare Socket.IO'], redis: ['lua', 'baseline (b): Socket.IO + 1 Lua script'] };
  const out = {};
  const probe = probeOptions();
  const loadStart = loadavg().map((x) => Math.round(x * 100) / 100);
  try {
    for (const [engine, ...modeNames] of plan) {
      const [baseKind, baseName] = pairs[engine];
      for (const mode of modeNames) {
        const m = modes[mode];
        if (!m) throw new Error(`unknown mode '${mode}'; one of ${Object.keys(modes).join(', ')}`);
        const runs = Object.fromEntries(contenders.map((c) => [c, []]));
        for (let r = 0; r < rounds; r++) {
          const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]);
          for (const who of order) {
            // CPU_PROF=<dir>: a `--cpu-prof` profile of each server run there.
            const opts = env.CPU_PROF ? { ...probe, execArgv: [...(probe.execArgv ?? []), '--cpu-prof', `--cpu-prof-dir=${env.CPU_PROF}`, `--cpu-prof-name=${engine}-${mode}-${who}-r${r + 1}.cpuprofile`] } : probe;
            // SERVER_ENV (JSON): extra settings of our server (not the baseline's).
            const server = who === 'base' ? await startServer(baseKind, { REDIS_URL: redis.url, ...probe.env }, opts) : await ours(engine, redis, { ...probe.env, ...JSON.parse(env.SERVER_ENV ?? '{}') }, who, opts);
            try {
              const row = await heartbeatRun(server, { ...m, label: `${engine} ${mode} ${who} r${r + 1}`, redisUrl: engine === 'redis' ? redis.url : undefined });
              row.round = r + 1;
              runs[who].push(row);
              const patched = row.patchedLatency ? ` (patched heartbeats alone: p50 ${ms(row.patchedLatency.p50)} p99 ${ms(row.patchedLatency.p99)} ms)` : '';
              log(`  ${engine} ${mode} ${who} r${r + 1}: ${row.acksPerSec} acks/s, p50 ${ms(row.latency.p50)} p99 ${ms(row.latency.p99)} ms${patched}, errors ${JSON.stringify(row.errors)}, load ${row.diagnostics.loadAverage.join('→')}`);
            } finally {
              await server.stop();
            }
          }
        }
        const summary = (who) => {
          const med = (f) => {
            const xs = runs[who].map(f).filter((x) => x !== undefined && Number.isFinite(x));
            return xs.length ? median(xs) : undefined;
          };
          const d = (f) => med((x) => f(x.diagnostics));
          return {
            acksPerSec: med((x) => x.acksPerSec), p50: med((x) => x.latency.p50), p99: med((x) => x.latency.p99), p999: med((x) => x.latency.p999), max: med((x) => x.latency.max),
            cpu: med((x) => x.server.cpuPercent), eventsPerSec: med((x) => x.eventsPerSec),
            // Server CPU time per acked heartbeat: steadier than latency on a shared machine.
            cpuMicrosPerAck: med((x) => (x.acksPerSec > 0 ? Math.round((x.server.cpuPercent * 1e4) / x.acksPerSec * 10) / 10 : undefined)),
            errors: runs[who].map((x) => x.errors), churnErrors: runs[who].map((x) => x.churn?.errors).filter(Boolean),
            churnJoinP99: med((x) => x.churn?.join.p99),
            serverLoopDelayP99: d((x) => x.server?.eventLoopDelay.p99), serverLoopDelayMax: d((x) => x.server?.eventLoopDelay.max), serverLoopUtilization: d((x) => x.server?.eventLoopUtilization),
            gcMsPerSecond: d((x) => x.server?.gc.msPerSecond), gcMaxMs: d((x) => x.server?.gc.maxMs),
            generatorLoopDelayP99: d((x) => x.generator.eventLoopDelay.p99), generatorLoopDelayMax: d((x) => x.generator.eventLoopDelay.max), generatorCpu: d((x) => x.generator.cpuPercent),
            redisCpuPercent: d((x) => x.redis?.cpuPercent), redisMicrosPerAck: d((x) => x.redis?.cpuMicrosPerAck), redisScriptsPerAck: d((x) => x.redis?.scriptsPerAck), redisCommandsPerAck: d((x) => x.redis?.commandsPerAck), redisBytesInPerAck: d((x) => x.redis?.bytesInPerAck),
            loadAverage: d((x) => x.loadAverage[0]),
          };
        };
        const o = { engine, mode, load: m.describe, baseline: baseName, rounds, offeredRate: m.rate || 'closed loop', durationS: m.durationMs / 1000, runs };
        for (const c of contenders) o[c] = summary(c);
        const ratio = (a, b) => (a !== undefined && b ? Math.round((a / b) * 100) / 100 : undefined);
        if (o.base) {
          o.throughputRatio = ratio(o.ours.acksPerSec, o.base.acksPerSec);
          o.p99Ratio = ratio(o.ours.p99, o.base.p99);
        }
        if (o.previous) o.vsPrevious = { throughputRatio: ratio(o.ours.acksPerSec, o.previous.acksPerSec), p99Ratio: ratio(o.ours.p99, o.previous.p99), p50Ratio: ratio(o.ours.p50, o.previous.p50), cpuPerAckRatio: ratio(o.ours.cpuMicrosPerAck, o.previous.cpuMicrosPerAck), redisPerAckRatio: ratio(o.ours.redisMicrosPerAck, o.previous.redisMicrosPerAck) };
        out[`${engine}-${mode}`] = o;
      }
    }
  } finally {
    await redis.stop();
  }
  const loadEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  const all = Object.values(out);
  const errs = (list) => { const t = {}; for (const e of list) for (const [k, v] of Object.entries(e)) t[k] = (t[k] ?? 0) + v; return Object.keys(t).length ? JSON.stringify(t) : '0'; };
  const lines = [`### ${title} (median of ${rounds} rounds, order rotated every round; load average ${loadStart.join(' / ')} at the start, ${loadEnd.join(' / ')} at the end)`, ''];
  const withBase = all.filter((o) => o.base);
  if (withBase.length) {
    lines.push(table(['engine', 'load', 'baseline', 'ours acks/s', 'baseline acks/s', 'throughput ratio (ours / baseline)', 'ours p50 (ms)', 'baseline p50 (ms)', 'ours p99 (ms)', 'baseline p99 (ms)', 'p99 ratio (ours / baseline)', 'ours p99.9 (ms)', 'baseline p99.9 (ms)', 'errors ours / baseline', 'server CPU ours / baseline (% of one core)', 'server CPU per ack ours / baseline (µs)'],
      withBase.map((o) => [o.engine, o.load, o.baseline, o.ours.acksPerSec, o.base.acksPerSec, o.throughputRatio, ms(o.ours.p50), ms(o.base.p50), ms(o.ours.p99), ms(o.base.p99), o.p99Ratio, ms(o.ours.p999), ms(o.base.p999), `${errs([...o.ours.errors, ...o.ours.churnErrors])} / ${errs([...o.base.errors, ...o.base.churnErrors])}`, `${o.ours.cpu} / ${o.base.cpu}`, `${o.ours.cpuMicrosPerAck} / ${o.base.cpuMicrosPerAck}`])));
  }
  const withPrevious = all.filter((o) => o.previous);
  if (withPrevious.length) {
    lines.push('', `ours (this tree) against the previous build (${process.env.PREVIOUS_LABEL ?? process.env.PREVIOUS_CLI}):`, '');
    lines.push(table(['engine', 'load', 'ours acks/s', 'previous acks/s', 'throughput ratio (ours / previous)', 'ours p50 (ms)', 'previous p50 (ms)', 'ours p99 (ms)', 'previous p99 (ms)', 'p99 ratio (ours / previous)', 'ours p99 per round (ms)', 'previous p99 per round (ms)', 'server CPU per ack ours / previous (µs)', 'ratio', 'Redis CPU per ack ours / previous (µs)', 'ratio', 'errors ours / previous'],
      withPrevious.map((o) => [o.engine, o.load, o.ours.acksPerSec, o.previous.acksPerSec, o.vsPrevious.throughputRatio, ms(o.ours.p50), ms(o.previous.p50), ms(o.ours.p99), ms(o.previous.p99), o.vsPrevious.p99Ratio, o.runs.ours.map((x) => ms(x.latency.p99)).join(' / '), o.runs.previous.map((x) => ms(x.latency.p99)).join(' / '), `${o.ours.cpuMicrosPerAck} / ${o.previous.cpuMicrosPerAck}`, o.vsPrevious.cpuPerAckRatio, `${o.ours.redisMicrosPerAck ?? '-'} / ${o.previous.redisMicrosPerAck ?? '-'}`, o.vsPrevious.redisPerAckRatio ?? '-', `${errs(o.ours.errors)} / ${errs(o.previous.errors)}`])));
  }
  lines.push('', 'Where the time goes (medians over the rounds; server figures from the probe in the server process, generator figures from the load generator, Redis figures from INFO per acked heartbeat):', '');
  const f = (x, d = 1) => (x === undefined ? '-' : typeof x === 'number' ? (Math.round(x * 10 ** d) / 10 ** d).toLocaleString('en-US') : x);
  lines.push(table(['engine', 'load', 'server', 'acks/s', 'p99 (ms)', 'events received/s', 'server event-loop delay p99 / max (ms)', 'server loop busy (%)', 'server GC (ms/s, longest ms)', 'server CPU (% of one core / µs per ack)', 'generator loop delay p99 / max (ms)', 'generator CPU (% of one core)', 'Redis CPU (% / µs per ack)', 'Redis scripts / commands per ack', 'bytes to Redis per ack', 'rejoin ack p99 (ms)', 'load average'],
    all.flatMap((o) => contenders.map((c) => {
      const x = o[c];
      return [o.engine, o.mode, c === 'base' ? o.baseline.split(':')[0] : CONTENDER_NAMES[c], x.acksPerSec, ms(x.p99), x.eventsPerSec, `${f(x.serverLoopDelayP99, 2)} / ${f(x.serverLoopDelayMax)}`, f(x.serverLoopUtilization === undefined ? undefined : x.serverLoopUtilization * 100), `${f(x.gcMsPerSecond)} / ${f(x.gcMaxMs)}`, `${f(x.cpu)} / ${f(x.cpuMicrosPerAck)}`, `${f(x.generatorLoopDelayP99, 2)} / ${f(x.generatorLoopDelayMax)}`, f(x.generatorCpu), `${f(x.redisCpuPercent)} / ${f(x.redisMicrosPerAck)}`, `${f(x.redisScriptsPerAck, 2)} / ${f(x.redisCommandsPerAck)}`, f(x.redisBytesInPerAck, 0), f(x.churnJoinP99, 2), f(x.loadAverage, 2)];
    }))));
  save(name, { loadAverage: { start: loadStart, end: loadEnd }, previous: process.env.PREVIOUS_LABEL ?? process.env.PREVIOUS_CLI, ...out }, lines.join('\n'));
  return out;
}

/** SCENARIO=compare: ours against baselines (a) and (b), and against PREVIOUS_CLI when given. */
async function scenarioCompare() {
  const engines = (env.ENGINES ?? 'memory,redis').split(',');
  const defaults = { memory: 'closed,open', redis: 'closed,open,realistic,realistic-patch' };
  const plan = engines.map((e) => [e, ...(env.MODES ?? defaults[e]).split(',').filter((m) => env.MODES || defaults[e].includes(m))]);
  const contenders = env.PREVIOUS_CLI ? ['base', 'ours', 'previous'] : ['base', 'ours'];
  await compareRuns({ plan, contenders, rounds: num('ROUNDS', 3), name: 'compare', title: 'ours vs baselines' + (env.PREVIOUS_CLI ? ' and the previous build' : '') });
}

/**
 * SCENARIO=guard (npm run bench:guard): this tree against an earlier build
 * (PREVIOUS_CLI, made by bench/guard.sh) on the hot path, alternating, and
 * the ratios. GUARD_BASELINE=1 adds the baselines.
 */
async function scenarioGuard() {
  if (!env.PREVIOUS_CLI) throw new Error('SCENARIO=guard needs PREVIOUS_CLI (use npm run bench:guard [-- <rev>])');
  env.DURATION_S ??= '5';
  env.REALISTIC_S ??= '20';
  const plan = (env.GUARD_PLAN ?? 'redis:closed+open+realistic,memory:closed').split(',').map((x) => { const [e, m] = x.split(':'); return [e, ...m.split('+')]; });
  const contenders = env.GUARD_BASELINE === '1' ? ['base', 'ours', 'previous'] : ['ours', 'previous'];
  await compareRuns({ plan, contenders, rounds: num('ROUNDS', 3), name: 'guard', title: `regression guard: this tree against ${env.PREVIOUS_LABEL ?? env.PREVIOUS_CLI}` });
}

/** One cross-node run: two fresh nodes on `redis`, observers on A, joins + leaves on B. */
async function crossNodeRun(redis, { rooms, rate, durationMs, warmupMs, label }) {
  const prefix = `x${randomUUID().slice(0, 6)}:`;
  // SERVER_ENV (JSON): extra settings of both nodes; CPU_PROF=<dir>: write each node's `--cpu-prof` profile there.
  // PROBE=0: without the event-loop and GC probe in the nodes (it wakes each node every ms).
  const probe = env.PROBE === '0' ? { execArgv: [], env: {} } : probeOptions();
  const extra = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, ...probe.env, ...JSON.parse(env.SERVER_ENV ?? '{}') };
  const prof = (name) => ({ execArgv: [...probe.execArgv, ...(env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${env.CPU_PROF}`, `--cpu-prof-name=${name}-${prefix.slice(0, -1)}.cpuprofile`] : [])] });
  const [a, b] = await Promise.all([startServer('ours', extra, prof('nodeA')), startServer('ours', extra, prof('nodeB'))]);
  try {
    const observers = await openSockets(a.url, rooms, { client: CLIENT });
    const roomPrefix = `c${randomUUID().slice(0, 6)}-`;
    await joinAll(observers, { usersPerRoom: 1, roomPrefix });
    const pool = await openSockets(b.url, num('CHURN_SOCKETS', 200), { client: CLIENT });
    const sentAt = new Map();
    const warm = histogram();
    let delay = warm;
    let leaveDelay = histogram();
    // The join delays of each second of the measured period apart (by send time): shows whether the tail is spread over the run or comes in bursts.
    const perSecond = [];
    let t0 = 0;
    for (const o of observers) {
      o.on('presence:event', (e) => {
        const t = sentAt.get(`${e.type}:${e.userId}`);
        if (t === undefined) return;
        sentAt.delete(`${e.type}:${e.userId}`);
        recordSince((e.type === 'join' ? delay : leaveDelay), t);
        if (e.type === 'join' && delay !== warm) recordSince((perSecond[Math.floor((t - t0) / 1000)] ??= histogram()), t);
      });
    }
    const errors = {};
    let joinAck = histogram();
    /** `rate` join + leave cycles a second for `ms`, users named `<tag><i>`. */
    const drive = (ms, tag, p) => poolLoop(pool, {
      rate,
      durationMs: ms,
      progress: p && ((sent) => p.update({ sent, acked: delay.totalCount, h: delay })),
      step: (s, i, release) => {
        const userId = `${tag}${i}`;
        const roomId = `${roomPrefix}${i % rooms}`;
        const t = performance.now();
        sentAt.set(`join:${userId}`, t);
        s.emit('presence:join', { roomId, userId }, (j) => {
          recordSince(joinAck, t);
          if (!j?.ok) countError(errors, j, 'join');
          sentAt.set(`leave:${userId}`, performance.now());
          s.emit('presence:leave', { roomId }, release);
        });
      },
    });
    // Warm-up: the same load on the fresh nodes, not measured (their first seconds run cold code: see docs/benchmarks.md).
    if (warmupMs > 0) {
      await drive(warmupMs, 'warm-');
      await new Promise((r) => setTimeout(r, 500));
    }
    delay = histogram();
    leaveDelay = histogram();
    joinAck = histogram();
    sentAt.clear();
    const p = progress(label);
    const load = loadavg()[0];
    if (redis.own) await redis.commandCalls({ reset: true });
    // (a node without the probe would die of the signal)
    const probed = env.PROBE !== '0';
    if (probed) await Promise.all([readProbe(a.pid), readProbe(b.pid)]);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const cpuBefore = [a.pid, b.pid, redis.pid].map(sampleTree);
    t0 = performance.now();
    const { started: n, seconds } = await drive(durationMs, 'churn-', p);
    await new Promise((r) => setTimeout(r, 500));
    loop.disable();
    // CPU microseconds per join+leave cycle of each process (observer node A, joining node B, Redis): the cost, whatever the machine's load.
    const cpuUsPerCycle = Object.fromEntries(['nodeA', 'nodeB', 'redis'].map((k, i) => [k, Math.round(((sampleTree([a.pid, b.pid, redis.pid][i]).cpu - cpuBefore[i].cpu) * 1e6) / Math.max(1, n))]));
    // Each node's event-loop delay and longest GC pause over the measured period (bench/lib/probe.mjs), and the generator's own loop delay.
    const [pa, pb] = probed ? await Promise.all([readProbe(a.pid), readProbe(b.pid)]) : [];
    const stalls = Object.fromEntries([['nodeA', pa], ['nodeB', pb]].map(([k, x]) => [k, x && { loopDelayP99: x.eventLoopDelay.p99, loopDelayMax: x.eventLoopDelay.max, gcMaxMs: x.gc.maxMs, gcOver5ms: x.gc.over5ms }]));
    stalls.generator = { loopDelayP99: Math.round(loop.percentile(99) / 1e3) / 1e3, loopDelayMax: Math.round(loop.max / 1e3) / 1e3 };
    // Redis commands per join+leave cycle, by command (what each cycle costs Redis in round trips).
    const calls = redis.own ? await redis.commandCalls() : {};
    const redisCallsPerCycle = Object.fromEntries(Object.entries(calls).filter(([k]) => !['info', 'config|resetstat', 'config'].includes(k)).map(([k, v]) => [k, Math.round((v / Math.max(1, n)) * 100) / 100]).filter(([, v]) => v >= 0.01));
    p.done();
    closeSockets(observers);
    closeSockets(pool);
    return {
      achievedJoinsPerSec: Math.round(n / seconds), joins: n, joinEventsSeen: delay.totalCount, errors, cpuUsPerCycle, redisCallsPerCycle, stalls,
      warmup: warmupMs > 0 ? { seconds: warmupMs / 1000, joinToEventOnOtherNode: summarize(warm) } : undefined,
      joinToEventOnOtherNode: summarize(delay), joinP99BySecond: perSecond.map((h) => (h ? summarize(h).p99 : null)), joinAck: summarize(joinAck), leaveToEventOnOtherNode: summarize(leaveDelay), loadAverage: Math.round(load * 100) / 100,
    };
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

/** SCENARIO=cross-node: event delay between two nodes on one Redis, RUNS times (fresh nodes each run). */
async function scenarioCrossNode() {
  const redis = await startRedis();
  const rooms = num('ROOM_COUNT', 100);
  const rate = num('JOINS_PER_SEC', 1_000);
  const durationMs = num('DURATION_S', 10) * 1000;
  const warmupMs = num('WARMUP_S', 3) * 1000;
  const runs = [];
  try {
    for (let r = 0; r < num('RUNS', 1); r++) runs.push(await crossNodeRun(redis, { rooms, rate, durationMs, warmupMs, label: `cross-node run ${r + 1}` }));
  } finally {
    await redis.stop();
  }
  const med = (f) => median(runs.map(f));
  const row = (name, key) => [name, runs.reduce((a, x) => a + x[key].count, 0), ms(med((x) => x[key].p50)), ms(med((x) => x[key].p90)), ms(med((x) => x[key].p99)), runs.map((x) => ms(x[key].p99)).join(' / '), ms(Math.max(...runs.map((x) => x[key].p99))), ms(med((x) => x[key].p999)), ms(Math.max(...runs.map((x) => x[key].max)))];
  const result = { scenario: 'cross-node', offeredJoinsPerSec: rate, runs, achievedJoinsPerSec: med((x) => x.achievedJoinsPerSec), joinP99Median: med((x) => x.joinToEventOnOtherNode.p99), joinP99Worst: Math.max(...runs.map((x) => x.joinToEventOnOtherNode.p99)) };
  const stall = (k) => runs.map((x) => (x.stalls[k] ? `${ms(x.stalls[k].loopDelayP99)} / ${ms(x.stalls[k].loopDelayMax)}${x.stalls[k].gcMaxMs === undefined ? '' : ` / ${ms(x.stalls[k].gcMaxMs)}`}` : '–')).join(', ');
  save('cross-node', result, [`### cross-node event delay (2 nodes on one Redis, ${rate} joins/s offered, each followed by a leave; ${runs.length} run(s) of ${durationMs / 1000} s after ${warmupMs / 1000} s of unmeasured warm-up, fresh nodes each; medians over the runs)`, '',
    table(['event', 'count', 'p50 (ms)', 'p90 (ms)', 'p99 (ms)', 'p99 per run (ms)', 'worst run p99 (ms)', 'p99.9 (ms)', 'max (ms)'], [row('join on node B → event on node A', 'joinToEventOnOtherNode'), row('leave on node B → event on node A', 'leaveToEventOnOtherNode'), row('join on node B → its ack', 'joinAck')]), '',
    `achieved ${runs.map((x) => x.achievedJoinsPerSec).join(' / ')} joins/s; errors ${JSON.stringify(runs.map((x) => x.errors))}; load average (1 min) at the start of each run ${runs.map((x) => x.loadAverage).join(' / ')}; CPU µs per join+leave cycle (node A / node B / Redis) ${runs.map((x) => `${x.cpuUsPerCycle.nodeA} / ${x.cpuUsPerCycle.nodeB} / ${x.cpuUsPerCycle.redis}`).join(', ')}; Redis commands per cycle ${JSON.stringify(runs[0]?.redisCallsPerCycle ?? {})}`, '',
    `event-loop delay p99 / max and longest GC pause (ms) per run: node A ${stall('nodeA')}; node B ${stall('nodeB')}; generator (delay only) ${stall('generator')}`,
    `join → event p99 per second of the measured period (ms): ${runs.map((x) => x.joinP99BySecond.map((v) => ms(v)).join(' ')).join('; ')}`,
    ...(warmupMs > 0 ? [`warm-up (not in the table): join → event p99 per run ${runs.map((x) => ms(x.warmup.joinToEventOnOtherNode.p99)).join(' / ')} ms`] : [])].join('\n'));
}

/** One churn run against `server`: `rate` join + leave cycles/s offered over a pool of sockets. */
async function churnRun(server, { rooms, rate, durationMs, label, redis }) {
  const pool = await openSockets(server.url, num('CHURN_SOCKETS', 200), { client: CLIENT });
  if (redis?.own) await redis.commandCalls({ reset: true });
  const redisBefore = redis?.pid ? sampleTree(redis.pid) : undefined;
  const joinH = histogram();
  const leaveH = histogram();
  const errors = {};
  const before = sampleTree(server.pid);
  const p = progress(label);
  const roomPrefix = `ch${randomUUID().slice(0, 4)}-`;
  const { started: n, seconds } = await poolLoop(pool, {
    rate,
    durationMs,
    progress: (sent) => p.update({ sent, acked: joinH.totalCount, h: joinH }),
    step: (s, i, release) => {
      const roomId = `${roomPrefix}${i % rooms}`;
      const t0 = performance.now();
      s.emit('presence:join', { roomId, userId: `u${i}` }, (j) => {
        recordSince(joinH, t0);
        if (!j?.ok) countError(errors, j, 'join');
        const t1 = performance.now();
        s.emit('presence:leave', { roomId }, (l) => {
          recordSince(leaveH, t1);
          if (!l?.ok) countError(errors, l, 'leave');
          release();
        });
      });
    },
  });
  p.done();
  const after = sampleTree(server.pid);
  const cpu = usage(before, after);
  // CPU microseconds per join+leave cycle of the server and of Redis, and Redis commands per cycle: the cost, whatever the machine's load.
  const perCycle = (x) => Math.round((x * 1e6) / Math.max(1, n));
  const cpuUsPerCycle = { server: perCycle(after.cpu - before.cpu), ...(redisBefore ? { redis: perCycle(sampleTree(redis.pid).cpu - redisBefore.cpu) } : {}) };
  const calls = redis?.own ? await redis.commandCalls() : {};
  const micros = redis?.own ? await redis.commandMicros() : {};
  const perCycleOf = (o) => Object.fromEntries(Object.entries(o).filter(([k]) => !['info', 'config|resetstat', 'config'].includes(k)).map(([k, v]) => [k, Math.round((v / Math.max(1, n)) * 100) / 100]).filter(([, v]) => v >= 0.01));
  const redisCallsPerCycle = perCycleOf(calls);
  // µs per cycle by command (evalsha includes the commands its scripts ran, which are also listed by name).
  const redisMicrosPerCycle = perCycleOf(micros);
  closeSockets(pool);
  return { achievedPerSec: Math.round(n / seconds), errors, join: summarize(joinH), leave: summarize(leaveH), server: cpu, cpuUsPerCycle, redisCallsPerCycle, redisMicrosPerCycle };
}

/**
 * SCENARIO=churn: join + leave cycles against ours and the baseline of the
 * engine ((a) bare for memory, (b) + Lua for Redis), ROUNDS alternating. A high
 * CHURN_PER_SEC (e.g. 20000) saturates both and measures throughput.
 */
async function scenarioChurn() {
  const redis = ENGINE === 'redis' ? await startRedis() : undefined;
  const rooms = num('ROOM_COUNT', 100);
  const rate = num('CHURN_PER_SEC', 500);
  const durationMs = num('DURATION_S', 10) * 1000;
  const rounds = num('ROUNDS', 1);
  const baseKind = ENGINE === 'redis' ? 'lua' : 'bare';
  const baseName = ENGINE === 'redis' ? 'baseline (b) + 1 Lua script' : 'baseline (a) bare Socket.IO';
  const runs = { ours: [], base: [] };
  const loadStart = loadavg().map((x) => Math.round(x * 100) / 100);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const who of r % 2 ? ['base', 'ours'] : ['ours', 'base']) {
        // CPU_PROF=<dir>: a `--cpu-prof` profile of each server run there.
        const prof = { execArgv: env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${env.CPU_PROF}`, `--cpu-prof-name=churn-${who}-r${r + 1}.cpuprofile`] : [] };
        // SERVER_ENV (JSON): extra settings of our server (not the baseline's).
        const server = who === 'ours' ? await ours(ENGINE, redis, JSON.parse(env.SERVER_ENV ?? '{}'), 'ours', prof) : await startServer(baseKind, { REDIS_URL: redis?.url ?? '' }, prof);
        try {
          runs[who].push(await churnRun(server, { rooms, rate, durationMs, label: `churn ${who} r${r + 1}`, redis }));
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    await redis?.stop();
  }
  const pick = (who) => {
    const list = runs[who];
    const med = (f) => median(list.map(f));
    return { achievedPerSec: med((x) => x.achievedPerSec), join: { p50: med((x) => x.join.p50), p99: med((x) => x.join.p99), p999: med((x) => x.join.p999), max: med((x) => x.join.max) }, leave: { p50: med((x) => x.leave.p50), p99: med((x) => x.leave.p99), p999: med((x) => x.leave.p999), max: med((x) => x.leave.max) }, cpu: med((x) => x.server.cpuPercent), serverUsPerCycle: med((x) => x.cpuUsPerCycle.server), redisUsPerCycle: med((x) => x.cpuUsPerCycle.redis), redisCallsPerCycle: list[0]?.redisCallsPerCycle ?? {}, redisMicrosPerCycle: list[0]?.redisMicrosPerCycle ?? {}, errors: list.map((x) => x.errors) };
  };
  const o = pick('ours');
  const b = pick('base');
  const result = { scenario: 'churn', engine: ENGINE, baseline: baseName, offeredPerSec: rate, rounds, loadAverage: { start: loadStart, end: loadavg().map((x) => Math.round(x * 100) / 100) }, ours: o, base: b, throughputRatio: Math.round((o.achievedPerSec / b.achievedPerSec) * 100) / 100, runs };
  save(`churn-${ENGINE}`, result, [`### join/leave churn (${ENGINE} engine, ${rate} join+leave cycles/s offered over ${rooms} rooms, pool of ${num('CHURN_SOCKETS', 200)} sockets, median of ${rounds} alternating round(s); load average ${result.loadAverage.start.join(' / ')})`, '',
    table(['server', 'cycles/s achieved', 'ratio to baseline', 'join p50 (ms)', 'join p99 (ms)', 'join p99.9 (ms)', 'leave p50 (ms)', 'leave p99 (ms)', 'leave p99.9 (ms)', 'server CPU (% of one core)', 'CPU µs per cycle, server / Redis', 'errors'],
      [['ours', o.achievedPerSec, result.throughputRatio, ms(o.join.p50), ms(o.join.p99), ms(o.join.p999), ms(o.leave.p50), ms(o.leave.p99), ms(o.leave.p999), o.cpu, `${o.serverUsPerCycle} / ${o.redisUsPerCycle ?? '-'}`, JSON.stringify(o.errors)],
       [baseName, b.achievedPerSec, 1, ms(b.join.p50), ms(b.join.p99), ms(b.join.p999), ms(b.leave.p50), ms(b.leave.p99), ms(b.leave.p999), b.cpu, `${b.serverUsPerCycle} / ${b.redisUsPerCycle ?? '-'}`, JSON.stringify(b.errors)]]), '',
    `Redis commands per cycle (first round): ours ${JSON.stringify(o.redisCallsPerCycle)}; baseline ${JSON.stringify(b.redisCallsPerCycle)}; Redis µs per cycle by command (INFO commandstats; evalsha includes its scripts' commands): ours ${JSON.stringify(o.redisMicrosPerCycle)}; baseline ${JSON.stringify(b.redisMicrosPerCycle)}`].join('\n'));
}

async function scenarioSweep() {
  const rates = (env.RATES ?? '1000,2000,5000,10000,15000,20000').split(',').map(Number);
  const durationMs = num('DURATION_S', 5) * 1000;
  const clients = num('CLIENTS', 200);
  const redis = await startRedis();
  const series = [];
  const rows = [];
  try {
    for (const [name, kind, engine] of [['ours, memory', 'ours', 'memory'], ['ours, redis', 'ours', 'redis'], ['baseline (a) bare', 'bare'], ['baseline (b) + Lua', 'lua']]) {
      const p99 = [];
      for (const rate of rates) {
        const server = kind === 'ours' ? await ours(engine, redis) : await startServer(kind, { REDIS_URL: redis.url });
        try {
          const row = await heartbeatRun(server, { clients, usersPerRoom: 2, rate, durationMs, patchRatio: 0, label: `${name} @${rate}/s` });
          p99.push([rate, row.latency.p99]);
          rows.push([name, rate, row.acksPerSec, ms(row.latency.p50), ms(row.latency.p99), ms(row.latency.p999), JSON.stringify(row.errors), row.server.cpuPercent]);
        } finally {
          await server.stop();
        }
      }
      series.push({ name, points: p99, dashed: kind !== 'ours' });
    }
  } finally {
    await redis.stop();
  }
  const svg = latencyChart(series, { title: `p99 heartbeat ack latency vs offered rate (${clients} clients, 2 cores shared)` });
  const chart = env.CHART_PATH ?? recordedPath(fileURLToPath(new URL('../docs/benchmark-latency.svg', import.meta.url)), 'benchmark-latency.svg');
  writeFileSync(chart, svg);
  save('sweep', { rates, durationMs, clients, series }, [`### latency against offered rate (open loop, ${clients} clients, ${durationMs / 1000} s per point)`, '', table(['server', 'offered heartbeats/s', 'acks/s', 'p50 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'errors', 'server CPU (% of one core)'], rows), '', `chart: ${chart}`].join('\n'));
}

/** Seconds-long run of every scenario, so the harness cannot rot (used by .ci/run). */
async function scenarioSmoke() {
  const t0 = Date.now();
  Object.assign(env, { WARMUP_S: '0.3', DURATION_S: '1', ROOM_COUNT: '10', USERS_PER_ROOM: '2', HEARTBEATS_PER_SEC: '200', ROUNDS: '1', CLIENTS: '20', RATE: '500', JOINS_PER_SEC: '100', CHURN_PER_SEC: '100', CHURN_SOCKETS: '20', REALISTIC_CLIENTS: '50', REALISTIC_ROOMS: '5', REALISTIC_RATE: '500', REALISTIC_S: '1' });
  env.RESULTS_DIR ??= undefined;
  for (const engine of ['memory', 'redis']) {
    env.ENGINE = engine;
    await scenarioBasic();
  }
  env.ENGINE = 'memory';
  await scenarioCompare();
  await scenarioCrossNode();
  await scenarioChurn();
  Object.assign(env, { CONNECTIONS: '300', SOCKETS_PER_CLIENT_PROCESS: '150', HEARTBEAT_INTERVAL_MS: '1000', DURATION_S: '2', ENGINE: 'redis', WORKERS: '2' });
  await scenarioScale();
  // User status REST API: a few thousand users, a fraction of a second per point, both engines.
  Object.assign(env, { USERS: '500', DURATION_S: '0.3', WARMUP_S: '0.1', RATES: '300', BATCH_RATES: '50', BATCH_SIZE: '20', CONCURRENCY: '8', LOAD_THREADS: '1', OPEN_CONNECTIONS: '8', CACHE_RECORDS: '500', SEED_CONCURRENCY: '16' });
  for (const engine of ['memory', 'redis']) await scenarioStatus({ ...env, ENGINE: engine }, log);
  // Channels: 40 subscribers over 4 channels on two nodes, ours (Redis) and the Lua-script baseline, a small recovery.
  await scenarioChannels({ ...env, CONTENDERS: 'redis,script', ROUNDS: '1', SUBSCRIBERS: '40', CHANNELS: '4', SUB_WORKERS: '1', RATE: '200', DURATION_S: '0.3', THROUGHPUT_S: '0.3', WARMUP_S: '0', MISSED: '5', RECOVERY_LIVE_RATE: '20' }, log);
  // Centrifugo clients: the same 40 subscribers with centrifuge-js and with socket.io-client, Redis (two nodes) only.
  await scenarioCentrifugo({ ...env, ENGINES: 'redis', ROUNDS: '1', SUBSCRIBERS: '40', CHANNELS: '4', SUB_WORKERS: '1', RATE: '200', DURATION_S: '0.3', THROUGHPUT_S: '0.3', WARMUP_S: '0' }, log);
  log(`smoke run finished in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const scenarioScale = () => runScale(env, log);
const scenarios = { basic: scenarioBasic, compare: scenarioCompare, guard: scenarioGuard, 'cross-node': scenarioCrossNode, scale: scenarioScale, churn: scenarioChurn, sweep: scenarioSweep, status: () => scenarioStatus(env, log), channels: () => scenarioChannels(env, log), centrifugo: () => scenarioCentrifugo(env, log), smoke: scenarioSmoke };
const run = scenarios[SCENARIO];
if (!run) {
  console.error(`unknown SCENARIO '${SCENARIO}'; one of ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
run().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
