#!/usr/bin/env node
// realtime-message benchmark harness. One command per scenario:
//   SCENARIO=basic|compare|cross-node|scale|churn|sweep|status|channels|centrifugo|smoke npm run benchmark:presence
// See docs/benchmarks.md for every variable and the recorded results.
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ack, closeSockets, closedLoop, countEvents, joinAll, openLoop, openSockets, poolLoop } from './lib/load.mjs';
import { scenarioCentrifugo } from './lib/centrifugo-scenario.mjs';
import { scenarioChannels } from './lib/channels-scenario.mjs';
import { startRedis } from './lib/redis.mjs';
import { latencyChart, save, table } from './lib/report.mjs';
import { startServer } from './lib/servers.mjs';
import { scenarioStatus } from './lib/status-scenario.mjs';
import { countError, decodeHistogram, histogram, median, recordSince, sampleTree, summarize, usage } from './lib/stats.mjs';

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const SCENARIO = env.SCENARIO ?? 'basic';
const ENGINE = env.ENGINE ?? 'memory';
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
async function ours(engine, redis, extra = {}, kind = 'ours') {
  return startServer(kind, engine === 'redis' ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `b${randomUUID().slice(0, 6)}:`, ...extra } : extra);
}

/** Connect + join clients, run heartbeats, sample the server; returns one row of results. */
async function heartbeatRun(server, { clients, usersPerRoom, rate, durationMs, patchRatio, label }) {
  const sockets = await openSockets(server.url, clients);
  const events = countEvents(sockets);
  await joinAll(sockets, { usersPerRoom, roomPrefix: `r${randomUUID().slice(0, 6)}-` });
  // Unmeasured warm-up: a freshly started server is still compiling its hot
  // paths (JIT); without this, short runs measure warm-up, not steady state.
  const warmupMs = num('WARMUP_S', 2) * 1000;
  if (warmupMs > 0) await closedLoop(sockets, { durationMs: warmupMs, patchRatio });
  events.events = 0;
  const before = sampleTree(server.pid);
  const res = rate > 0 ? await openLoop(sockets, { rate, durationMs, patchRatio, progress: progress(label) }) : await closedLoop(sockets, { durationMs, patchRatio, progress: progress(label) });
  const after = sampleTree(server.pid);
  closeSockets(sockets);
  return { label, acksPerSec: res.acksPerSec, sent: res.sent, errors: res.errors, latency: summarize(res.h), eventsPerSec: Math.round(events.events / res.seconds), server: usage(before, after) };
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
    save(`basic-${ENGINE}`, result, [`### basic (${ENGINE} engine, ${clients} clients, ${rate || 'closed loop'} heartbeats/s offered, PATCH_RATIO ${num('PATCH_RATIO', 0.1)})`, '', table(['acks/s', 'errors', 'p50', 'p90', 'p99', 'p99.9', 'max', 'events/s', 'join→event p99', 'server CPU', 'server RSS'], [[result.acksPerSec, JSON.stringify(res.errors), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.max), result.eventsPerSec, ms(result.joinEventDelay.p99), cpu ? `${cpu.cpuPercent}%` : '-', cpu ? `${cpu.rssMB} MB` : '-']])].join('\n'));
  } finally {
    await server.stop();
    await redis?.stop();
  }
}

