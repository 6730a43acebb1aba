// Latency histograms (HDR, microseconds) and process CPU/RSS from /proc.
import { readFileSync, readdirSync } from 'node:fs';
import * as hdr from 'hdr-histogram-js';

export function histogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

export function decodeHistogram(b64) {
  return hdr.decodeFromCompressedBase64(b64);
}

/** Percentiles in milliseconds. */
export function summarize(h) {
  const ms = (us) => Math.round(us) / 1000;
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

const TICKS = 100; // USER_HZ on Linux

/** The pid and all its descendants. */
export function processTree(pid) {
  const out = [pid];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (kids) for (const k of kids.split(/\s+/)) out.push(...processTree(Number(k)));
    }
  } catch {
    /* process gone */
  }
  return out;
}

/** CPU seconds (user + system) and RSS bytes of a process tree (`children: false`: of the process alone). */
export function sampleTree(pid, { children = true } = {}) {
  let cpu = 0;
  let rss = 0;
  for (const p of children ? processTree(pid) : [pid]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu += (Number(fields[11]) + Number(fields[12])) / TICKS;
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      /* process gone */
    }
  }
  return { cpu, rss, at: performance.now() };
}

/** CPU % (of one core) and RSS between two samples. */
export function usage(a, b) {
  const seconds = (b.at - a.at) / 1000;
  return { cpuPercent: Math.round(((b.cpu - a.cpu) / seconds) * 1000) / 10, rssMB: Math.round(b.rss / 1024 / 102.4) / 10 };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Records the time since `since` (a performance.now() value) in microseconds. */
export function recordSince(h, since) {
  h.recordValue(Math.max(1, Math.round((performance.now() - since) * 1000)));
}

/** Counts a failed ack in `errors` by its error code (or `fallback` when it has none). */
export function countError(errors, ack, fallback = 'unknown') {
  const code = ack?.error?.code ?? fallback;
  errors[code] = (errors[code] ?? 0) + 1;
}

/** Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat: to tell how much other processes took during a run. */
export function machineCpu() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / TICKS;
  } catch {
    return NaN;
  }
}
