// Loaded into a server under test with `node --import <this file>` (the
// harness does it for every contender alike, so its small cost is the same on
// every side). It records, between two SIGUSR2 signals:
//   - the event-loop delay histogram (perf_hooks.monitorEventLoopDelay, 1 ms resolution),
//   - event-loop utilisation (the share of the time the loop was busy),
//   - garbage collections (count, total and longest pause, by kind),
// and on each SIGUSR2 writes them as JSON to PROBE_DIR/<pid>.json and starts
// over. Without PROBE_DIR it does nothing.
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, constants, monitorEventLoopDelay, performance } from 'node:perf_hooks';

const dir = process.env.PROBE_DIR;
if (dir) {
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  let elu = performance.eventLoopUtilization();
  let gc = fresh();
  const kinds = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = kinds[e.detail?.kind ?? e.kind] ?? 'other';
      gc.count++;
      gc.ms += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
      gc.byKind[kind] = (gc.byKind[kind] ?? 0) + e.duration;
      if (e.duration >= 5) gc.over5ms++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = { at: performance.now(), cpu: process.cpuUsage() };
  let since = t0;
  process.on('SIGUSR2', () => {
    const now = { at: performance.now(), cpu: process.cpuUsage() };
    const seconds = (now.at - since.at) / 1000;
    const u = performance.eventLoopUtilization(elu);
    const ms = (ns) => Math.round(ns / 1e3) / 1e3;
    const out = {
      pid: process.pid,
      seconds,
      eventLoopDelay: { p50: ms(eld.percentile(50)), p90: ms(eld.percentile(90)), p99: ms(eld.percentile(99)), p999: ms(eld.percentile(99.9)), max: ms(eld.max), mean: ms(eld.mean) },
      eventLoopUtilization: Math.round(u.utilization * 1000) / 1000,
      cpuPercent: Math.round(((now.cpu.user - since.cpu.user + now.cpu.system - since.cpu.system) / 1e4 / seconds) * 10) / 10,
      gc: { ...gc, ms: Math.round(gc.ms * 10) / 10, maxMs: Math.round(gc.maxMs * 10) / 10, msPerSecond: Math.round((gc.ms / seconds) * 10) / 10, byKind: Object.fromEntries(Object.entries(gc.byKind).map(([k, v]) => [k, Math.round(v * 10) / 10])) },
      heapUsedMB: Math.round(process.memoryUsage().heapUsed / 1048576),
    };
    writeFileSync(`${dir}/${process.pid}.json`, JSON.stringify(out));
    eld.reset();
    elu = performance.eventLoopUtilization();
    gc = fresh();
    since = now;
  });
}

function fresh() {
  return { count: 0, ms: 0, maxMs: 0, over5ms: 0, byKind: {} };
}
