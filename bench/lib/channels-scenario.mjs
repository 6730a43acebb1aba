// SCENARIO=channels: publish throughput and publish→deliver latency of channels (SPEC §8) with
// 1,000 subscribers over 100 channels, ours (memory engine: one node; Redis: two nodes on one
// Redis) against a bare Socket.IO room broadcast (baseline a, one node) and a bare XADD + PUBLISH
// Lua script per publication (baseline b, two nodes), in the same run, the order rotating per
// round; then the recovery of every subscriber after it missed publications. See the "Channels"
// section of docs/benchmarks.md for the variables and the results. The helpers (workers, publishers,
// phase statistics, summaries) are exported for SCENARIO=centrifugo (bench/lib/centrifugo-scenario.mjs).
import { fork, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { closeSockets, openSockets } from './load.mjs';
import { startRedis } from './redis.mjs';
import { RESULTS_DIR, save, table } from './report.mjs';
import { startServer } from './servers.mjs';
import { decodeHistogram, histogram, machineCpu, median, recordSince, sampleTree, summarize, usage } from './stats.mjs';

const WORKER = fileURLToPath(new URL('./channels-worker.mjs', import.meta.url));
const BASELINE_SCRIPT = fileURLToPath(new URL('./channels-baseline-server.mjs', import.meta.url));
const LOOP_PROBE = fileURLToPath(new URL('./channels-loop-probe.mjs', import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const ms = (x) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '-');
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const load1 = () => Math.round(loadavg()[0] * 100) / 100;
const sleep = (t) => new Promise((r) => setTimeout(r, t));
/** CLOCK_MONOTONIC in µs: the clock of a --cpu-prof profile (bench/profile-top.mjs --from --to). */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
/** This (publisher) process's event-loop delay, reset per phase. */
const mainLoop = startLoopMonitor();
function startLoopMonitor() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return h;
}

/** The servers under test: label, nodes, how to start one node. */
const CONTENDERS = {
  memory: { label: 'ours, memory (1 node)', nodes: 1, ours: true },
  redis: { label: 'ours, Redis (2 nodes)', nodes: 2, ours: true },
  // The CLI at PREVIOUS_CLI (a clean build of an earlier commit), on Redis as `redis`: a change against its parent in the same run.
  previous: { label: 'ours before (PREVIOUS_CLI), Redis (2 nodes)', nodes: 2, ours: true, previous: true },
  room: { label: 'baseline (a): Socket.IO room broadcast (1 node)', nodes: 1, ours: false },
  script: { label: 'baseline (b): XADD + PUBLISH script (2 nodes)', nodes: 2, ours: false },
};

function settings(env) {
  const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
  return {
    rounds: num('ROUNDS', 3),
    channels: num('CHANNELS', 100),
    subscribers: num('SUBSCRIBERS', 1_000),
    subWorkers: num('SUB_WORKERS', 2),
    rate: num('RATE', 1_000),
    durationMs: num('DURATION_S', 10) * 1000,
    throughputMs: num('THROUGHPUT_S', 6) * 1000,
    warmupMs: num('WARMUP_S', 2) * 1000,
    window: num('PUBLISH_WINDOW', 2),
    missed: num('MISSED', 100),
    recoveryLiveRate: num('RECOVERY_LIVE_RATE', 100),
    historySize: num('HISTORY_SIZE', 1_000),
    payloadBytes: num('PAYLOAD_BYTES', 64),
    contenders: (env.CONTENDERS ?? 'memory,room,redis,script').split(',').filter(Boolean),
    profile: env.PROFILE === '1' || env.PROFILE === 'all' ? env.PROFILE : undefined,
    debug: Boolean(env.CHANNELS_DEBUG),
    quietPercent: num('QUIET_CPU_PERCENT', 0),
    quietMaxWaitMs: num('QUIET_MAX_WAIT_S', 30) * 1000,
    perf: env.PERF === '1',
  };
}

/** The channels config of our server: open channels without namespace, history for recovery, no presence. */
export function channelsConfig(historySize) {
  mkdirSync(tmpdir(), { recursive: true });
  const path = join(tmpdir(), `bench-channels-${process.pid}.json`);
  writeFileSync(path, JSON.stringify({ channel: { without_namespace: {
    history_size: historySize, history_ttl: '300s', allow_recovery: true,
    allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true,
    allow_publish_for_client: true, allow_publish_for_anonymous: true,
  } } }));
  return path;
}

export function call(child, msg) {
  return new Promise((resolve, reject) => {
    child.once('message', (m) => (m.ok ? resolve(m) : reject(new Error(m.error))));
    child.send(msg);
  });
}

export async function startWorkers(n, script = WORKER) {
  const children = [];
  for (let i = 0; i < n; i++) {
    const child = fork(script, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise((r) => child.once('message', r));
    children.push(child);
  }
  return children;
}

export async function stopWorkers(children) {
  await Promise.all(children.map((c) => new Promise((r) => {
    if (c.exitCode !== null) return r();
    c.once('exit', r);
    c.send({ cmd: 'close' });
    setTimeout(() => c.kill('SIGKILL'), 3_000);
  })));
}

/** CPU and RSS of a set of process trees (the nodes of one contender, or Redis). */
export function sampleAll(pids) {
  const s = pids.map((p) => sampleTree(p));
  return { cpu: s.reduce((a, x) => a + x.cpu, 0), rss: s.reduce((a, x) => a + x.rss, 0), at: performance.now() };
}

/** Waits until the machine's busy CPU over 1 s (other users' processes; ours are idle) is at most `percent` of a core. */
export async function waitQuiet(percent, maxWaitMs, log) {
  if (!(percent > 0)) return;
  const t0 = performance.now();
  for (;;) {
    const m0 = machineCpu();
    await sleep(1_000);
    const busy = (machineCpu() - m0) * 100;
    if (busy <= percent) return;
    if (performance.now() - t0 > maxWaitMs) return log(`[channels] machine still busy (${busy.toFixed(0)} % of a core) after ${maxWaitMs / 1000} s; measuring anyway`);
  }
}

/**
 * The publishers: one socket per channel, on node `c % nodes`, in this process. Each channel's
 * publications are numbered (data.s) by its publisher; ours also answers with the offset. `tops[c]`
 * is the last offset (ours) or number (baselines) acked on channel c.
 */
export function publishers(sockets, names, cfg) {
  const nodes = sockets.nodes;
  const seq = new Array(names.length).fill(0);
  const tops = new Array(names.length).fill(0);
  const errors = {};
  const pad = 'x'.repeat(cfg.payloadBytes);
  let inflight = 0;
  function publish(c, t, onAck) {
    const s = ++seq[c];
    inflight++;
    sockets[c].emit('channel:publish', { channel: names[c], data: { t, s, n: c % nodes, x: pad } }, (a) => {
      inflight--;
      if (a?.ok) tops[c] = Math.max(tops[c], a.offset ?? s);
      else {
        const code = a?.error?.code ?? 'unknown';
        errors[code] = (errors[code] ?? 0) + 1;
      }
      onAck?.(a);
    });
  }
  return {
    tops,
    errors,
    get published() {
      return seq.reduce((a, b) => a + b, 0);
    },
    get inflight() {
      return inflight;
    },
    /**
     * Open loop: `rate` per second over the channels in turn, data.t = the *intended* send time. Resolves when all are acked.
     * `lateH`: how late each publication left this process (actual − intended send time: the publisher's own delay).
     */
    async open(rate, durationMs, ackH, lateH) {
      const total = Math.round((rate * durationMs) / 1000);
      const start = performance.now();
      let sent = 0;
      let acked = 0;
      await new Promise((resolve) => {
        const tick = () => {
          const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
          while (sent < due) {
            const i = sent++;
            const intended = start + (i * 1000) / rate;
            if (lateH) recordSince(lateH, intended);
            publish(i % names.length, performance.timeOrigin + intended, () => {
              acked++;
              if (ackH) recordSince(ackH, intended);
            });
          }
          if (sent < total) setTimeout(tick, 1);
          else resolve();
        };
        tick();
      });
      const end = performance.now() + 10_000;
      while (acked < sent && performance.now() < end) await sleep(5);
      return { sent, acked, seconds: (performance.now() - start) / 1000 };
    },
    /** Closed loop: every channel's publisher keeps `window` publications in flight for `durationMs`. */
    async closed(durationMs, window, ackH) {
      const start = performance.now();
      const end = start + durationMs;
      let sent = 0;
      await Promise.all(names.flatMap((_, c) => Array.from({ length: window }, () => new Promise((resolve) => {
        const next = () => {
          if (performance.now() >= end) return resolve();
          const t0 = performance.now();
          sent++;
          publish(c, performance.timeOrigin + t0, () => {
            if (ackH) recordSince(ackH, t0);
            next();
          });
        };
        next();
      }))));
      return { sent, startAt: performance.timeOrigin + start, seconds: (performance.now() - start) / 1000 };
    },
    /** `n` publications on every channel, each channel in sequence (`window` in flight per channel). */
    async each(n, window = 4) {
      await Promise.all(names.flatMap((_, c) => {
        let left = n;
        return Array.from({ length: window }, () => new Promise((resolve) => {
          const next = () => (left-- > 0 ? publish(c, now(), next) : resolve());
          next();
        }));
      }));
    },
  };
}

/**
 * Event-loop delay and CPU of the server processes per phase (bench/lib/channels-loop-probe.mjs):
 * `mark()` starts a phase in every process, `read()` ends it and returns each process's
 * { p50, p99, max, mean (ms), cpuMs }.
 */
export function loopProbe(dir, pids) {
  const seqs = new Map();
  const file = (pid) => join(dir, `${pid}-loop.json`);
  const signal = () => {
    for (const pid of pids) {
      seqs.set(pid, existsSync(file(pid)) ? JSON.parse(readFileSync(file(pid), 'utf8')).seq : 0);
      try {
        process.kill(pid, 'SIGWINCH');
      } catch {
        /* gone */
      }
    }
  };
  const collect = async () => {
    const end = performance.now() + 3_000;
    const out = [];
    for (const pid of pids) {
      for (;;) {
        const x = existsSync(file(pid)) ? JSON.parse(readFileSync(file(pid), 'utf8')) : undefined;
        if (x && x.seq > seqs.get(pid)) {
          out.push(x);
          break;
        }
        if (performance.now() > end) {
          out.push(undefined);
          break;
        }
        await sleep(20);
      }
    }
    return out;
  };
  return {
    async mark() {
      signal();
      await collect();
    },
    async read() {
      signal();
      return collect();
    },
  };
}

/**
 * PERF=1: on-CPU samples (kernel included) of the server processes during the throughput phase,
 * `perf record -e cpu-clock -g` into RESULTS_DIR/perf/<kind>-<n>.data (the servers run with
 * --perf-basic-prof, so JS frames resolve): `perf report -i <file> --no-children --sort sym`.
 * Unlike --cpu-prof (wall-clock samples), time spent waiting for a core is not counted.
 */
function perfRecord(cfg, kind, pids) {
  if (!cfg.perf) return async () => {};
  mkdirSync(join(RESULTS_DIR, 'perf'), { recursive: true });
  const out = join(RESULTS_DIR, 'perf', `${kind}-${Date.now()}.data`);
  const p = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', process.env.PERF_FREQ ?? '999', '-g', '-p', pids.join(','), '-o', out], { stdio: 'ignore' });
  return () => new Promise((resolve) => {
    p.once('exit', resolve);
    p.kill('SIGINT');
    setTimeout(() => p.kill('SIGKILL'), 10_000);
  });
}

/**
 * Redis's own latency events during a phase (LATENCY monitor at a 1 ms threshold: commands and
 * internal work that took >= 1 ms inside Redis; not the time Redis waited for a core): `start()`
 * resets, `stop()` returns the longest event (ms) by name, e.g. { command: 3 }. Only on our own
 * redis-server.
 */
function redisLatency(redis) {
  if (!redis.own) return { start: async () => {}, stop: async () => undefined };
  const c = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  return {
    async start() {
      await c.call('CONFIG', 'SET', 'latency-monitor-threshold', '1');
      await c.call('LATENCY', 'RESET');
    },
    async stop() {
      const latest = await c.call('LATENCY', 'LATEST');
      c.disconnect();
      return Object.fromEntries(latest.map((e) => [e[0], Number(e[3])]));
    },
  };
}

/** A process's own event-loop delay (ms) since the last reset. */
export function loopDelay(h) {
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) };
}

