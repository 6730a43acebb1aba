// HTTP load from worker threads (bench/lib/http-worker.mjs, an undici Pool
// each), so that the generator is not the bottleneck of one event loop; and
// a bounded-concurrency helper for seeding.
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import { decodeHistogram, histogram, summarize } from './stats.mjs';

/**
 * Starts `threads` generator threads against `url`, each with a pool of up
 * to `connections` keep-alive connections. `run(load)` drives one load on
 * every thread at once and merges their results.
 */
export async function httpLoad(url, { threads = 2, connections = 64 } = {}) {
  const workers = Array.from({ length: threads }, () => new Worker(new URL('./http-worker.mjs', import.meta.url), { workerData: { url, connections } }));
  const call = (w, msg) =>
    new Promise((resolve, reject) => {
      const onMsg = (m) => {
        w.off('error', onErr);
        if (m.ok === false) reject(new Error(m.error));
        else resolve(m);
      };
      const onErr = (err) => {
        w.off('message', onMsg);
        reject(err);
      };
      w.once('message', onMsg);
      w.once('error', onErr);
      w.postMessage(msg);
    });
  let seed = 1;
  return {
    url,
    threads,
    /**
     * load: { mode: 'closed', concurrency } (in all, split over the threads)
     * or { mode: 'open', rate } (per second in all), plus durationMs, spec
     * (the workload: { kind: 'get'|'batch', prefix, users, batchSize }),
     * lateMs (a send further behind its schedule is late), record (false
     * for warm-up).
     */
    async run(load) {
      const startAt = performance.timeOrigin + performance.now() + 50;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const parts = await Promise.all(
        workers.map((w, k) =>
          call(w, {
            ...load,
            cmd: 'run',
            seed: seed++ * 7_919,
            startAt,
            lateMs: load.lateMs ?? 2,
            concurrency: load.mode === 'closed' ? Math.max(1, Math.round(load.concurrency / threads)) : undefined,
            rate: load.mode === 'open' ? load.rate / threads : undefined,
            // Threads interleave their schedules instead of sending in step.
            offsetMs: load.mode === 'open' ? (k * 1000) / load.rate : 0,
          }).then((m) => m.result),
        ),
      );
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const h = histogram();
      const lag = histogram();
      const errors = {};
      let sent = 0, ok = 0, late = 0, bad = 0, seconds = 0;
      for (const p of parts) {
        h.add(decodeHistogram(p.histogram));
        lag.add(decodeHistogram(p.sendLag));
        sent += p.sent;
        ok += p.ok;
        late += p.late;
        bad += p.bad;
        seconds = Math.max(seconds, p.seconds);
        for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
      }
      return {
        sent,
        ok,
        errors,
        badAnswers: bad,
        perSec: Math.round(ok / seconds),
        latency: summarize(h),
        lateSends: late,
        lateShare: sent ? Math.round((late / sent) * 10_000) / 10_000 : 0,
        sendLag: load.mode === 'open' ? summarize(lag) : undefined,
        // Threads of this process: what the load generator itself used (of one core).
        generatorCpuPercent: Math.round(((cpu.user + cpu.system) / 1e6 / wall) * 1000) / 10,
      };
    },
    async close() {
      await Promise.all(workers.map((w) => call(w, { cmd: 'close' }).catch(() => undefined)));
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/**
 * Sends `count` requests built by `make(i)` with at most `concurrency` in
 * flight; throws on any answer other than 2xx or when `timeoutMs` passes.
 * Returns the requests per second achieved.
 */
export async function httpEach(url, count, make, { concurrency = 64, timeoutMs = 300_000 } = {}) {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const deadline = performance.now() + timeoutMs;
  const t0 = performance.now();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          if (performance.now() > deadline) throw new Error(`seeding did not finish within ${timeoutMs / 1000} s (${next} of ${count} sent)`);
          const i = next++;
          const res = await pool.request(make(i));
          const text = await res.body.text();
          if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`request ${i} answered ${res.statusCode}: ${text.slice(0, 300)}`);
        }
      }),
    );
  } finally {
    await pool.close().catch(() => pool.destroy());
  }
  return Math.round(count / ((performance.now() - t0) / 1000));
}