async function scenarioCompare() {
  const rounds = num('ROUNDS', 3);
  const clients = num('CLIENTS', 200);
  const durationMs = num('DURATION_S', 8) * 1000;
  const rate = num('RATE', 10_000);
  const redis = await startRedis();
  const pairs = [
    ['memory', 'bare', 'baseline (a): bare Socket.IO'],
    ['redis', 'lua', 'baseline (b): Socket.IO + 1 Lua script'],
  ];
  const out = {};
  try {
    for (const [engine, baseKind, baseName] of pairs) {
      for (const mode of ['closed', 'open']) {
        // With PREVIOUS_CLI, the build of an earlier commit runs in the same rounds: a change is measured against it.
        const contenders = process.env.PREVIOUS_CLI ? ['base', 'ours', 'previous'] : ['base', 'ours'];
        const runs = Object.fromEntries(contenders.map((c) => [c, []]));
        for (let r = 0; r < rounds; r++) {
          // Rotate the order every round so drift of a noisy machine hits every side.
          const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]);
          for (const who of order) {
            const server = who === 'base' ? await startServer(baseKind, { REDIS_URL: redis.url }) : await ours(engine, redis, {}, who);
            try {
              const row = await heartbeatRun(server, { clients, usersPerRoom: 2, rate: mode === 'open' ? rate : 0, durationMs, patchRatio: 0, label: `${engine} ${mode} ${who} r${r + 1}` });
              runs[who].push(row);
            } finally {
              await server.stop();
            }
          }
        }
        const summary = (who) => {
          const med = (f) => median(runs[who].map(f));
          return { acksPerSec: med((x) => x.acksPerSec), p50: med((x) => x.latency.p50), p99: med((x) => x.latency.p99), p999: med((x) => x.latency.p999), cpu: med((x) => x.server.cpuPercent), errors: runs[who].map((x) => x.errors) };
        };
        out[`${engine}-${mode}`] = {
          engine, mode, baseline: baseName, rounds, clients, offeredRate: mode === 'open' ? rate : 'closed loop',
          ours: summary('ours'),
          base: summary('base'),
          ...(runs.previous ? { previous: summary('previous') } : {}),
          runs,
        };
        const o = out[`${engine}-${mode}`];
        o.throughputRatio = Math.round((o.ours.acksPerSec / o.base.acksPerSec) * 100) / 100;
        o.p99Ratio = Math.round((o.ours.p99 / o.base.p99) * 100) / 100;
        if (o.previous) {
          o.vsPrevious = { throughputRatio: Math.round((o.ours.acksPerSec / o.previous.acksPerSec) * 100) / 100, p99Ratio: Math.round((o.ours.p99 / o.previous.p99) * 100) / 100 };
        }
      }
    }
  } finally {
    await redis.stop();
  }
  const rows = Object.values(out).map((o) => [o.engine, o.mode === 'closed' ? `closed loop, ${o.clients} clients` : `${o.offeredRate}/s open loop`, o.baseline, o.ours.acksPerSec, o.base.acksPerSec, o.throughputRatio, ms(o.ours.p50), ms(o.ours.p99), ms(o.base.p99), o.p99Ratio, ms(o.ours.p999), `${o.ours.cpu}% / ${o.base.cpu}%`]);
  const lines = [`### ours vs baselines (median of ${rounds} alternating rounds, ${durationMs / 1000} s each)`, '', table(['engine', 'load', 'baseline', 'ours acks/s', 'baseline acks/s', 'throughput ratio', 'ours p50', 'ours p99', 'baseline p99', 'p99 ratio', 'ours p99.9', 'server CPU ours / baseline'], rows)];
  const withPrevious = Object.values(out).filter((o) => o.previous);
  if (withPrevious.length > 0) {
    lines.push('', `### ours vs the previous build (${process.env.PREVIOUS_CLI})`, '', table(['engine', 'load', 'ours acks/s', 'previous acks/s', 'throughput ratio', 'ours p99', 'previous p99', 'p99 ratio'], withPrevious.map((o) => [o.engine, o.mode === 'closed' ? `closed loop, ${o.clients} clients` : `${o.offeredRate}/s open loop`, o.ours.acksPerSec, o.previous.acksPerSec, o.vsPrevious.throughputRatio, ms(o.ours.p99), ms(o.previous.p99), o.vsPrevious.p99Ratio])));
  }
  save('compare', out, lines.join('\n'));
}

