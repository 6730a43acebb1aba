// SCENARIO=centrifugo (issue 15, item 8): the same channel load as SCENARIO=channels received by
// subscribers of the official Centrifugo client (`centrifuge` 5.x over `ws`, at /connection/websocket,
// bench/lib/centrifugo-worker.mjs) and by subscribers of our Socket.IO protocol (socket.io-client,
// `channel:subscribe` / `channel:publication`, bench/lib/channels-worker.mjs), in the same run, against
// the same server process (the CLI): memory engine on one node, Redis on two nodes. The publishers are
// the same for both protocols: Socket.IO `channel:publish` sockets (PUBLISH_VIA=socket, the default) or
// the server API `POST /api/publish` with the API key (PUBLISH_VIA=api). Per run: latency at an offered
// rate (open loop), throughput (closed loop), gaps and duplicates by offset. See the "Centrifugo
// clients" section of docs/benchmarks.md for the variables and the results.
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { call, channelsConfig, collect, drain, publishers, sampleAll, settle, startWorkers, stopWorkers, summarizeRuns, waitQuiet } from './channels-scenario.mjs';
import { closeSockets, openSockets } from './load.mjs';
import { startRedis } from './redis.mjs';
import { RESULTS_DIR, save, table } from './report.mjs';
import { startServer } from './servers.mjs';
import { histogram, machineCpu, median, sampleTree, summarize, usage } from './stats.mjs';

const WORKERS = {
  socketio: fileURLToPath(new URL('./channels-worker.mjs', import.meta.url)),
  centrifuge: fileURLToPath(new URL('./centrifugo-worker.mjs', import.meta.url)),
};
const PROTOCOL_LABEL = { socketio: 'Socket.IO (socket.io-client)', centrifuge: 'Centrifugo (centrifuge-js)' };
const ENGINE_LABEL = { memory: 'memory (1 node)', redis: 'Redis (2 nodes)' };
const API_KEY = 'bench-centrifugo-api-key-0123456789';
const ms = (x) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '-');
/** A CPU percentage with one decimal (a median of an even number of runs is a mean). */
const pct = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : '-');
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const load1 = () => Math.round(loadavg()[0] * 100) / 100;
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

function settings(env) {
  const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
  const list = (name, def) => (env[name] ?? def).split(',').filter(Boolean);
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
    historySize: num('HISTORY_SIZE', 1_000),
    payloadBytes: num('PAYLOAD_BYTES', 64),
    engines: list('ENGINES', 'memory,redis'),
    protocols: list('PROTOCOLS', 'socketio,centrifuge'),
    publishVia: env.PUBLISH_VIA === 'api' ? 'api' : 'socket',
    profile: env.PROFILE === '1' ? '1' : undefined,
    debug: Boolean(env.CHANNELS_DEBUG),
    quietPercent: num('QUIET_CPU_PERCENT', 0),
    quietMaxWaitMs: num('QUIET_MAX_WAIT_S', 30) * 1000,
  };
}

/**
 * Publishers on the server API: one object per channel with the `emit(event, { channel, data }, ack)`
 * of a publisher socket, so the channels scenario's open and closed loops drive them unchanged; each
 * emit is one `POST /api/publish` (keep-alive connections of one pool per node), its ack `{ ok, offset }`.
 */
function apiPublisherSockets(urls, count) {
  const pools = urls.map((u) => new Pool(u, { connections: 64, pipelining: 1 }));
  const sockets = Array.from({ length: count }, (_, c) => {
    const pool = pools[c % urls.length];
    return {
      emit(_event, payload, ack) {
        pool.request({ path: '/api/publish', method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify(payload) })
          .then(async (res) => {
            const body = await res.body.json();
            ack(body?.result ? { ok: true, offset: body.result.offset } : { ok: false, error: { code: body?.error?.code ?? `http_${res.statusCode}` } });
          })
          .catch((err) => ack({ ok: false, error: { code: err?.code ?? 'request_failed' } }));
      },
      disconnect() {},
    };
  });
  sockets.close = () => Promise.all(pools.map((p) => p.close()));
  return sockets;
}

