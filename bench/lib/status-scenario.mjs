// SCENARIO=status: the user status REST API (SPEC §7) under load, against
// the bare routes of the same framework in the same run. See the "User
// status" section of docs/benchmarks.md for the variables and the results.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { probeOptions, startDiagnostics } from './diagnostics.mjs';
import { httpEach, httpLoad } from './http-load.mjs';
import { startRedis } from './redis.mjs';
import { RESULTS_DIR, save, table } from './report.mjs';
import { startServer } from './servers.mjs';
import { machineCpu, median, sampleTree, usage } from './stats.mjs';

const ms = (x) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '-');
const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(x < 0.999 ? 1 : 2)} %` : '-');
const load1 = () => loadavg().map((x) => Math.round(x * 100) / 100);

/**
 * The seeded population, realistic enough that cached records vary: even
 * users are connected through a REST keep-alive (`PUT online` with
 * ttlSeconds), a third of them then busy or away with a message; odd users
 * are not connected, half of them with a message (shown while offline), half
 * invisible (`offline`). Two passes, because a manual status and a
 * keep-alive are two writes.
 */
function seedWrites(prefix, users) {
  const put = (i, body) => ({ method: 'PUT', path: `/api/v2/presence/${prefix}${i}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const first = (i) => {
    if (i % 2 === 0) return put(i, i % 10 === 0 ? { status: 'online', ttlSeconds: 3600, message: 'on the train, slow replies' } : { status: 'online', ttlSeconds: 3600 });
    return put(i, i % 4 === 1 ? { status: 'online', message: 'on holiday until Monday' } : { status: 'offline' });
  };
  const manual = [];
  for (let i = 0; i < users; i += 6) manual.push(i, i + 2);
  const second = (k) => {
    const i = manual[k];
    return put(i, i % 6 === 0 ? { status: 'busy', message: 'in a meeting', ttlSeconds: 3600 } : { status: 'away', message: 'back at 3 pm' });
  };
  return { first, second, manualCount: manual.filter((i) => i < users).length };
}

/**
 * Waits until the rest of the machine is quiet: the whole machine's busy CPU
 * over one second (between runs only other users' processes work) at most
 * `maxPercent` of one core, for at most `maxWaitMs`. Returns the seconds waited
 * and whether it became quiet. On a shared machine, other test runs come in
 * bursts; measuring between them gives numbers about the server, not them.
 */
async function waitQuiet(maxPercent, maxWaitMs) {
  const t0 = performance.now();
  for (;;) {
    const m0 = machineCpu();
    await new Promise((r) => setTimeout(r, 1_000));
    const busy = (machineCpu() - m0) * 100;
    const waited = Math.round((performance.now() - t0) / 100) / 10;
    if (busy <= maxPercent) return { waited, quiet: true, busy };
    if (performance.now() - t0 > maxWaitMs) return { waited, quiet: false, busy };
  }
}

/** The status cache counters of our server's /metrics. */
async function cacheCounters(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const num = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { hits: num('rm_status_cache_hits_total'), misses: num('rm_status_cache_misses_total') };
}

