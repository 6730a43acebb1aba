// Sums an allocation profile of bench/lib/alloc-probe.mjs: bytes per cycle
// (or per request: pass how many the run made) by package, by function, and
// by the nearest frame of our own code.
//   node bench/alloc-top.mjs <file.heapprofile> [cycles] [top]
import { readFileSync } from 'node:fs';

const [file, cyclesArg = '1', topArg = '30'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/alloc-top.mjs <file.heapprofile> [cycles] [top]');
  process.exit(2);
}
const cycles = Number(cyclesArg);
const top = Number(topArg);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byFn = new Map();
const byPkg = new Map();
const byOurs = new Map();
let total = 0;
const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
const pkgOf = (url) => {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.includes('/packages/')) return url.split('/packages/')[1];
  return url || '(native)';
};
const walk = (node, chain) => {
  const cf = node.callFrame;
  const name = `${cf.functionName || '(anonymous)'}  ${pkgOf(cf.url)}:${cf.lineNumber + 1}`;
  const here = [name, ...chain].slice(0, 8);
  if (node.selfSize) {
    total += node.selfSize;
    add(byFn, name, node.selfSize);
    add(byPkg, pkgOf(cf.url), node.selfSize);
    add(byOurs, here.find((x) => /(server|protocol)\/dist\//.test(x)) ?? '(none of ours in the 8 nearest frames)', node.selfSize);
  }
  for (const child of node.children ?? []) walk(child, here);
};
walk(profile.head, []);
const show = (title, m) => {
  console.log(`\n${title}`);
  for (const [k, b] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(b / cycles).toFixed(0).padStart(9)} B ${((b / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
};
console.log(`${(total / 1e6).toFixed(1)} MB sampled, ${(total / cycles).toFixed(0)} B per cycle over ${cycles}`);
show('by package', byPkg);
show('by function (self)', byFn);
show('by the nearest frame of our code', byOurs);