/** One engine × protocol, one round: connect, latency at the offered rate, throughput, the gap check. */
async function runOne(engine, protocol, cfg, redis, configPath, log) {
  const nodes = engine === 'redis' ? 2 : 1;
  const label = `${ENGINE_LABEL[engine]}, ${PROTOCOL_LABEL[protocol]}`;
  const t0 = performance.now();
  const mark = (what) => cfg.debug && log(`[centrifugo]     ${what} at ${Math.round(performance.now() - t0)} ms`);
  const id = randomUUID().slice(0, 6);
  const names = Array.from({ length: cfg.channels }, (_, i) => `bench${id}_${i}`);
  const perChannel = cfg.subscribers / cfg.channels;
  const execArgv = cfg.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles')}`] : [];
  const nodeEnv = { CHANNELS_CONFIG: configPath, MAX_CONNECTIONS_PER_ADDRESS: '0', API_KEY, ...(engine === 'redis' ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `bcf${id}:` } : {}) };
  const servers = await Promise.all(Array.from({ length: nodes }, () => startServer('ours', nodeEnv, { execArgv })));
  mark('servers started');
  const urls = servers.map((s) => s.url);
  const serverPids = servers.map((s) => s.pid);
  const workers = await startWorkers(cfg.subWorkers, WORKERS[protocol]);
  const workerPids = workers.map((w) => w.pid);
  let pubSockets = [];
  const out = { kind: `${engine}-${protocol}`, engine, protocol, label, nodes, publishVia: cfg.publishVia, load1: [load1()] };
  try {
    // Publishers: channel c's on node c % nodes, the same for both protocols.
    if (cfg.publishVia === 'api') pubSockets = apiPublisherSockets(urls, names.length);
    else {
      for (let n = 0; n < nodes; n++) {
        const mine = names.map((_, i) => i).filter((i) => i % nodes === n);
        const socks = await openSockets(urls[n], mine.length);
        mine.forEach((i, k) => (pubSockets[i] = socks[k]));
      }
    }
    pubSockets.nodes = nodes;
    const pub = publishers(pubSockets, names, cfg);
    mark('publishers ready');
    const per = Math.ceil(cfg.subscribers / workers.length);
    const connected = await Promise.all(workers.map((w, i) => call(w, { cmd: 'connect', urls, from: i * per, count: Math.max(0, Math.min(per, cfg.subscribers - i * per)), channels: cfg.channels, channelNames: names })));
    mark('subscribers connected');
    out.connectRetries = connected.reduce((a, x) => a + (x.retries ?? 0), 0);
    out.subscribeErrors = connected.reduce((a, x) => ({ ...a, ...x.errors }), {});
    out.subscribedWithoutPosition = connected.reduce((a, x) => a + (x.noPosition ?? 0), 0);
    if (cfg.warmupMs > 0) {
      await pub.open(cfg.rate, cfg.warmupMs);
      await settle(workers);
    }
    mark('warmed up');

    // 1. Latency at the offered rate (open loop).
    await Promise.all(workers.map((w) => call(w, { cmd: 'phase', name: 'latency' })));
    const ackOpen = histogram();
    let before = sampleAll(serverPids);
    let clientsBefore = sampleAll(workerPids);
    let pubBefore = process.cpuUsage();
    let redisBefore = engine === 'redis' && redis.pid ? sampleTree(redis.pid) : undefined;
    const openFromUs = monoUs();
    const open = await pub.open(cfg.rate, cfg.durationMs, ackOpen);
    const openToUs = monoUs();
    let lat = await drain(workers, open.acked * perChannel, 5_000);
    const cpuOf = (b, a) => usage(b, a);
    out.latencyPhase = {
      offered: cfg.rate, sent: open.sent, acked: open.acked, achieved: Math.round(open.acked / (cfg.durationMs / 1000)),
      deliveries: lat.deliveries, expectedDeliveries: open.acked * perChannel,
      all: summarize(lat.both), sameNode: summarize(lat.same), crossNode: summarize(lat.cross), ack: summarize(ackOpen),
      server: cpuOf(before, sampleAll(serverPids)), subscribers: cpuOf(clientsBefore, sampleAll(workerPids)),
      publisherCpuPercent: pubCpu(pubBefore, open.seconds), redis: redisBefore ? usage(redisBefore, sampleTree(redis.pid)) : undefined,
      monoUs: [openFromUs, openToUs], slowByTenthSecond: lat.slow,
    };
    mark('latency phase done');

    // 2. Throughput (closed loop): publications per second until the last one was delivered everywhere.
    await Promise.all(workers.map((w) => call(w, { cmd: 'phase', name: 'throughput' })));
    const ackClosed = histogram();
    before = sampleAll(serverPids);
    clientsBefore = sampleAll(workerPids);
    pubBefore = process.cpuUsage();
    redisBefore = engine === 'redis' && redis.pid ? sampleTree(redis.pid) : undefined;
    const m0 = machineCpu();
    const fromUs = monoUs();
    const closed = await pub.closed(cfg.throughputMs, cfg.window, ackClosed);
    const toUs = monoUs();
    const acked = closed.sent - pub.inflight;
    lat = await drain(workers, closed.sent * perChannel, 15_000);
    const after = sampleAll(serverPids);
    const clientsAfter = sampleAll(workerPids);
    const wall = (Math.max(lat.lastAt, closed.startAt + closed.seconds * 1000) - closed.startAt) / 1000;
    const publicationsPerSec = Math.round(lat.deliveries / perChannel / wall);
    const server = usage(before, after);
    const subscribers = usage(clientsBefore, clientsAfter);
    out.throughputPhase = {
      window: cfg.window, publishers: cfg.channels, sent: closed.sent, acked,
      publicationsPerSec, ackedPerSec: Math.round(closed.sent / closed.seconds),
      deliveriesPerSec: Math.round(lat.deliveries / wall), deliveries: lat.deliveries, expectedDeliveries: closed.sent * perChannel, drainSeconds: Math.round((wall - closed.seconds) * 100) / 100,
      all: summarize(lat.both), crossNode: summarize(lat.cross), ack: summarize(ackClosed),
      server, subscribers, publisherCpuPercent: pubCpu(pubBefore, (performance.now() - before.at) / 1000),
      // Subscriber processes' CPU per delivery (the client library's cost): on two shared cores it takes from the servers.
      subscriberCpuUsPerDelivery: Math.round(((subscribers.cpuPercent / 100) * 1e6) / (lat.deliveries / wall)),
      redis: redisBefore ? usage(redisBefore, sampleTree(redis.pid)) : undefined,
      machineCpuPercent: Math.round(((machineCpu() - m0) / ((performance.now() - before.at) / 1000)) * 1000) / 10,
      monoUs: [fromUs, toUs],
    };
    out.serverRssMB = Math.round(after.rss / 1048576);
    mark('throughput phase done');

    // 3. Every subscriber must have every publication of its channel once.
    await settle(workers);
    const checks = await Promise.all(workers.map((w) => call(w, { cmd: 'check', tops: pub.tops })));
    const t = (f) => checks.reduce((a, x) => a + (f(x) ?? 0), 0);
    out.integrity = {
      published: pub.published, publishErrors: pub.errors, received: t((x) => x.totals.received),
      gaps: t((x) => x.totals.gaps), duplicates: t((x) => x.totals.dups), missingAtEnd: t((x) => x.missing),
      subsWithGaps: t((x) => x.totals.subsWithGaps), subsWithDuplicates: t((x) => x.totals.subsWithDups), subsMissing: t((x) => x.subsMissing),
      epochChanges: t((x) => x.totals.epochChanges), resubscribeNotices: t((x) => x.totals.resubscribeNotices), foreign: t((x) => x.totals.foreign), beyondTop: t((x) => x.beyond),
      withoutOffset: t((x) => x.totals.noOffset), clientDisconnects: t((x) => x.totals.disconnects),
    };
    out.load1.push(load1());
    mark('checked');
    return out;
  } finally {
    if (pubSockets.close) await pubSockets.close();
    else closeSockets(pubSockets);
    await stopWorkers(workers);
    await Promise.all(servers.map((s) => s.stop()));
    if (redis.own && engine === 'redis') await redis.flush();
  }
}