/** Sums the workers' stats of the current phase. */
export async function collect(workers) {
  const all = await Promise.all(workers.map((w) => call(w, { cmd: 'stats' })));
  const same = histogram();
  const cross = histogram();
  let deliveries = 0;
  let lastAt = 0;
  const slow = {};
  const loops = all.map((s) => s.loop);
  for (const s of all) {
    for (const [b, n] of Object.entries(s.slow)) slow[b] = (slow[b] ?? 0) + n;
    same.add(decodeHistogram(s.same));
    cross.add(decodeHistogram(s.cross));
    deliveries += s.deliveries;
    lastAt = Math.max(lastAt, s.lastAt);
  }
  const both = histogram();
  both.add(same);
  both.add(cross);
  return { same, cross, both, deliveries, lastAt, slow, loops };
}

/** Waits until the subscribers got `expected` deliveries in the phase (or `maxMs` passed). */
export async function drain(workers, expected, maxMs = 15_000) {
  const end = performance.now() + maxMs;
  for (;;) {
    const c = await collect(workers);
    if (c.deliveries >= expected || performance.now() > end) return c;
    await sleep(100);
  }
}

/** Waits until no delivery came for 150 ms (everything in flight has arrived). */
export async function settle(workers, maxMs = 5_000) {
  const end = performance.now() + maxMs;
  let last = -1;
  for (;;) {
    await sleep(150);
    const c = await collect(workers);
    if (c.deliveries === last || performance.now() > end) return;
    last = c.deliveries;
  }
}