/** Bytes per cached record, measured in a separate process (bench/status-cache-memory.mjs, --expose-gc). */
function cacheMemory(records) {
  const script = fileURLToPath(new URL('../status-cache-memory.mjs', import.meta.url));
  const out = spawnSync(process.execPath, ['--expose-gc', script], { env: { ...process.env, RECORDS: String(records), JSON_ONLY: '1' }, encoding: 'utf8', timeout: 120_000 });
  if (out.status !== 0) throw new Error(`status-cache-memory failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

export async function scenarioStatus(env, log) {
  const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
  const engine = env.ENGINE ?? 'memory';
  const users = num('USERS', 100_000);
  const rounds = num('ROUNDS', 3);
  const durationMs = num('DURATION_S', 5) * 1000;
  const warmupMs = num('WARMUP_S', 3) * 1000;
  const batchSize = num('BATCH_SIZE', 100);
  const concurrency = num('CONCURRENCY', 64);
  const threads = num('LOAD_THREADS', 2);
  const lateMs = num('LATE_MS', 2);
  const workloads = (env.WORKLOADS ?? 'get,batch').split(',');
  const list = (v) => v.split(',').filter(Boolean).map(Number);
  const rates = { get: list(env.RATES ?? '1000,5000,10000,20000'), batch: list(env.BATCH_RATES ?? '500,1000,2000'), put: list(env.PUT_RATES ?? '1000,5000,10000') };
  const quietCpu = num('QUIET_CPU', 0);
  const quietWaitMs = num('QUIET_WAIT_S', 120) * 1000;
  const profileDir = env.PROFILE ? `${RESULTS_DIR}profiles/` : undefined;
  // DIAG: where the tail comes from, per run: each server's event-loop delay, utilisation and GC pauses (bench/lib/probe.mjs), Redis CPU and commands per request.
  const diag = env.DIAG === '1' ? probeOptions() : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const loadAvgStart = load1();

  const redis = engine === 'redis' ? await startRedis() : undefined;
  const servers = {};
  const loads = {};
  try {
    // PROFILE: both servers write a CPU profile (CPU.<date>.<pid>...) when they stop; results list the pids and each run's monoUs.
    const execArgv = [...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...(diag?.execArgv ?? [])];
    servers.ours = await startServer('ours', { ...(redis ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `st${randomUUID().slice(0, 6)}:` } : {}), ...diag?.env }, { execArgv });
    servers.base = await startServer('http-bare', { ...diag?.env }, { execArgv });
    const rssIdle = sampleTree(servers.ours.pid).rss;
    const redisIdle = redis?.own ? await redis.usedMemory() : 0;

    // Seed: every user written once, then the manual statuses.
    const prefix = `user-${randomUUID().slice(0, 4)}-`;
    const seed = seedWrites(prefix, users);
    const seedOpts = { concurrency: num('SEED_CONCURRENCY', 64), timeoutMs: num('SEED_TIMEOUT_S', 300) * 1000 };
    const t0 = performance.now();
    const seedRate = await httpEach(servers.ours.url, users, seed.first, seedOpts);
    await httpEach(servers.ours.url, seed.manualCount, seed.second, seedOpts);
    const seedSeconds = Math.round((performance.now() - t0) / 100) / 10;
    const redisBytesPerUser = redis?.own ? Math.round(((await redis.usedMemory()) - redisIdle) / users) : undefined;
    const rssSeeded = sampleTree(servers.ours.pid).rss;
    log(`[status ${engine}] seeded ${users} users (${users + seed.manualCount} PUTs) in ${seedSeconds} s (${seedRate} PUT/s); server RSS ${Math.round(rssIdle / 1048576)} → ${Math.round(rssSeeded / 1048576)} MB`);

    const spec = { get: { kind: 'get', prefix, users }, batch: { kind: 'batch', prefix, users, batchSize }, put: { kind: 'put', prefix, users } };
    for (const who of ['ours', 'base']) loads[who] = await httpLoad(servers[who].url, { threads, connections: Math.max(num('OPEN_CONNECTIONS', 64), Math.ceil(concurrency / threads)) });
    // Unmeasured warm-up of both servers (JIT) and of our cache: every workload, closed loop.
    for (const w of workloads) for (const who of ['ours', 'base']) if (warmupMs > 0) await loads[who].run({ mode: 'closed', concurrency, durationMs: warmupMs, spec: spec[w], record: false });

    const points = [];
    for (const w of workloads) {
      for (const rate of [0, ...rates[w]]) {
        const point = { workload: w, mode: rate ? 'open' : 'closed', offered: rate || undefined, concurrency: rate ? undefined : concurrency, runs: { ours: [], base: [] } };
        for (let r = 0; r < rounds; r++) {
          // Alternate who goes first, so drift of a noisy machine hits both.
          for (const who of r % 2 === 0 ? ['base', 'ours'] : ['ours', 'base']) {
            const server = servers[who];
            const quiet = quietCpu > 0 ? await waitQuiet(quietCpu, quietWaitMs) : undefined;
            const c0 = who === 'ours' ? await cacheCounters(server.url) : undefined;
            const s0 = sampleTree(server.pid);
            const idle0 = sampleTree(servers[who === 'ours' ? 'base' : 'ours'].pid);
            const r0 = redis?.pid ? sampleTree(redis.pid) : undefined;
            const [m0cpu, g0] = [machineCpu(), process.cpuUsage()];
            // CLOCK_MONOTONIC in µs, the clock of a --cpu-prof profile: bench/profile-top.mjs --from/--to cuts one run out of it.
            const m0 = Number(process.hrtime.bigint() / 1000n);
            const d = diag ? await startDiagnostics(server, redis?.url) : undefined;
            const res = await loads[who].run({ mode: point.mode, concurrency, rate, durationMs, spec: spec[w], lateMs });
            const diagnostics = await d?.stop(res.ok);
            const monoUs = [m0, Number(process.hrtime.bigint() / 1000n)];
            const s1 = sampleTree(server.pid);
            const [m1cpu, g1] = [machineCpu(), process.cpuUsage(g0)];
            // What everything else on the machine (other users' tests, not this run's servers, Redis or generator) took, in % of one core.
            const redisCpu = redis?.pid ? usage(r0, sampleTree(redis.pid)).cpuPercent : 0;
            const mine = (s1.cpu - s0.cpu) + (sampleTree(servers[who === 'ours' ? 'base' : 'ours'].pid).cpu - idle0.cpu) + (g1.user + g1.system) / 1e6;
            const othersCpuPercent = Math.round((((m1cpu - m0cpu - mine) / ((s1.at - s0.at) / 1000)) * 100 - redisCpu) * 10) / 10;
            const c1 = who === 'ours' ? await cacheCounters(server.url) : undefined;
            const hits = c1 ? c1.hits - c0.hits : 0;
            const lookups = c1 ? hits + c1.misses - c0.misses : 0;
            const row = { ...res, server: { ...usage(s0, s1), cpuUsPerRequest: Math.round(((s1.cpu - s0.cpu) * 1e6) / Math.max(1, res.ok)) }, cacheHitRate: c1 ? hits / lookups : undefined, loadAvg: load1(), othersCpuPercent, redisCpuPercent: redisCpu, quiet, monoUs, diagnostics };
            point.runs[who].push(row);
            const sd = diagnostics?.server;
            const diagText = sd ? `, loop delay p99 ${ms(sd.eventLoopDelay.p99)} max ${ms(sd.eventLoopDelay.max)} ms, GC ${sd.gc.msPerSecond} ms/s max ${sd.gc.maxMs} ms${diagnostics.redis ? `, Redis ${diagnostics.redis.cpuMicrosPerAck} µs ${diagnostics.redis.commandsPerAck} cmds/req` : ''}` : '';
            log(`[status ${engine}] ${w} ${rate ? `${rate}/s open` : `closed ×${concurrency}`} ${who} r${r + 1}: ${res.perSec}/s p99 ${ms(res.latency.p99)} ms, CPU ${row.server.cpuPercent} % (others ${othersCpuPercent} %)${c1 ? `, hit ${pct(row.cacheHitRate)}` : ''}${diagText}${quiet ? `, waited ${quiet.waited} s for quiet${quiet.quiet ? '' : ' (gave up)'}` : ''}${res.lateShare > 0.01 ? `, generator late ${pct(res.lateShare)}` : ''}${Object.keys(res.errors).length ? ` errors ${JSON.stringify(res.errors)}` : ''}`);
          }
        }
        const med = (who, f) => median(point.runs[who].map(f));
        for (const who of ['ours', 'base']) {
          point[who] = {
            perSec: med(who, (x) => x.perSec), p50: med(who, (x) => x.latency.p50), p99: med(who, (x) => x.latency.p99), p999: med(who, (x) => x.latency.p999),
            cpuPercent: med(who, (x) => x.server.cpuPercent), cpuUsPerRequest: med(who, (x) => x.server.cpuUsPerRequest), rssMB: med(who, (x) => x.server.rssMB), lateShare: Math.max(...point.runs[who].map((x) => x.lateShare)),
            errors: point.runs[who].reduce((n, x) => n + Object.values(x.errors).reduce((a, b) => a + b, 0) + x.badAnswers, 0),
            generatorCpuPercent: med(who, (x) => x.generatorCpuPercent),
            othersCpuPercent: med(who, (x) => x.othersCpuPercent),
            ...(diag
              ? {
                  loopDelayP99: med(who, (x) => x.diagnostics?.server?.eventLoopDelay.p99 ?? NaN),
                  loopDelayMax: med(who, (x) => x.diagnostics?.server?.eventLoopDelay.max ?? NaN),
                  gcMsPerSecond: med(who, (x) => x.diagnostics?.server?.gc.msPerSecond ?? NaN),
                  gcMaxMs: med(who, (x) => x.diagnostics?.server?.gc.maxMs ?? NaN),
                  redisUsPerRequest: med(who, (x) => x.diagnostics?.redis?.cpuMicrosPerAck ?? NaN),
                }
              : {}),
          };
        }
        point.ours.cacheHitRate = med('ours', (x) => x.cacheHitRate);
        point.throughputRatio = Math.round((point.ours.perSec / point.base.perSec) * 100) / 100;
        points.push(point);
      }
    }

    const memory = cacheMemory(num('CACHE_RECORDS', users));
    const result = {
      scenario: 'status', engine, users, rounds, durationMs, warmupMs, batchSize, concurrency, loadThreads: threads, lateMs,
      loadAvg: { start: loadAvgStart, end: load1() },
      oursCli: process.env.OURS_CLI ?? 'packages/server/dist/app/cli.js (this tree)',
      pids: { ours: servers.ours.pid, base: servers.base.pid }, profiles: profileDir,
      seed: { seconds: seedSeconds, putsPerSec: seedRate, puts: users + seed.manualCount },
      serverRssIdleMB: Math.round(rssIdle / 1048576), serverRssSeededMB: Math.round(rssSeeded / 1048576),
      serverBytesPerUserSeeded: Math.round((rssSeeded - rssIdle) / users), redisBytesPerUser,
      cacheMemory: memory,
      points,
    };
    const rows = points.map((p) => [
      p.workload === 'get' ? 'GET one' : p.workload === 'put' ? 'PUT one' : `POST batch of ${batchSize}`,
      (p.mode === 'closed' ? `closed, ${p.concurrency} conns` : `${p.offered.toLocaleString('en-US')}/s open`) + (Math.max(p.ours.lateShare, p.base.lateShare) > 0.01 ? ' †' : ''),
      p.ours.perSec.toLocaleString('en-US'), p.base.perSec.toLocaleString('en-US'), p.throughputRatio,
      ms(p.ours.p50), ms(p.ours.p99), ms(p.ours.p999), ms(p.base.p99),
      `${p.ours.cpuPercent} % / ${p.base.cpuPercent} %`, `${p.ours.cpuUsPerRequest} / ${p.base.cpuUsPerRequest}`, `${p.ours.rssMB} MB`, pct(p.ours.cacheHitRate),
      `${pct(p.ours.lateShare)} / ${pct(p.base.lateShare)}`, `${p.ours.othersCpuPercent} % / ${p.base.othersCpuPercent} %`, `${p.ours.errors} / ${p.base.errors}`,
    ]);
    const diagRows = diag
      ? points.map((p) => [
          p.workload === 'get' ? 'GET one' : p.workload === 'put' ? 'PUT one' : `POST batch of ${batchSize}`,
          p.mode === 'closed' ? `closed, ${p.concurrency} conns` : `${p.offered.toLocaleString('en-US')}/s open`,
          `${ms(p.ours.p99)} / ${ms(p.base.p99)}`,
          `${ms(p.ours.loopDelayP99)} / ${ms(p.base.loopDelayP99)}`,
          `${ms(p.ours.loopDelayMax)} / ${ms(p.base.loopDelayMax)}`,
          `${p.ours.gcMsPerSecond} / ${p.base.gcMsPerSecond}`,
          `${p.ours.gcMaxMs} / ${p.base.gcMaxMs}`,
          redis ? `${p.ours.redisUsPerRequest}` : '-',
        ])
      : [];
    const lines = [
      `### user status REST API (${engine} engine, ${users.toLocaleString('en-US')} users, median of ${rounds} alternating rounds, ${durationMs / 1000} s each)`,
      '',
      table(['request', 'load', 'ours req/s', 'bare req/s', 'ratio', 'ours p50', 'ours p99', 'ours p99.9', 'bare p99', 'server CPU ours / bare', 'server CPU µs per request ours / bare', 'ours RSS', 'cache hit rate', 'generator late ours / bare', 'other processes\' CPU ours / bare', 'errors ours / bare'], rows),
      '',
      ...(diag
        ? [
            '',
            `Where the tail comes from (DIAG=1, medians of the rounds): each server's event-loop delay (bench/lib/probe.mjs, 1 ms resolution) and GC pauses, and Redis CPU per answered request.`,
            '',
            table(['request', 'load', 'p99 ours / bare', 'event-loop delay p99 ours / bare', 'event-loop delay max ours / bare', 'GC ms/s ours / bare', 'longest GC pause ms ours / bare', 'Redis CPU µs per request (ours)'], diagRows),
            '',
          ]
        : []),
      `† the generator sent more than 1 % of the requests of a round over ${lateMs} ms behind schedule (column "generator late", worst round): the machine could not run this rate, and the latencies include the generator's own delay.`,
      'Other processes\' CPU: what the rest of the machine (not this run\'s servers, Redis or load generator) used during the run, in % of one core, from /proc/stat: the noise of a shared machine.',
      `Latencies in ms. Seeded ${result.seed.puts.toLocaleString('en-US')} PUTs in ${seedSeconds} s; server RSS ${result.serverRssIdleMB} MB idle, ${result.serverRssSeededMB} MB seeded (${result.serverBytesPerUserSeeded} B/user, store + cache)${redisBytesPerUser ? `; Redis ${redisBytesPerUser} B/user` : ''}.`,
      `Cache memory (bench/status-cache-memory.mjs): ${memory.bytesPerRecord} B/record with ${memory.records.toLocaleString('en-US')} records (${memory.bytesPerRecordMarginal} B/record beyond the empty cache's preallocated ${memory.emptyCacheKB} KB).`,
      `Load average: ${loadAvgStart.join(' ')} at start, ${result.loadAvg.end.join(' ')} at end.`,
    ];
    save(`status-${engine}`, result, lines.join('\n'));
  } finally {
    for (const l of Object.values(loads)) await l.close();
    for (const s of Object.values(servers)) await s.stop();
    await redis?.stop();
  }
}
