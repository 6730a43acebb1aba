// Loaded into every server of SCENARIO=channels (ours and the baselines alike) with
// `node --import <this file>` when LOOP_PROBE_DIR is set: the event-loop delay of the process
// (perf_hooks.monitorEventLoopDelay, 1 ms resolution), its garbage-collection pauses and its CPU
// time, per phase. On SIGWINCH (ignored by default, so harmless elsewhere) it writes
// LOOP_PROBE_DIR/<pid>-loop.json { seq, p50, p99, max, mean (ms), count, cpuMs, gc: { count,
// totalMs, maxMs } } for the time since the previous signal (a long loop delay with short GC
// pauses and little CPU is time spent waiting for a core), then
// starts a new histogram. The scenario signals before and after a phase and reads the file whose
// seq moved. Without LOOP_PROBE_DIR it does nothing.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';

const dir = process.env.LOOP_PROBE_DIR;
if (dir) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let seq = 0;
  let cpu = process.cpuUsage();
  let gc = { count: 0, totalMs: 0, maxMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.totalMs += e.duration;
      if (e.duration > gc.maxMs) gc.maxMs = e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  process.on('SIGWINCH', () => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const round = (x) => Math.round(x * 100) / 100;
    const out = { pid: process.pid, seq: ++seq, p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean), count: h.count, cpuMs: Math.round((used.user + used.system) / 1000), gc: { count: gc.count, totalMs: round(gc.totalMs), maxMs: round(gc.maxMs) } };
    h.reset();
    gc = { count: 0, totalMs: 0, maxMs: 0 };
    writeFileSync(join(dir, `${process.pid}-loop.json`), JSON.stringify(out));
  });
}
