#!/usr/bin/env node
// Where a server's time goes: self time of a `node --cpu-prof` profile,
// by function and by package (or file of ours).
//   node bench/profile-top.mjs <file.cpuprofile> [top=25] [--from=<µs> --to=<µs>]
// --from/--to keep the samples of one window of CLOCK_MONOTONIC (the
// profile's clock): SCENARIO=status records each run's as monoUs.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/profile-top.mjs <file.cpuprofile> [top]');
  process.exit(2);
}
const flag = (name) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? NaN);
const top = Number(process.argv.slice(3).find((a) => !a.startsWith('--')) ?? 25);
const from = flag('from');
const to = flag('to');
const { nodes, samples, timeDeltas, startTime } = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(nodes.map((n) => [n.id, n]));
const self = new Map();
let t = startTime;
samples.forEach((id, i) => {
  t += timeDeltas[i] ?? 0;
  if (t < from || t > to) return;
  self.set(id, (self.get(id) ?? 0) + (timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

/** node_modules package, or the file under packages/, or the kind of frame. */
function where(url) {
  if (!url) return '(native / VM)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  const p = /packages\/(.+)$/.exec(url);
  if (p) return p[1];
  return url.startsWith('node:') ? 'node core' : url;
}

const fns = new Map();
const places = new Map();
for (const [id, t] of self) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const name = cf.functionName || '(anonymous)';
  const loc = where(cf.url);
  const key = `${name}  ${loc}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  fns.set(key, (fns.get(key) ?? 0) + t);
  const place = ['(garbage collector)', '(idle)', '(program)'].includes(name) ? name : loc;
  places.set(place, (places.get(place) ?? 0) + t);
}
const show = (title, m, k) => {
  console.log(`\n${title}`);
  for (const [key, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, k)) console.log(`${((t / total) * 100).toFixed(1).padStart(5)} %  ${(t / 1000).toFixed(0).padStart(7)} ms  ${key}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
show('self time by package / file', places, top);
show('self time by function', fns, top);