/** One contender, one round: connect, latency at the offered rate, throughput, recovery (ours), the gap check. */
async function runOne(kind, cfg, redis, configPath, log) {
  const c = CONTENDERS[kind];
  const t0 = performance.now();
  const mark = (what) => cfg.debug && log(`[channels]     ${what} at ${Math.round(performance.now() - t0)} ms`);
  const id = randomUUID().slice(0, 6);
  const names = Array.from({ length: cfg.channels }, (_, i) => `bench${id}_${i}`);
  const prefix = `bc${id}:`;
  const perChannel = cfg.subscribers / cfg.channels;
  const probeDir = mkdtempSync(join(tmpdir(), 'channels-loop-'));
  // --perf-basic-prof also turns V8's log on: into the probe's folder, not the working directory.
  const perfArgs = cfg.perf ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(probeDir, 'v8.log')}`] : [];
  const execArgv = ['--import', LOOP_PROBE, ...perfArgs, ...(cfg.profile && (c.ours || cfg.profile === 'all') ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles')}`] : [])];
  const nodeEnv = c.ours
    ? { CHANNELS_CONFIG: configPath, MAX_CONNECTIONS_PER_ADDRESS: '0', LOOP_PROBE_DIR: probeDir, ...(c.nodes > 1 ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix } : {}) }
    : { BASELINE_MODE: kind, REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, BASELINE_HISTORY_SIZE: String(cfg.historySize), LOOP_PROBE_DIR: probeDir };
  const serverKind = c.ours ? (c.previous ? 'previous' : 'ours') : `channels-${kind}`;
  const servers = await Promise.all(Array.from({ length: c.nodes }, () => startServer(serverKind, nodeEnv, { execArgv, script: c.ours ? undefined : BASELINE_SCRIPT })));
    mark('servers started');
  const urls = servers.map((s) => s.url);
  const serverPids = servers.map((s) => s.pid);
  const probe = loopProbe(probeDir, serverPids);
  const workers = await startWorkers(cfg.subWorkers);
  let pubSockets = [];
  const out = { kind, label: c.label, nodes: c.nodes, load1: [load1()] };
  try {
    // Publishers: channel c's on node c % nodes.
    for (let n = 0; n < c.nodes; n++) {
      const mine = names.map((_, i) => i).filter((i) => i % c.nodes === n);
      const socks = await openSockets(urls[n], mine.length);
      mine.forEach((i, k) => (pubSockets[i] = socks[k]));
    }
    mark('publishers connected');
    pubSockets.nodes = c.nodes;
    const pub = publishers(pubSockets, names, cfg);
    // Subscribers, spread over the worker processes.
    const per = Math.ceil(cfg.subscribers / workers.length);
    const connected = await Promise.all(workers.map((w, i) => call(w, { cmd: 'connect', urls, from: i * per, count: Math.max(0, Math.min(per, cfg.subscribers - i * per)), channels: cfg.channels, channelNames: names })));
    mark('subscribers connected');
    out.connectRetries = connected.reduce((a, x) => a + x.retries, 0);
    out.subscribeErrors = connected.reduce((a, x) => ({ ...a, ...x.errors }), {});
    if (cfg.warmupMs > 0) {
      await pub.open(cfg.rate, cfg.warmupMs);
      await settle(workers);
    }

    mark('warmed up');
    // 1. Latency at the offered rate (open loop).
    await Promise.all(workers.map((w) => call(w, { cmd: 'phase', name: 'latency' })));
    const ackOpen = histogram();
    const lateOpen = histogram();
    await probe.mark();
    const redisLat = redisLatency(redis);
    await redisLat.start();
    mainLoop.reset();
    const loadBefore = load1();
    let before = sampleAll(serverPids);
    let redisBefore = redis.pid ? sampleTree(redis.pid) : undefined;
    const m0Open = machineCpu();
    const openFromUs = monoUs();
    const open = await pub.open(cfg.rate, cfg.durationMs, ackOpen, lateOpen);
    const openToUs = monoUs();
    const mainOpen = loopDelay(mainLoop);
    const machineOpen = Math.round(((machineCpu() - m0Open) / ((performance.now() - before.at) / 1000)) * 1000) / 10;
    let lat = await drain(workers, open.acked * perChannel, 5_000);
    const serverLoops = await probe.read();
    const redisLatencyMaxMs = await redisLat.stop();
    out.latencyPhase = {
      offered: cfg.rate, sent: open.sent, acked: open.acked, achieved: Math.round(open.acked / (cfg.durationMs / 1000)),
      deliveries: lat.deliveries, expectedDeliveries: open.acked * perChannel,
      all: summarize(lat.both), sameNode: summarize(lat.same), crossNode: summarize(lat.cross), ack: summarize(ackOpen),
      // Where a delay can come from: the publisher process (how late each publication left it; its event-loop delay),
      // each server's and each subscriber worker's event-loop delay (ms), the machine's CPU (% of one core, all processes) and load.
      publisherLateness: summarize(lateOpen), publisherLoop: mainOpen,
      serverLoops: serverLoops.map((x) => x && { p50: x.p50, p99: x.p99, max: x.max, mean: x.mean, cpuMs: x.cpuMs, gc: x.gc }),
      workerLoops: lat.loops, machineCpuPercent: machineOpen, load1: [loadBefore, load1()],
      // Redis's own longest latency event per kind (ms; {} when nothing inside Redis took 1 ms or more).
      redisLatencyMaxMs,
      server: usage(before, sampleAll(serverPids)), redis: redisBefore ? usage(redisBefore, sampleTree(redis.pid)) : undefined,
      monoUs: [openFromUs, openToUs],
      // Deliveries over 20 ms by publish time, per 100 ms from the phase start (worker clocks): { bucket: count }.
      slowByTenthSecond: lat.slow,
    };

    mark('latency phase done');
    // 2. Throughput (closed loop): publications per second until the last one was delivered everywhere.
    await Promise.all(workers.map((w) => call(w, { cmd: 'phase', name: 'throughput' })));
    const ackClosed = histogram();
    before = sampleAll(serverPids);
    redisBefore = redis.pid ? sampleTree(redis.pid) : undefined;
    const m0 = machineCpu();
    const stopPerf = perfRecord(cfg, kind, serverPids);
    const fromUs = monoUs();
    const closed = await pub.closed(cfg.throughputMs, cfg.window, ackClosed);
    const toUs = monoUs();
    await stopPerf();
    const acked = closed.sent - pub.inflight;
    lat = await drain(workers, closed.sent * perChannel, 15_000);
    const after = sampleAll(serverPids);
    const wall = (Math.max(lat.lastAt, closed.startAt + closed.seconds * 1000) - closed.startAt) / 1000;
    out.throughputPhase = {
      window: cfg.window, publishers: cfg.channels, sent: closed.sent, acked,
      publicationsPerSec: Math.round(lat.deliveries / perChannel / wall), ackedPerSec: Math.round(closed.sent / closed.seconds),
      deliveriesPerSec: Math.round(lat.deliveries / wall), deliveries: lat.deliveries, expectedDeliveries: closed.sent * perChannel, drainSeconds: Math.round((wall - closed.seconds) * 100) / 100,
      all: summarize(lat.both), crossNode: summarize(lat.cross), ack: summarize(ackClosed),
      server: usage(before, after), redis: redisBefore ? usage(redisBefore, sampleTree(redis.pid)) : undefined,
      machineCpuPercent: Math.round(((machineCpu() - m0) / ((performance.now() - before.at) / 1000)) * 1000) / 10,
      // The closed loop's window on CLOCK_MONOTONIC (µs), the clock of a --cpu-prof profile: bench/profile-top.mjs --from --to.
      monoUs: [fromUs, toUs],
    };
    mark('throughput phase done');
    out.serverRssMB = Math.round(after.rss / 1048576);

    // 3. Recovery (ours): every subscriber drops, each channel gets `missed` publications, all reconnect at once
    //    and subscribe from their position while publishing goes on at RECOVERY_LIVE_RATE.
    if (c.ours && cfg.missed > 0) {
      await settle(workers);
      await Promise.all(workers.map((w) => call(w, { cmd: 'drop' })));
      await sleep(100);
      await pub.each(cfg.missed);
      await Promise.all(workers.map((w) => call(w, { cmd: 'phase', name: 'recovery' })));
      let live;
      let stopLive = false;
      if (cfg.recoveryLiveRate > 0) {
        live = (async () => {
          // 250 ms slices, so the background publishing stops soon after the storm.
          while (!stopLive) await pub.open(cfg.recoveryLiveRate, 250);
        })();
      }
      const rec = await Promise.all(workers.map((w) => call(w, { cmd: 'recover' })));
      stopLive = true;
      await live;
      const h = histogram();
      for (const r of rec) h.add(decodeHistogram(r.h));
      const sum = (f) => rec.reduce((a, r) => a + f(r), 0);
      out.recovery = {
        subscribers: cfg.subscribers, missedPerSubscriber: cfg.missed, liveRate: cfg.recoveryLiveRate,
        seconds: Math.round((Math.max(...rec.map((r) => r.endAt)) - Math.min(...rec.map((r) => r.startedAt))) / 10) / 100,
        perSubscriber: summarize(h), recovered: sum((r) => r.recovered), notRecovered: sum((r) => r.notRecovered),
        recoveredPublications: sum((r) => r.recoveredPublications), retries: sum((r) => r.retries),
        errors: rec.reduce((a, r) => ({ ...a, ...r.errors }), {}),
      };
    }

    mark('recovery done');
    // 4. Every subscriber must have every publication of its channel once: gaps and duplicates by offset, plus what never came.
    await settle(workers);
    const checks = await Promise.all(workers.map((w) => call(w, { cmd: 'check', tops: pub.tops })));
    const t = (f) => checks.reduce((a, x) => a + f(x), 0);
    out.integrity = {
      published: pub.published, publishErrors: pub.errors, received: t((x) => x.totals.received),
      gaps: t((x) => x.totals.gaps), duplicates: t((x) => x.totals.dups), missingAtEnd: t((x) => x.missing),
      subsWithGaps: t((x) => x.totals.subsWithGaps), subsWithDuplicates: t((x) => x.totals.subsWithDups), subsMissing: t((x) => x.subsMissing),
      epochChanges: t((x) => x.totals.epochChanges), resubscribeNotices: t((x) => x.totals.resubscribeNotices), foreign: t((x) => x.totals.foreign), beyondTop: t((x) => x.beyond),
    };
    mark('checked');
    out.load1.push(load1());
    return out;
  } finally {
    closeSockets(pubSockets);
    await stopWorkers(workers);
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(probeDir, { recursive: true, force: true });
    // The JIT symbol maps of --perf-basic-prof: read by `perf report` (keep them for that) unless PERF_KEEP_MAPS=0.
    if (cfg.perf && process.env.PERF_KEEP_MAPS === '0') for (const pid of serverPids) rmSync(`/tmp/perf-${pid}.map`, { force: true });
    if (redis.own) await redis.flush();
  }
}

