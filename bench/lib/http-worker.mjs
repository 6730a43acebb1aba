// One load-generator thread of bench/lib/http-load.mjs: an undici Pool of
// keep-alive connections to one server, driven in a closed or an open loop.
// Results go back as an HDR histogram (encoded) plus counters.
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';
import { histogram, recordSince } from './stats.mjs';

const { url, connections } = workerData;
const pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 });

/**
 * One request through undici's dispatcher API: about a quarter less CPU per
 * request than `pool.request()` and its body stream, which the generator
 * needs on two shared cores. Resolves with the status and, if `keep`, the body.
 */
function send(opts, keep) {
  return new Promise((resolve, reject) => {
    let status = 0;
    const chunks = keep ? [] : undefined;
    pool.dispatch(opts, {
      onConnect() {},
      onHeaders(code) {
        status = code;
        return true;
      },
      onData(chunk) {
        chunks?.push(chunk);
        return true;
      },
      onComplete() {
        resolve({ status, body: chunks ? Buffer.concat(chunks).toString() : undefined });
      },
      onError: reject,
    });
  });
}

/** A cheap deterministic PRNG per run (xorshift32), so rounds draw comparable id sequences. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4_294_967_296;
  };
}

/** The bodies of the `put` workload, in turn: a manual status with a message, automatic, a keep-alive, busy without a message. */
const PUT_BODIES = [
  { status: 'busy', message: 'in a meeting', ttlSeconds: 3600 },
  { status: 'online', message: null },
  { status: 'online', ttlSeconds: 3600 },
  { status: 'away', message: 'back at 3 pm' },
].map((b) => JSON.stringify(b));

/** Builds the request factory of a workload: `get` (one random id), `batch` (`batchSize` distinct random ids) or `put` (a write of one random id). */
function requests(spec, seed) {
  const rand = rng(seed);
  const id = () => `${spec.prefix}${Math.floor(rand() * spec.users)}`;
  if (spec.kind === 'get') return { next: () => ({ method: 'GET', path: `/api/v2/presence/${id()}` }), check: (b) => typeof JSON.parse(b).userId === 'string' };
  if (spec.kind === 'put') {
    const headers = { 'content-type': 'application/json' };
    let n = 0;
    return {
      next: () => ({ method: 'PUT', path: `/api/v2/presence/${id()}`, headers, body: PUT_BODIES[n++ % PUT_BODIES.length] }),
      check: (b) => typeof JSON.parse(b).userId === 'string',
    };
  }
  // Batch bodies are drawn in advance: building 100 ids and their JSON per
  // request would cost the generator more than some servers spend answering.
  const bodies = Array.from({ length: 1_000 }, () => {
    const ids = new Set();
    while (ids.size < spec.batchSize) ids.add(id());
    return JSON.stringify({ userIds: [...ids] });
  });
  const headers = { 'content-type': 'application/json' };
  return {
    next: () => ({ method: 'POST', path: '/api/v2/presence/batch', headers, body: bodies[Math.floor(rand() * bodies.length)] }),
    check: (b) => JSON.parse(b).users?.length === spec.batchSize,
  };
}

/**
 * Runs one measured load. `mode` closed: `concurrency` requests in flight,
 * each sent when the previous one answered (latency from its send). `mode`
 * open: `rate` per second on a schedule starting at `startAt` (epoch ms,
 * shared by every thread) + `offsetMs`, sent whether or not earlier ones
 * answered; latency counts from the *intended* send time (no coordinated
 * omission), and a send more than `lateMs` behind its schedule is counted
 * as late: the generator, not the server, fell behind.
 */
async function run(msg) {
  const { mode, durationMs, spec, seed, record = true } = msg;
  const h = histogram();
  const lag = histogram();
  const errors = {};
  let ok = 0;
  let sent = 0;
  let late = 0;
  let inflight = 0;
  let bad = 0;
  let lastDone = 0;
  const reqs = requests(spec, seed);
  const fire = (since) => {
    inflight++;
    const n = sent++;
    // A sample of the answers is parsed: the server must say what was asked.
    const sample = n % 997 === 0;
    return send(reqs.next(), sample).then(
      (res) => {
        if (record) recordSince(h, since);
        if (res.status === 200) {
          ok++;
          if (sample && !reqs.check(res.body)) bad++;
        } else errors[res.status] = (errors[res.status] ?? 0) + 1;
      },
      (err) => {
        if (record) recordSince(h, since);
        const code = err?.code ?? 'error';
        errors[code] = (errors[code] ?? 0) + 1;
      },
    ).finally(() => {
      inflight--;
      lastDone = performance.now();
    });
  };
  const wait = Math.max(0, msg.startAt - (performance.timeOrigin + performance.now()));
  await new Promise((r) => setTimeout(r, wait));
  const start = performance.now() + (msg.offsetMs ?? 0);
  const end = start + durationMs;
  if (mode === 'closed') {
    await Promise.all(
      Array.from({ length: msg.concurrency }, async () => {
        while (performance.now() < end) await fire(performance.now());
      }),
    );
  } else {
    const total = Math.round((msg.rate * durationMs) / 1000);
    const gap = 1000 / msg.rate;
    await new Promise((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor((performance.now() - start) / gap) + 1);
        while (sent < due) {
          const intended = start + sent * gap;
          const behind = performance.now() - intended;
          if (record) lag.recordValue(Math.max(1, Math.round(behind * 1000)));
          if (behind > msg.lateMs) late++;
          void fire(intended);
        }
        if (sent < total) setTimeout(tick, 1);
        else resolve();
      };
      const first = start - performance.now();
      setTimeout(tick, Math.max(0, first));
    });
    const drainEnd = performance.now() + (msg.drainMs ?? 5_000);
    while (inflight > 0 && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 5));
    if (inflight > 0) errors.no_answer = inflight;
  }
  return {
    histogram: h.encodeIntoCompressedBase64(),
    sendLag: lag.encodeIntoCompressedBase64(),
    sent,
    ok,
    late,
    bad,
    errors,
    // Achieved throughput counts until the last answer: a server that falls behind stretches it.
    seconds: (Math.max(end, lastDone) - start) / 1000,
  };
}

parentPort.on('message', async (msg) => {
  if (msg.cmd === 'close') {
    await pool.close().catch(() => pool.destroy());
    parentPort.postMessage({ closed: true });
    return;
  }
  try {
    parentPort.postMessage({ ok: true, result: await run(msg) });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err?.stack ?? err) });
  }
});
