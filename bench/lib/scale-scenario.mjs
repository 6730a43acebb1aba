// SCENARIO=scale: many concurrent connections, each joined to a room and
// heartbeating every HEARTBEAT_INTERVAL_MS, against one or several servers in
// the same run (CONTENDERS), for memory per connection and heartbeat latency.
//
//   CONTENDERS   comma list of bare | lua | memory | redis (default: SERVER=bare|lua, else ENGINE, default redis);
//                bare = baseline (a) Socket.IO alone, lua = baseline (b), memory / redis = ours on that engine
//   CONNECTIONS  connections (default 20000); USERS_PER_ROOM (10) per room
//   WORKERS      server processes, the same for every contender (default: one per 18,000 connections; ulimit -n is 20,000)
//   CLIENT       sio (socket.io-client) | raw (bench/lib/raw-client.mjs) | mixed (client processes alternate; latency per client)
//   SOCKETS_PER_CLIENT_PROCESS  (default 10,000 with sio, 18,000 with raw)
//   LOCAL_ADDRESSES  source addresses (default: 127.0.0.1 … 127.0.0.k, at most 900 connections each, under
//                our default MAX_CONNECTIONS_PER_ADDRESS of 1,000, which stays on)
//   HEARTBEAT_INTERVAL_MS (15000), DURATION_S measured (30), ROUNDS (1, order rotated)
//   CONNECT_CONCURRENCY  connects and joins in flight per client process (default 100)
//   HEAP_SNAPSHOT=1  heap snapshots of every server process, idle, loaded and steady (RESULTS_DIR/heap/; bench/heap-by-constructor.mjs)
//   SERVER_ENV (JSON)  extra settings of our server (e.g. {"REDIS_HEARTBEAT_WINDOW_MS":"2"}); SERVER_NODE_ARGS  extra Node flags of every server
//
// Memory per connection: every server process runs bench/lib/memory-probe.mjs;
// idle (after start), loaded (2 s after every connection joined) and steady (at
// the end of the measured heartbeats, every connection still open) it runs two
// full GCs and reports its RSS and heap. Bytes per connection = (steady − idle) / N,
// summed over the server's processes, both as RSS and as V8 heap used + external
// (the JSON has the loaded figures too: RSS is higher right after the connect
// burst, before V8 shrinks and compacts what it left behind).
// The CPU split is from /proc over the measured heartbeat phase: the server's
// process tree, the client processes, redis-server and the rest of the machine.
import { execSync, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from './redis.mjs';
import { RESULTS_DIR, save, table } from './report.mjs';
import { startServer } from './servers.mjs';
import { decodeHistogram, histogram, machineCpu, median, processTree, sampleTree, summarize } from './stats.mjs';

const MEMORY_PROBE = fileURLToPath(new URL('./memory-probe.mjs', import.meta.url));
const WORKER = fileURLToPath(new URL('./client-worker.mjs', import.meta.url));
const NAMES = { bare: 'baseline (a) bare Socket.IO', lua: 'baseline (b) Socket.IO + Lua', memory: 'ours, memory engine', redis: 'ours, Redis engine' };

/** Forces two full GCs in every process of the tree and sums their memory (bytes). */
async function readMemory(pid, dir) {
  const pids = processTree(pid);
  const out = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, processes: 0, spaces: {}, mappings: {} };
  await Promise.all(pids.map(async (p) => {
    const file = join(dir, `${p}-mem.json`);
    const before = existsSync(file) ? statSync(file).mtimeMs : 0;
    try {
      process.kill(p, 'SIGURG');
    } catch {
      return;
    }
    // Snapshots of big heaps take a while; bounded all the same.
    for (let i = 0; i < 1_200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (existsSync(file) && statSync(file).mtimeMs !== before) {
        try {
          const m = JSON.parse(readFileSync(file, 'utf8'));
          out.rss += m.rss;
          if (m.rssSettled !== undefined) {
            out.rssSettled = (out.rssSettled ?? 0) + m.rssSettled;
            out.heapTotalSettled = (out.heapTotalSettled ?? 0) + m.heapTotalSettled;
          }
          out.heapUsed += m.heapUsed;
          out.external += m.external;
          out.heapTotal += m.heapTotal;
          for (const [k, v] of Object.entries(m.mappings ?? {})) out.mappings[k] = (out.mappings[k] ?? 0) + v;
          for (const [name, sp] of Object.entries(m.spaces ?? {})) {
            const o = (out.spaces[name] ??= { size: 0, used: 0, physical: 0 });
            o.size += sp.size;
            o.used += sp.used;
            o.physical += sp.physical;
          }
          out.processes++;
          return;
        } catch {
          /* being written */
        }
      }
    }
  }));
  return out;
}

