#!/usr/bin/env node
// Self time per request of two servers profiled in the same run
// (`PROFILE_DIR=<dir> node bench/lib/status-ab.mjs`), function by function,
// largest difference first: where one server spends the microseconds the
// other does not.
//   node bench/profile-diff.mjs <dir> <name> <name> [top=40]
// Only the samples inside each server's measured runs count (windows.json),
// divided by the requests those runs answered; idle time is left out.
import { readdirSync, readFileSync } from 'node:fs';

const [dir, nameA, nameB, topArg] = process.argv.slice(2);
if (!dir || !nameA || !nameB) {
  console.error('usage: node bench/profile-diff.mjs <dir> <name> <name> [top=40]');
  process.exit(2);
}
const windows = JSON.parse(readFileSync(`${dir}/windows.json`, 'utf8'));

/** µs of self time per request, by `function file:line`. */
function perRequest(name) {
  const w = windows[name];
  if (!w) throw new Error(`no server '${name}' in ${dir}/windows.json (${Object.keys(windows).join(', ')})`);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(w.pid));
  if (!file) throw new Error(`no profile of pid ${w.pid} in ${dir}`);
  const { nodes, samples, timeDeltas, startTime } = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const runs = w.runs.map((r) => r.window);
  const requests = w.runs.reduce((a, r) => a + r.requests, 0);
  const self = new Map();
  let t = startTime;
  samples.forEach((id, i) => {
    t += timeDeltas[i] ?? 0;
    if (!runs.some(([from, to]) => t >= from && t <= to)) return;
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    if (functionName === '(idle)') return;
    const where = url.replace(/^.*node_modules\//, '').replace(/^.*\/(src|dist)\//, '').replace(/^file:\/\/.*\/bench\//, 'bench/');
    const key = `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + (timeDeltas[i] ?? 0));
  });
  for (const [k, v] of self) self.set(k, v / requests);
  return self;
}

const a = perRequest(nameA);
const b = perRequest(nameB);
const sum = (m) => [...m.values()].reduce((x, y) => x + y, 0);
const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => ({ k, a: a.get(k) ?? 0, b: b.get(k) ?? 0 })).sort((x, y) => y.a - y.b - (x.a - x.b));
const f = (n) => n.toFixed(3).padStart(8);
console.log(`self time per request (µs), samples of the measured runs only\n`);
console.log(`${'diff'.padStart(8)} ${nameA.slice(0, 8).padStart(8)} ${nameB.slice(0, 8).padStart(8)}  function`);
console.log(`${f(sum(a) - sum(b))} ${f(sum(a))} ${f(sum(b))}  (all)`);
for (const r of rows.slice(0, Number(topArg ?? 40))) console.log(`${f(r.a - r.b)} ${f(r.a)} ${f(r.b)}  ${r.k}`);
