// What V8's --compact-on-every-full-gc costs in pauses, on a synthetic heap
// shaped like a busy server's: 1.5 million small long-lived objects (about
// 150 MB) replaced slowly, and short-lived garbage from every "request".
// At 100,000 connections that flag took our server's RSS from 1.26-1.29 ×
// bare Socket.IO's to 1.02 × (the old space's free slack after full GCs is
// what it removes; docs/benchmarks.md, "Where the bytes go at 100,000
// connections"); this measures what it would cost the event loop.
//   node bench/compaction-pauses.mjs            # V8's default heuristics
//   node bench/compaction-pauses.mjs compact    # compaction on every full GC (set at run time)
//   DURATION_S=15
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const mode = process.argv[2] === 'compact' ? 'compact' : 'default';
if (mode === 'compact') setFlagsFromString('--compact-on-every-full-gc');
const seconds = Number(process.env.DURATION_S ?? 15);

const live = new Array(1_500_000);
for (let i = 0; i < live.length; i++) live[i] = { a: i, b: `x${i}`, c: [i] };

const major = [];
let minor = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major.push(e.duration);
    else minor++;
  }
}).observe({ entryTypes: ['gc'] });

// The event loop's longest lateness (Node's own sampler, 5 ms resolution).
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();

const t0 = Date.now();
let n = 0;
function work() {
  for (let k = 0; k < 20_000; k++, n++) {
    const request = { q: n, r: [n, n + 1], s: `y${n}` };
    if (n % 10 === 0) live[(n * 7919) % live.length] = { a: n, b: `z${n}`, c: [request.q] };
  }
  if (Date.now() - t0 < seconds * 1000) return void setImmediate(work);
  loopDelay.disable();
  const old = getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
  const sorted = [...major].sort((a, b) => a - b);
  const ms = (x) => (x === undefined ? '-' : x.toFixed(1));
  console.log(
    JSON.stringify({
      mode,
      operations: n,
      majorGcs: sorted.length,
      majorPauseMs: { p50: ms(sorted[Math.floor(sorted.length / 2)]), max: ms(sorted[sorted.length - 1]) },
      minorGcs: minor,
      longestLoopLagMs: ms(loopDelay.max / 1e6),
      oldSpaceMB: { size: Math.round(old.space_size / 1e6), used: Math.round(old.space_used_size / 1e6) },
      rssMB: Math.round(process.memoryUsage.rss() / 1e6),
    }),
  );
}
work();