export function summarizeRuns(runs) {
  const med = (f) => median(runs.map(f).filter((x) => x !== undefined && Number.isFinite(x)));
  const sum = (f) => runs.reduce((a, r) => a + (f(r) ?? 0), 0);
  return {
    label: runs[0].label,
    nodes: runs[0].nodes,
    rounds: runs.length,
    throughput: med((r) => r.throughputPhase.publicationsPerSec),
    deliveriesPerSec: med((r) => r.throughputPhase.deliveriesPerSec),
    throughputP99: med((r) => r.throughputPhase.all.p99),
    latency: {
      achieved: med((r) => r.latencyPhase.achieved),
      p50: med((r) => r.latencyPhase.all.p50), p99: med((r) => r.latencyPhase.all.p99), p999: med((r) => r.latencyPhase.all.p999), max: med((r) => r.latencyPhase.all.max),
      crossP50: med((r) => (r.latencyPhase.crossNode.count ? r.latencyPhase.crossNode.p50 : undefined)),
      crossP99: med((r) => (r.latencyPhase.crossNode.count ? r.latencyPhase.crossNode.p99 : undefined)),
      crossP999: med((r) => (r.latencyPhase.crossNode.count ? r.latencyPhase.crossNode.p999 : undefined)),
      ackP99: med((r) => r.latencyPhase.ack.p99),
    },
    // Where the latency tail comes from (latency phase, medians over rounds; ms): see runOne.
    tail: {
      publisherLateP99: med((r) => r.latencyPhase.publisherLateness?.p99),
      publisherLoopP99: med((r) => r.latencyPhase.publisherLoop?.p99),
      serverLoopP99: med((r) => Math.max(...(r.latencyPhase.serverLoops ?? []).map((x) => x?.p99 ?? NaN))),
      serverLoopMax: med((r) => Math.max(...(r.latencyPhase.serverLoops ?? []).map((x) => x?.max ?? NaN))),
      serverGcMaxMs: med((r) => Math.max(...(r.latencyPhase.serverLoops ?? []).map((x) => x?.gc?.maxMs ?? NaN))),
      redisLatencyMaxMs: med((r) => (r.latencyPhase.redisLatencyMaxMs ? Math.max(0, ...Object.values(r.latencyPhase.redisLatencyMaxMs)) : undefined)),
      workerLoopP99: med((r) => Math.max(...(r.latencyPhase.workerLoops ?? []).map((x) => x?.p99 ?? NaN))),
      machineCpu: med((r) => r.latencyPhase.machineCpuPercent),
      load1: med((r) => r.latencyPhase.load1?.[0]),
    },
    cpuAtRate: med((r) => r.latencyPhase.server.cpuPercent),
    cpuThroughput: med((r) => r.throughputPhase.server.cpuPercent),
    // Server CPU time per publication at full load (all nodes): what a publication costs, whoever else took the machine's CPU.
    cpuUsPerPublication: med((r) => Math.round((r.throughputPhase.server.cpuPercent / 100) * 1e6 / r.throughputPhase.publicationsPerSec)),
    // The same at the offered rate (every contender gets the same publications per second, so the batching that a higher
    // closed-loop rate allows does not favour one): the servers' CPU over the latency phase (loop probe) per publication.
    cpuUsPerPublicationAtRate: med((r) => {
      const loops = r.latencyPhase.serverLoops ?? [];
      return loops.length && loops.every((x) => x) ? Math.round((loops.reduce((a, x) => a + x.cpuMs, 0) * 1000) / r.latencyPhase.acked) : undefined;
    }),
    machineCpuThroughput: med((r) => r.throughputPhase.machineCpuPercent),
    redisCpuThroughput: med((r) => r.throughputPhase.redis?.cpuPercent),
    rssMB: med((r) => r.serverRssMB),
    recovery: runs[0].recovery
      ? {
          seconds: med((r) => r.recovery.seconds), p50: med((r) => r.recovery.perSubscriber.p50), p99: med((r) => r.recovery.perSubscriber.p99), max: med((r) => r.recovery.perSubscriber.max),
          recovered: sum((r) => r.recovery.recovered), notRecovered: sum((r) => r.recovery.notRecovered), recoveredPublications: sum((r) => r.recovery.recoveredPublications),
        }
      : undefined,
    gaps: sum((r) => r.integrity.gaps),
    duplicates: sum((r) => r.integrity.duplicates),
    missing: sum((r) => r.integrity.missingAtEnd),
    publishErrors: runs.reduce((a, r) => { for (const [k, v] of Object.entries(r.integrity.publishErrors)) a[k] = (a[k] ?? 0) + v; return a; }, {}),
  };
}