/** The publisher process's CPU (% of a core) since `before` (process.cpuUsage()). */
function pubCpu(before, seconds) {
  const d = process.cpuUsage(before);
  return Math.round(((d.user + d.system) / 1e6 / seconds) * 1000) / 10;
}

/**
 * The order of a round: engines and protocols in the given order in even rounds, all reversed in odd
 * ones (A B C D, D C B A, ...), so each protocol runs first as often as second and drift cancels out.
 */
function roundOrder(cfg, r) {
  const order = cfg.engines.flatMap((e) => cfg.protocols.map((p) => [e, p]));
  return r % 2 ? order.reverse() : order;
}

export async function scenarioCentrifugo(env, log) {
  const cfg = settings(env);
  const configPath = channelsConfig(cfg.historySize);
  const redis = cfg.engines.includes('redis') ? await startRedis() : { own: false, stop: async () => {} };
  const runs = {};
  const loadStart = loadavg().map((x) => Math.round(x * 100) / 100);
  const loads = [];
  try {
    for (let r = 0; r < cfg.rounds; r++) {
      for (const [engine, protocol] of roundOrder(cfg, r)) {
        await waitQuiet(cfg.quietPercent, cfg.quietMaxWaitMs, log);
        const kind = `${engine}-${protocol}`;
        log(`[centrifugo] round ${r + 1}/${cfg.rounds}: ${ENGINE_LABEL[engine]}, ${PROTOCOL_LABEL[protocol]} (load ${load1()})`);
        const row = await runOne(engine, protocol, cfg, redis, configPath, log);
        loads.push(...row.load1);
        const i = row.integrity;
        log(`[centrifugo]   ${int(row.throughputPhase.publicationsPerSec)} pub/s; at ${cfg.rate}/s p50 ${ms(row.latencyPhase.all.p50)} p99 ${ms(row.latencyPhase.all.p99)} p99.9 ${ms(row.latencyPhase.all.p999)} ms (cross-node p99 ${ms(row.latencyPhase.crossNode.p99)}); server ${row.throughputPhase.server.cpuPercent} %, subscribers ${row.throughputPhase.subscribers.cpuPercent} %; gaps ${i.gaps} dups ${i.duplicates} missing ${i.missingAtEnd}`);
        (runs[kind] ??= []).push(row);
      }
    }
  } finally {
    await redis.stop();
  }
  const s = {};
  for (const [kind, rs] of Object.entries(runs)) {
    const med = (f) => median(rs.map(f).filter((x) => x !== undefined && Number.isFinite(x)));
    s[kind] = {
      ...summarizeRuns(rs),
      engine: rs[0].engine,
      protocol: rs[0].protocol,
      subscriberCpuThroughput: med((r) => r.throughputPhase.subscribers.cpuPercent),
      subscriberCpuUsPerDelivery: med((r) => r.throughputPhase.subscriberCpuUsPerDelivery),
      subscriberCpuAtRate: med((r) => r.latencyPhase.subscribers.cpuPercent),
      throughputPerRound: rs.map((r) => r.throughputPhase.publicationsPerSec),
      p99PerRound: rs.map((r) => r.latencyPhase.all.p99),
      withoutOffset: rs.reduce((a, r) => a + r.integrity.withoutOffset, 0),
      clientDisconnects: rs.reduce((a, r) => a + r.integrity.clientDisconnects, 0),
    };
  }
  const ratio = (engine, f) => {
    const a = s[`${engine}-centrifuge`];
    const b = s[`${engine}-socketio`];
    return a && b ? Math.round((f(a) / f(b)) * 100) / 100 : undefined;
  };
  const ratios = Object.fromEntries(cfg.engines.map((e) => [e, {
    throughput: ratio(e, (x) => x.throughput),
    p99: ratio(e, (x) => x.latency.p99),
    serverCpuPerPublication: ratio(e, (x) => x.cpuUsPerPublication),
    subscriberCpuPerDelivery: ratio(e, (x) => x.subscriberCpuUsPerDelivery),
  }]));
  const result = {
    scenario: 'centrifugo',
    settings: { ...cfg, profile: undefined, quietPercent: undefined, publishVia: cfg.publishVia === 'api' ? 'server API POST /api/publish (X-API-Key)' : 'Socket.IO channel:publish sockets' },
    loadAverage: { start: loadStart, end: loadavg().map((x) => Math.round(x * 100) / 100), perRunMin: Math.min(...loads), perRunMax: Math.max(...loads) },
    summary: s,
    ratios,
    gapsAndDuplicates: { value: Object.values(s).reduce((a, x) => a + x.gaps + x.duplicates + x.missing, 0), met: Object.values(s).every((x) => x.gaps + x.duplicates + x.missing === 0) },
    runs,
  };
  const rows = Object.entries(s).map(([k, x]) => [
    x.label, int(x.throughput), int(x.deliveriesPerSec),
    x.protocol === 'centrifuge' ? `${ratios[x.engine].throughput ?? '-'} ×` : '',
    int(x.latency.achieved), ms(x.latency.p50), ms(x.latency.p99), ms(x.latency.p999),
    x.nodes > 1 ? `${ms(x.latency.crossP50)} / ${ms(x.latency.crossP99)}` : '-',
    `${pct(x.cpuAtRate)} % / ${pct(x.cpuThroughput)} %`, int(x.cpuUsPerPublication),
    `${pct(x.subscriberCpuAtRate)} % / ${pct(x.subscriberCpuThroughput)} %`, int(x.subscriberCpuUsPerDelivery),
    `${x.rssMB} MB`, `${x.gaps} / ${x.duplicates} / ${x.missing}`,
  ]);
  const md = [
    `### centrifugo: ${cfg.subscribers} subscribers over ${cfg.channels} channels, Centrifugo client (centrifuge-js) against Socket.IO (median of ${cfg.rounds} rounds, order reversed every round; latency at ${cfg.rate} publications/s for ${cfg.durationMs / 1000} s; throughput closed loop ${cfg.throughputMs / 1000} s, ${cfg.channels} publishers × ${cfg.window} in flight; publishers: ${result.settings.publishVia})`,
    '',
    table(['server, subscribers', 'publications/s', 'deliveries/s', 'throughput vs Socket.IO', `achieved/s at ${cfg.rate}`, 'p50', 'p99', 'p99.9', 'cross-node p50 / p99', 'server CPU at rate / max', 'server CPU µs / publication', 'subscriber CPU at rate / max', 'subscriber CPU µs / delivery', 'server RSS', 'gaps / dups / missing'], rows),
    '',
    `Latencies in ms, publish (intended send time) → delivery. Per round, publications/s: ${Object.values(s).map((x) => `${x.label} ${x.throughputPerRound.join(' / ')}`).join('; ')}. p99 at ${cfg.rate}/s: ${Object.values(s).map((x) => `${x.label} ${x.p99PerRound.map(ms).join(' / ')}`).join('; ')}. Load average ${loadStart.join(', ')} at the start, ${result.loadAverage.end.join(', ')} at the end (1-min ${result.loadAverage.perRunMin}–${result.loadAverage.perRunMax} at the runs' starts and ends). Gaps, duplicates and missing: ${result.gapsAndDuplicates.value} in all.`,
  ].join('\n');
  save(env.RESULTS_NAME ?? 'centrifugo', result, md);
  return result;
}