/** The soft limit of open files of this process (inherited by the servers and clients), or undefined. */
function openFileLimit() {
  try {
    return Number(execSync('ulimit -n', { shell: '/bin/sh', encoding: 'utf8' }).trim()) || undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds of exactly these processes (sampleTree would add each one's children again). */
function cpuOf(pids) {
  return pids.reduce((a, p) => a + sampleTree(p, { children: false }).cpu, 0);
}

/**
 * Source addresses for n connections: our server refuses more than
 * MAX_CONNECTIONS_PER_ADDRESS (default 1,000) from one address, and one source
 * address has ~28,000 ports towards one server port, so the connections come
 * from 127.0.0.1 … 127.0.0.k, at most 900 each (for every contender alike).
 */
function defaultAddresses(n) {
  const k = Math.ceil(n / 900);
  return k <= 1 ? [] : Array.from({ length: k }, (_, i) => `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}`);
}

async function scaleRun(kind, redis, o, log) {
  const probeDir = mkdtempSync(join(tmpdir(), 'rm-mem-'));
  const snapDir = o.snapshots ? join(RESULTS_DIR, 'heap', `${kind}-${o.N}-${Date.now()}`) : undefined;
  if (snapDir) mkdirSync(snapDir, { recursive: true });
  // MALLOC_ARENA_MAX (glibc): passed to every server alike when set.
  const probeEnv = { ...(process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {}), MEMORY_PROBE_DIR: probeDir, ...(process.env.MEMORY_SETTLE_MS ? { MEMORY_SETTLE_MS: process.env.MEMORY_SETTLE_MS } : {}), ...(snapDir ? { HEAP_SNAPSHOT_DIR: snapDir } : {}), WORKERS: String(o.workers) };
  // CPU_PROF=<dir>: every server process writes a `--cpu-prof` profile there when it exits (bench/profile-top.mjs reads them).
  // SERVER_ENV (JSON): extra settings of our server; SERVER_NODE_ARGS: extra Node flags for every server process (space-separated), such as a profiling preload.
  const extra = (process.env.SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const options = { execArgv: ['--import', MEMORY_PROBE, ...(process.env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`] : []), ...extra] };
  const prefix = { REDIS_URL: redis?.url ?? '', REDIS_KEY_PREFIX: `s${randomUUID().slice(0, 6)}:` };
  const server =
    kind === 'memory' || kind === 'redis'
      ? await startServer('ours', { ...(kind === 'redis' ? prefix : {}), ...probeEnv, PRESENCE_TTL_MS: String(o.interval * 3), PRESENCE_DISCONNECT_GRACE_MS: String(Math.min(5_000, o.interval * 3)), ...JSON.parse(process.env.SERVER_ENV ?? '{}') }, options)
      : await startServer(kind, { ...prefix, ...probeEnv }, options);
  const children = [];
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    const idle = await readMemory(server.pid, probeDir);
    const redisBefore = redis?.own && kind !== 'bare' && kind !== 'memory' ? await redis.usedMemory() : undefined;
    const t0 = performance.now();
    const types = [];
    for (let i = 0; i < o.processes; i++) {
      const child = fork(WORKER, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise((r) => child.once('message', r));
      children.push(child);
      types.push(o.client === 'mixed' ? (i % 2 ? 'raw' : 'sio') : o.client);
    }
    const call = (child, msg) => new Promise((resolve, reject) => {
      child.once('message', (m) => (m.ok ? resolve(m) : reject(new Error(m.error))));
      child.send(msg);
    });
    const roomPrefix = `s${randomUUID().slice(0, 6)}-`;
    const counts = children.map((_, i) => Math.min(o.perProcess, o.N - i * o.perProcess));
    const connected = await Promise.all(children.map((c, i) => call(c, { cmd: 'connect', url: server.url, from: i, count: counts[i], usersPerRoom: o.usersPerRoom, roomPrefix, localAddresses: o.localAddresses, keepAliveMs: o.interval, client: types[i], concurrency: o.concurrency })));
    const connectSeconds = (performance.now() - t0) / 1000;
    log(`[scale ${kind}] ${o.N} connections (${o.client} client) joined in ${connectSeconds.toFixed(1)} s; heartbeats every ${o.interval} ms for ${o.durationMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 2_000));
    const loaded = await readMemory(server.pid, probeDir);
    const redisAfter = redisBefore !== undefined ? await redis.usedMemory() : undefined;
    const clientRss = children.reduce((a, c) => a + sampleTree(c.pid).rss, 0);
    // The CPU split over the measured phase.
    const serverPids = processTree(server.pid);
    const cpu0 = { at: performance.now(), server: cpuOf(serverPids), clients: children.map((c) => sampleTree(c.pid).cpu), redis: redis?.pid ? sampleTree(redis.pid).cpu : 0, self: process.cpuUsage(), machine: machineCpu() };
    const load0 = loadavg()[0];
    const beats = await Promise.all(children.map((c) => call(c, { cmd: 'beat', intervalMs: o.interval, durationMs: o.durationMs })));
    const seconds = (performance.now() - cpu0.at) / 1000;
    const pct = (x) => Math.round((x / seconds) * 1000) / 10;
    const clientsCpu = children.map((c, i) => sampleTree(c.pid).cpu - cpu0.clients[i]);
    const self = process.cpuUsage(cpu0.self);
    const split = {
      seconds: Math.round(seconds * 10) / 10,
      serverPercent: pct(cpuOf(serverPids) - cpu0.server),
      clientsPercent: pct(clientsCpu.reduce((a, b) => a + b, 0) + (self.user + self.system) / 1e6),
      redisPercent: redis?.pid ? pct(sampleTree(redis.pid).cpu - cpu0.redis) : 0,
      machinePercent: pct(machineCpu() - cpu0.machine),
    };
    split.otherPercent = Math.round((split.machinePercent - split.serverPercent - split.clientsPercent - split.redisPercent) * 10) / 10;
    // Again at the end of the measured phase (every connection still open; after the
    // CPU figures, which must not include the forced GCs): after DURATION_S of steady
    // heartbeats V8 has had time to shrink and compact what the connect phase left
    // behind, so this one is the steady-state figure.
    const steady = await readMemory(server.pid, probeDir);
    if (steady.rssSettled !== undefined) console.error(`[scale ${kind}] steady: RSS ${Math.round(steady.rss / 1e6)} MB right after the GCs, ${Math.round(steady.rssSettled / 1e6)} MB ${process.env.MEMORY_SETTLE_MS} ms later (heap ${Math.round(steady.heapTotal / 1e6)} → ${Math.round(steady.heapTotalSettled / 1e6)} MB)`);
    const h = histogram();
    const byType = {};
    const errors = {};
    let acked = 0;
    beats.forEach((b, i) => {
      const hb = decodeHistogram(b.histogram);
      h.add(hb);
      const t = (byType[types[i]] ??= { h: histogram(), acked: 0, cpu: 0, connections: 0 });
      t.h.add(hb);
      t.acked += b.acked;
      t.cpu += clientsCpu[i];
      t.connections += counts[i];
      acked += b.acked;
      for (const [k, v] of Object.entries(b.errors)) errors[k] = (errors[k] ?? 0) + v;
    });
    const perConn = (a, b) => Math.round((b - a) / o.N);
    return {
      kind, name: NAMES[kind], connections: o.N, serverProcesses: loaded.processes, clientProcesses: o.processes, client: o.client,
      connectSeconds: Math.round(connectSeconds * 10) / 10, connectRetries: connected.reduce((a, c) => a + (c.retries ?? 0), 0), joinRetries: connected.reduce((a, c) => a + (c.joinRetries ?? 0), 0),
      heartbeats: acked, errors, latency: summarize(h),
      byClient: Object.fromEntries(Object.entries(byType).map(([t, x]) => [t, { connections: x.connections, heartbeats: x.acked, latency: summarize(x.h), cpuMicrosPerHeartbeat: x.acked ? Math.round((x.cpu * 1e6) / x.acked) : undefined }])),
      memory: {
        idle, loaded, steady,
        rssBytesPerConnection: perConn(idle.rss, steady.rss), heapBytesPerConnection: perConn(idle.heapUsed + idle.external, steady.heapUsed + steady.external),
        loadedRssBytesPerConnection: perConn(idle.rss, loaded.rss), loadedHeapBytesPerConnection: perConn(idle.heapUsed + idle.external, loaded.heapUsed + loaded.external),
      },
      serverRssLoadedMB: Math.round(steady.rss / 1048576),
      redisBytesPerConnection: redisAfter !== undefined ? perConn(redisBefore, redisAfter) : undefined,
      clientRssBytesPerConnection: Math.round(clientRss / o.N),
      cpu: split, loadAverage: Math.round(load0 * 100) / 100,
      snapshots: snapDir,
    };
  } finally {
    await Promise.all(children.map((c) => new Promise((r) => { c.once('exit', r); c.send({ cmd: 'close' }); setTimeout(() => c.kill('SIGKILL'), 5_000); })));
    await server.stop();
    rmSync(probeDir, { recursive: true, force: true });
    if (redis?.own && kind !== 'bare' && kind !== 'memory') await redis.flush();
  }
}

export async function scenarioScale(env, log) {
  const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
  const N = num('CONNECTIONS', 20_000);
  const contenders = (env.CONTENDERS ?? (env.SERVER && env.SERVER !== 'ours' ? env.SERVER : (env.ENGINE ?? 'redis'))).split(',');
  for (const c of contenders) if (!NAMES[c]) throw new Error(`unknown contender '${c}'; one of ${Object.keys(NAMES).join(', ')}`);
  const client = env.CLIENT ?? 'sio';
  if (!['sio', 'raw', 'mixed'].includes(client)) throw new Error(`CLIENT must be sio, raw or mixed (got '${client}')`);
  const workers = num('WORKERS', Math.max(1, Math.ceil(N / 18_000)));
  if (workers > 1 && contenders.includes('memory')) throw new Error('the memory engine runs in one process: use WORKERS=1 (at most ~18,000 connections) or CONTENDERS without memory');
  const perProcess = num('SOCKETS_PER_CLIENT_PROCESS', client === 'raw' ? 18_000 : 10_000);
  const o = {
    N, workers, client, perProcess, processes: Math.ceil(N / perProcess),
    localAddresses: env.LOCAL_ADDRESSES ? env.LOCAL_ADDRESSES.split(',').filter(Boolean) : defaultAddresses(N),
    interval: num('HEARTBEAT_INTERVAL_MS', 15_000), durationMs: num('DURATION_S', 30) * 1000, usersPerRoom: num('USERS_PER_ROOM', 10),
    snapshots: env.HEAP_SNAPSHOT === '1',
    // Connects and joins in flight per client process (CONNECT_CONCURRENCY also bounds the connects).
    concurrency: num('CONNECT_CONCURRENCY', 100),
  };
  const rounds = num('ROUNDS', 1);
  // One process holds at most `ulimit -n` sockets (20,000 on this machine; the hard limit, which an
  // unprivileged script cannot raise): check before starting rather than fail half-way.
  const fdLimit = openFileLimit();
  if (fdLimit && (perProcess > fdLimit - 500 || Math.ceil(N / workers) > fdLimit - 500)) {
    throw new Error(`ulimit -n is ${fdLimit}: use SOCKETS_PER_CLIENT_PROCESS <= ${fdLimit - 500} and WORKERS >= ${Math.ceil(N / (fdLimit - 500))}`);
  }
  const redis = contenders.some((c) => c === 'redis' || c === 'lua') ? await startRedis() : undefined;
  const runs = Object.fromEntries(contenders.map((c) => [c, []]));
  const loadStart = loadavg().map((x) => Math.round(x * 100) / 100);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const kind of contenders.map((_, i) => contenders[(i + r) % contenders.length])) {
        const row = await scaleRun(kind, redis, o, log);
        row.round = r + 1;
        runs[kind].push(row);
        log(`  ${kind} r${r + 1}: RSS ${row.memory.rssBytesPerConnection} B/conn, heap ${row.memory.heapBytesPerConnection} B/conn, p50 ${row.latency.p50} p99 ${row.latency.p99} ms, errors ${JSON.stringify(row.errors)}, CPU server ${row.cpu.serverPercent} % clients ${row.cpu.clientsPercent} % redis ${row.cpu.redisPercent} %`);
      }
    }
  } finally {
    await redis?.stop();
  }
  // Medians, rounded (a median of two rounds is their mean): to 0.01 below 10, 0.1 below 100, else to 1.
  const med = (kind, f) => {
    const xs = runs[kind].map(f).filter((x) => x !== undefined && Number.isFinite(x));
    if (!xs.length) return undefined;
    const m = median(xs);
    const d = Math.abs(m) < 10 ? 100 : Math.abs(m) < 100 ? 10 : 1;
    return Math.round(m * d) / d;
  };
  const bare = contenders.includes('bare') ? { rss: med('bare', (x) => x.memory.rssBytesPerConnection), heap: med('bare', (x) => x.memory.heapBytesPerConnection) } : undefined;
  const ratio = (a, b) => (a !== undefined && b ? Math.round((a / b) * 100) / 100 : '-');
  const ms = (x) => (x === undefined ? '-' : x.toFixed(x < 10 ? 2 : 1));
  const f = (x) => (x === undefined ? '-' : x.toLocaleString('en-US'));
  const summary = Object.fromEntries(contenders.map((k) => [k, {
    rssBytesPerConnection: med(k, (x) => x.memory.rssBytesPerConnection), heapBytesPerConnection: med(k, (x) => x.memory.heapBytesPerConnection),
    p50: med(k, (x) => x.latency.p50), p99: med(k, (x) => x.latency.p99), p999: med(k, (x) => x.latency.p999), max: med(k, (x) => x.latency.max),
    serverRssLoadedMB: med(k, (x) => x.serverRssLoadedMB), connectSeconds: med(k, (x) => x.connectSeconds), heartbeats: runs[k].reduce((a, x) => a + x.heartbeats, 0),
    errors: runs[k].map((x) => x.errors), redisBytesPerConnection: med(k, (x) => x.redisBytesPerConnection),
    cpu: { server: med(k, (x) => x.cpu.serverPercent), clients: med(k, (x) => x.cpu.clientsPercent), redis: med(k, (x) => x.cpu.redisPercent), other: med(k, (x) => x.cpu.otherPercent), machine: med(k, (x) => x.cpu.machinePercent) },
    clientRssBytesPerConnection: med(k, (x) => x.clientRssBytesPerConnection),
  }]));
  const errs = (list) => { const t = {}; for (const e of list) for (const [k, v] of Object.entries(e)) t[k] = (t[k] ?? 0) + v; return Object.keys(t).length ? JSON.stringify(t) : '0'; };
  const title = `### scale: ${N.toLocaleString('en-US')} connections, each in a room of ${o.usersPerRoom} and heartbeating every ${o.interval / 1000} s (${workers} server process(es) each, ${o.processes} ${client} client process(es), ${o.durationMs / 1000} s measured, ${rounds} round(s), medians; load average ${loadStart.join(' / ')} at the start)`;
  const lines = [title, '',
    table(['server', 'joined in (s)', 'heartbeats acked', 'errors', 'p50 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'max (ms)', 'server RSS loaded (MB)', 'server RSS bytes / connection', 'ratio to bare (RSS)', 'server heap bytes / connection', 'ratio to bare (heap)', 'Redis bytes / connection'],
      contenders.map((k) => { const s = summary[k]; return [NAMES[k], s.connectSeconds, f(s.heartbeats), errs(s.errors), ms(s.p50), ms(s.p99), ms(s.p999), ms(s.max), f(s.serverRssLoadedMB), f(s.rssBytesPerConnection), ratio(s.rssBytesPerConnection, bare?.rss), f(s.heapBytesPerConnection), ratio(s.heapBytesPerConnection, bare?.heap), f(s.redisBytesPerConnection)]; })),
    '', `Where the two cores went during the measured heartbeats (% of one core, from /proc; 200 % = both cores; "other" = the rest of the machine):`, '',
    table(['server', 'server processes', 'client processes (load generator)', 'redis-server', 'other', 'machine busy', 'client RSS bytes / connection'],
      contenders.map((k) => { const c = summary[k].cpu; const r = (x) => (x === undefined ? '-' : Math.round(x * 10) / 10); return [NAMES[k], r(c.server), r(c.clients), r(c.redis), r(c.other), r(c.machine), f(summary[k].clientRssBytesPerConnection)]; })),
  ];
  if (client === 'mixed') {
    lines.push('', 'By client (the same server and moment; half of the client processes each):', '',
      table(['server', 'client', 'connections', 'heartbeats', 'p50 (ms)', 'p90 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'max (ms)', 'client CPU per heartbeat (µs)'],
        contenders.flatMap((k) => runs[k].flatMap((x) => Object.entries(x.byClient).map(([t, b]) => [`${NAMES[k]} r${x.round}`, t === 'raw' ? 'raw WebSocket' : 'socket.io-client', f(b.connections), f(b.heartbeats), ms(b.latency.p50), ms(b.latency.p90), ms(b.latency.p99), ms(b.latency.p999), ms(b.latency.max), b.cpuMicrosPerHeartbeat])))));
  }
  save(env.RESULT_NAME ?? `scale-${contenders.join('-')}-${N}${client === 'sio' ? '' : `-${client}`}`, { scenario: 'scale', connections: N, workers, client, rounds, heartbeatIntervalMs: o.interval, loadAverage: { start: loadStart, end: loadavg().map((x) => Math.round(x * 100) / 100) }, summary, runs }, lines.join('\n'));
}