export async function scenarioChannels(env, log) {
  const cfg = settings(env);
  const configPath = channelsConfig(cfg.historySize);
  const redis = await startRedis();
  const runs = Object.fromEntries(cfg.contenders.map((k) => [k, []]));
  const loadStart = loadavg().map((x) => Math.round(x * 100) / 100);
  try {
    for (let r = 0; r < cfg.rounds; r++) {
      // Rotate the order every round so drift of a noisy machine hits every side.
      const order = cfg.contenders.map((_, i) => cfg.contenders[(i + r) % cfg.contenders.length]);
      for (const kind of order) {
        await waitQuiet(cfg.quietPercent, cfg.quietMaxWaitMs, log);
        log(`[channels] round ${r + 1}/${cfg.rounds}: ${CONTENDERS[kind].label} (load ${load1()})`);
        const row = await runOne(kind, cfg, redis, configPath, log);
        const i = row.integrity;
        log(`[channels]   ${int(row.throughputPhase.publicationsPerSec)} pub/s; at ${cfg.rate}/s p50 ${ms(row.latencyPhase.all.p50)} p99 ${ms(row.latencyPhase.all.p99)} ms (cross-node p99 ${ms(row.latencyPhase.crossNode.p99)});${row.recovery ? ` recovery ${row.recovery.seconds} s (${row.recovery.recovered} recovered);` : ''} gaps ${i.gaps} dups ${i.duplicates} missing ${i.missingAtEnd}`);
        runs[kind].push(row);
      }
    }
  } finally {
    await redis.stop();
    rmSync(configPath, { force: true });
  }
  const s = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarizeRuns(v)]));
  const ratio = (a, b) => (s[a] && s[b] ? Math.round((s[a].throughput / s[b].throughput) * 100) / 100 : undefined);
  const cpuRatio = (a, b, field = 'cpuUsPerPublication') => (s[a] && s[b] ? Math.round((s[a][field] / s[b][field]) * 100) / 100 : undefined);
  const result = {
    scenario: 'channels',
    settings: { ...cfg, profile: undefined, quietPercent: undefined, publishVia: 'Socket.IO channel:publish', roomBaselineNodes: 1 },
    loadAverage: { start: loadStart, end: loadavg().map((x) => Math.round(x * 100) / 100) },
    summary: s,
    ratios: { memoryVsRoom: ratio('memory', 'room'), redisVsScript: ratio('redis', 'script'), redisVsRoom: ratio('redis', 'room'), scriptVsRoom: ratio('script', 'room'), previousVsScript: ratio('previous', 'script'), redisVsPrevious: ratio('redis', 'previous') },
    cpuPerPublicationRatios: { memoryVsRoom: cpuRatio('memory', 'room'), redisVsScript: cpuRatio('redis', 'script'), previousVsScript: cpuRatio('previous', 'script'), redisVsPrevious: cpuRatio('redis', 'previous') },
    cpuPerPublicationAtRateRatios: { memoryVsRoom: cpuRatio('memory', 'room', 'cpuUsPerPublicationAtRate'), redisVsScript: cpuRatio('redis', 'script', 'cpuUsPerPublicationAtRate'), previousVsScript: cpuRatio('previous', 'script', 'cpuUsPerPublicationAtRate'), redisVsPrevious: cpuRatio('redis', 'previous', 'cpuUsPerPublicationAtRate') },
    targets: s.redis && s.script
      ? {
          redisThroughputVsScript: { value: ratio('redis', 'script'), target: 0.8, met: ratio('redis', 'script') >= 0.8 },
          crossNodeP99AtRate: { value: s.redis.latency.crossP99, target: 10, met: s.redis.latency.crossP99 <= 10 },
          gapsAndDuplicates: { value: Object.values(s).reduce((a, x) => a + x.gaps + x.duplicates + x.missing, 0), target: 0, met: Object.values(s).every((x) => x.gaps + x.duplicates + x.missing === 0) },
        }
      : undefined,
    runs,
  };
  const rows = Object.entries(s).map(([k, x]) => [
    x.label, int(x.throughput), int(x.deliveriesPerSec),
    k === 'memory' ? ratio('memory', 'room') ?? '-' : k === 'redis' || k === 'previous' ? ratio(k, 'script') ?? '-' : '-',
    int(x.latency.achieved), ms(x.latency.p50), ms(x.latency.p99), ms(x.latency.p999),
    x.nodes > 1 ? `${ms(x.latency.crossP50)} / ${ms(x.latency.crossP99)}` : '-',
    `${x.cpuAtRate} % / ${x.cpuThroughput} %`, `${int(x.cpuUsPerPublication)} / ${int(x.cpuUsPerPublicationAtRate)}`, x.redisCpuThroughput !== undefined && k !== 'memory' && k !== 'room' ? `${x.redisCpuThroughput} %` : '-', `${x.rssMB} MB`,
    `${x.gaps} / ${x.duplicates} / ${x.missing}`,
  ]);
  const tailRows = Object.values(s).map((x) => [
    x.label, ms(x.latency.p99), ms(x.latency.ackP99), ms(x.tail.publisherLateP99), ms(x.tail.publisherLoopP99), `${ms(x.tail.serverLoopP99)} / ${ms(x.tail.serverLoopMax)}`, ms(x.tail.serverGcMaxMs), ms(x.tail.redisLatencyMaxMs), ms(x.tail.workerLoopP99), `${x.tail.machineCpu} %`, x.tail.load1,
  ]);
  const recRows = Object.values(s).filter((x) => x.recovery).map((x) => [x.label, `${cfg.subscribers} × ${cfg.missed}`, `${x.recovery.seconds} s`, ms(x.recovery.p50), ms(x.recovery.p99), ms(x.recovery.max), `${x.recovery.recovered} / ${x.recovery.notRecovered}`, int(x.recovery.recoveredPublications)]);
  const md = [
    `### channels: ${cfg.subscribers} subscribers over ${cfg.channels} channels (median of ${cfg.rounds} rotating rounds; latency at ${cfg.rate} publications/s for ${cfg.durationMs / 1000} s; throughput closed loop ${cfg.throughputMs / 1000} s, ${cfg.channels} publishers × ${cfg.window} in flight)`,
    '',
    table(['server', 'publications/s', 'deliveries/s', 'throughput ratio', `achieved/s at ${cfg.rate}`, 'p50', 'p99', 'p99.9', 'cross-node p50 / p99', 'server CPU at rate / max', `server CPU µs / publication (max / at ${cfg.rate}/s)`, 'Redis CPU max', 'server RSS', 'gaps / dups / missing'], rows),
    '',
    `Throughput ratio: ours memory / baseline (a), ours Redis / baseline (b). Latencies in ms, publish (intended send time) → delivery. Load average ${loadStart.join(', ')} at the start, ${result.loadAverage.end.join(', ')} at the end.`,
    '',
    `#### where the latency tail comes from (at ${cfg.rate}/s; ms, medians over rounds; event-loop delays from monitorEventLoopDelay, the worst server node and subscriber worker)`,
    '',
    table(['server', 'delivery p99', 'publish ack p99', 'publisher late p99', 'publisher loop delay p99', 'server loop delay p99 / max', 'server longest GC pause', 'Redis longest internal event', 'subscriber loop delay p99', 'machine CPU (all processes)', 'load (1 min)'], tailRows),
    ...(recRows.length ? ['', `#### recovery: ${cfg.subscribers} subscribers reconnect at once after missing ${cfg.missed} publications each (publishing goes on at ${cfg.recoveryLiveRate}/s)`, '', table(['server', 'subscribers × missed', 'storm time', 'per subscriber p50', 'p99', 'max', 'recovered / not', 'publications recovered (all rounds)'], recRows)] : []),
    ...(result.targets ? ['', table(['target', 'value', 'met'], [
      ['Redis publish throughput ≥ 0.8 × baseline (b)', `${result.targets.redisThroughputVsScript.value} ×`, result.targets.redisThroughputVsScript.met ? 'yes' : 'no'],
      [`cross-node delivery p99 ≤ 10 ms at ${cfg.rate} publications/s`, `${ms(result.targets.crossNodeP99AtRate.value)} ms`, result.targets.crossNodeP99AtRate.met ? 'yes' : 'no'],
      ['zero gaps and duplicates in every run', `${result.targets.gapsAndDuplicates.value}`, result.targets.gapsAndDuplicates.met ? 'yes' : 'no'],
    ])] : []),
  ].join('\n');
  save(env.RESULTS_NAME ?? 'channels', result, md);
  return result;
}