async function scenarioCrossNode() {
  const redis = await startRedis();
  const prefix = `x${randomUUID().slice(0, 6)}:`;
  const [a, b] = await Promise.all([startServer('ours', { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix }), startServer('ours', { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix })]);
  const rooms = num('ROOM_COUNT', 100);
  const rate = num('JOINS_PER_SEC', 1_000);
  const durationMs = num('DURATION_S', 10) * 1000;
  try {
    const observers = await openSockets(a.url, rooms);
    const roomPrefix = `c${randomUUID().slice(0, 6)}-`;
    await joinAll(observers, { usersPerRoom: 1, roomPrefix });
    const pool = await openSockets(b.url, num('CHURN_SOCKETS', 200));
    const sentAt = new Map();
    const delay = histogram();
    const leaveDelay = histogram();
    for (const o of observers) {
      o.on('presence:event', (e) => {
        const t = sentAt.get(`${e.type}:${e.userId}`);
        if (t === undefined) return;
        sentAt.delete(`${e.type}:${e.userId}`);
        recordSince((e.type === 'join' ? delay : leaveDelay), t);
      });
    }
    const errors = {};
    const p = progress('cross-node');
    const { started: n, seconds } = await poolLoop(pool, {
      rate,
      durationMs,
      progress: (sent) => p.update({ sent, acked: delay.totalCount, h: delay }),
      step: (s, i, release) => {
        const userId = `churn-${i}`;
        const roomId = `${roomPrefix}${i % rooms}`;
        sentAt.set(`join:${userId}`, performance.now());
        s.emit('presence:join', { roomId, userId }, (j) => {
          if (!j?.ok) countError(errors, j, 'join');
          sentAt.set(`leave:${userId}`, performance.now());
          s.emit('presence:leave', { roomId }, release);
        });
      },
    });
    await new Promise((r) => setTimeout(r, 500));
    p.done();
    closeSockets(observers);
    closeSockets(pool);
    const result = { scenario: 'cross-node', offeredJoinsPerSec: rate, achievedJoinsPerSec: Math.round(n / seconds), joins: n, joinEventsSeen: delay.totalCount, errors, joinToEventOnOtherNode: summarize(delay), leaveToEventOnOtherNode: summarize(leaveDelay) };
    const j = result.joinToEventOnOtherNode;
    const lv = result.leaveToEventOnOtherNode;
    save('cross-node', result, [`### cross-node event delay (2 nodes on one Redis, ${rate} joins/s offered, each followed by a leave)`, '', table(['event', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'], [['join on node B → event on node A', j.count, ms(j.p50), ms(j.p90), ms(j.p99), ms(j.p999), ms(j.max)], ['leave on node B → event on node A', lv.count, ms(lv.p50), ms(lv.p90), ms(lv.p99), ms(lv.p999), ms(lv.max)]]), '', `achieved ${result.achievedJoinsPerSec} joins/s; errors ${JSON.stringify(errors)}`].join('\n'));
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await redis.stop();
  }
}

async function scenarioScale() {
  const N = num('CONNECTIONS', 20_000);
  // SERVER=bare|lua measures a baseline instead (one process), to compare memory per connection.
  const kind = env.SERVER ?? 'ours';
  const engine = kind === 'ours' ? (env.ENGINE ?? 'redis') : kind;
  const workers = kind === 'ours' ? num('WORKERS', engine === 'redis' ? Math.max(2, Math.ceil(N / 10_000)) : 1) : 1;
  const perProcess = num('SOCKETS_PER_CLIENT_PROCESS', 10_000);
  const processes = Math.ceil(N / perProcess);
  const localAddresses = (env.LOCAL_ADDRESSES ?? '').split(',').filter(Boolean);
  const interval = num('HEARTBEAT_INTERVAL_MS', 15_000);
  const durationMs = num('DURATION_S', 30) * 1000;
  const redis = engine === 'redis' || engine === 'lua' ? await startRedis() : undefined;
  const server =
    kind === 'ours'
      ? await ours(engine, redis, { WORKERS: String(workers), PRESENCE_TTL_MS: String(interval * 3), PRESENCE_DISCONNECT_GRACE_MS: String(Math.min(5_000, interval * 3)) })
      : await startServer(kind, { REDIS_URL: redis?.url ?? '' });
  const children = [];
  try {
    const idle = sampleTree(server.pid);
    const redisBefore = redis?.own ? await redis.usedMemory() : 0;
    const t0 = performance.now();
    for (let i = 0; i < processes; i++) {
      const child = fork(fileURLToPath(new URL('./lib/client-worker.mjs', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise((r) => child.once('message', r));
      children.push(child);
    }
    const call = (child, msg) => new Promise((resolve, reject) => {
      child.once('message', (m) => (m.ok ? resolve(m) : reject(new Error(m.error))));
      child.send(msg);
    });
    const roomPrefix = `s${randomUUID().slice(0, 6)}-`;
    const connected = await Promise.all(children.map((c, i) => call(c, { cmd: 'connect', url: server.url, from: i, count: Math.min(perProcess, N - i * perProcess), usersPerRoom: num('USERS_PER_ROOM', 10), roomPrefix, localAddresses, keepAliveMs: interval })));
    const connectRetries = connected.reduce((a, c) => a + (c.retries ?? 0), 0);
    const connectSeconds = (performance.now() - t0) / 1000;
    log(`[scale] ${N} connections joined in ${connectSeconds.toFixed(1)} s; heartbeats every ${interval} ms for ${durationMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 2_000));
    const loaded = sampleTree(server.pid);
    const redisAfter = redis?.own ? await redis.usedMemory() : 0;
    const beats = await Promise.all(children.map((c) => call(c, { cmd: 'beat', intervalMs: interval, durationMs })));
    const after = sampleTree(server.pid);
    const h = histogram();
    const errors = {};
    let acked = 0;
    for (const b of beats) {
      h.add(decodeHistogram(b.histogram));
      acked += b.acked;
      for (const [k, v] of Object.entries(b.errors)) errors[k] = (errors[k] ?? 0) + v;
    }
    const result = {
      scenario: 'scale', engine, connections: N, serverWorkers: workers, clientProcesses: processes, heartbeatIntervalMs: interval, connectSeconds: Math.round(connectSeconds * 10) / 10, connectRetries,
      heartbeats: acked, errors, latency: summarize(h),
      serverRssIdleMB: Math.round(idle.rss / 1048576), serverRssLoadedMB: Math.round(loaded.rss / 1048576),
      serverBytesPerConnection: Math.round((loaded.rss - idle.rss) / N),
      redisBytesPerConnection: redis?.own ? Math.round((redisAfter - redisBefore) / N) : undefined,
      serverCpuDuringHeartbeats: usage(loaded, after),
    };
    const l = result.latency;
    save(`scale-${engine}-${N}`, result, [`### scale: ${N} concurrent connections (${engine} engine, ${workers} server worker(s), ${processes} client process(es), heartbeat every ${interval / 1000} s)`, '', table(['heartbeats', 'errors', 'p50', 'p99', 'p99.9', 'max', 'server RSS', 'server bytes / connection', 'Redis bytes / connection', 'server CPU'], [[acked, JSON.stringify(errors), ms(l.p50), ms(l.p99), ms(l.p999), ms(l.max), `${result.serverRssLoadedMB} MB`, result.serverBytesPerConnection, result.redisBytesPerConnection ?? '-', `${result.serverCpuDuringHeartbeats.cpuPercent}%`]])].join('\n'));
  } finally {
    await Promise.all(children.map((c) => new Promise((r) => { c.once('exit', r); c.send({ cmd: 'close' }); setTimeout(() => c.kill('SIGKILL'), 3_000); })));
    await server.stop();
    await redis?.stop();
  }
}

async function scenarioChurn() {
  const redis = ENGINE === 'redis' ? await startRedis() : undefined;
  const server = await ours(ENGINE, redis);
  const rooms = num('ROOM_COUNT', 100);
  const rate = num('CHURN_PER_SEC', 500);
  const durationMs = num('DURATION_S', 10) * 1000;
  try {
    const pool = await openSockets(server.url, num('CHURN_SOCKETS', 200));
    const joinH = histogram();
    const leaveH = histogram();
    const errors = {};
    const before = sampleTree(server.pid);
    const p = progress('churn');
    const { started: n, seconds } = await poolLoop(pool, {
      rate,
      durationMs,
      progress: (sent) => p.update({ sent, acked: joinH.totalCount, h: joinH }),
      step: (s, i, release) => {
        const roomId = `ch-${i % rooms}`;
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
    const cpu = usage(before, sampleTree(server.pid));
    closeSockets(pool);
    const result = { scenario: 'churn', engine: ENGINE, offeredPerSec: rate, achievedPerSec: Math.round(n / seconds), errors, join: summarize(joinH), leave: summarize(leaveH), server: cpu };
    save(`churn-${ENGINE}`, result, [`### join/leave churn (${ENGINE} engine, ${rate} join+leave cycles/s offered over ${rooms} rooms)`, '', table(['ack', 'count', 'p50', 'p99', 'p99.9', 'max'], [['join', result.join.count, ms(result.join.p50), ms(result.join.p99), ms(result.join.p999), ms(result.join.max)], ['leave', result.leave.count, ms(result.leave.p50), ms(result.leave.p99), ms(result.leave.p999), ms(result.leave.max)]]), '', `achieved ${result.achievedPerSec} cycles/s, errors ${JSON.stringify(errors)}, server CPU ${cpu.cpuPercent}%, RSS ${cpu.rssMB} MB`].join('\n'));
  } finally {
    await server.stop();
    await redis?.stop();
  }
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
          rows.push([name, rate, row.acksPerSec, ms(row.latency.p50), ms(row.latency.p99), ms(row.latency.p999), JSON.stringify(row.errors), `${row.server.cpuPercent}%`]);
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
  const chart = env.CHART_PATH ?? fileURLToPath(new URL('../docs/benchmark-latency.svg', import.meta.url));
  writeFileSync(chart, svg);
  save('sweep', { rates, durationMs, clients, series }, [`### latency against offered rate (open loop, ${clients} clients, ${durationMs / 1000} s per point)`, '', table(['server', 'offered/s', 'acks/s', 'p50', 'p99', 'p99.9', 'errors', 'server CPU'], rows), '', `chart: ${chart}`].join('\n'));
}

/** Seconds-long run of every scenario, so the harness cannot rot (used by .ci/run). */
async function scenarioSmoke() {
  const t0 = Date.now();
  Object.assign(env, { WARMUP_S: '0.3', DURATION_S: '1', ROOM_COUNT: '10', USERS_PER_ROOM: '2', HEARTBEATS_PER_SEC: '200', ROUNDS: '1', CLIENTS: '20', RATE: '500', JOINS_PER_SEC: '100', CHURN_PER_SEC: '100', CHURN_SOCKETS: '20' });
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

const scenarios = { basic: scenarioBasic, compare: scenarioCompare, 'cross-node': scenarioCrossNode, scale: scenarioScale, churn: scenarioChurn, sweep: scenarioSweep, status: () => scenarioStatus(env, log), channels: () => scenarioChannels(env, log), centrifugo: () => scenarioCentrifugo(env, log), smoke: scenarioSmoke };
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
