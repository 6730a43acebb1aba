#!/usr/bin/env node
// Where a server's heap bytes go: compares two V8 heap snapshots of one process
// (e.g. idle and with N connections, from SCENARIO=scale HEAP_SNAPSHOT=1) and
// prints the growth grouped by constructor (objects), function name
// (closures) or internal kind, per connection, with who holds the top groups.
//
//   node --max-old-space-size=8192 bench/heap-by-constructor.mjs <idle.heapsnapshot> <loaded.heapsnapshot> <N> [top=40]
//   DETAIL='(array) (object properties),Object' … : for these groups, the bytes of
//   the new objects by their two nearest holders (holder's holder.edge → holder.edge).
//
// Self sizes, not retained sizes: the groups add up to the heap's growth, and
// an object counted under its constructor is not counted again under its holder.
// The "held by" column names the commonest retainer (its group and the edge name)
// of the objects that appeared, to tell e.g. a Map of ours from one of Socket.IO.
import { readFileSync } from 'node:fs';

const [idlePath, loadedPath, nArg, topArg] = process.argv.slice(2);
if (!idlePath || !loadedPath || !nArg) {
  console.error('usage: heap-by-constructor.mjs <idle.heapsnapshot> <loaded.heapsnapshot> <connections> [top]');
  process.exit(2);
}
const N = Number(nArg);
const TOP = Number(topArg ?? 40);

function load(path) {
  const s = JSON.parse(readFileSync(path, 'utf8'));
  const meta = s.snapshot.meta;
  const nf = meta.node_fields;
  const ef = meta.edge_fields;
  const types = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  return { s, nf: nf.length, ef: ef.length, types, edgeTypes, iType: nf.indexOf('type'), iName: nf.indexOf('name'), iId: nf.indexOf('id'), iSize: nf.indexOf('self_size'), iEdges: nf.indexOf('edge_count'), eType: ef.indexOf('type'), eName: ef.indexOf('name_or_index'), eTo: ef.indexOf('to_node') };
}

function keyOf(h, i) {
  const { s, types } = h;
  const type = types[s.nodes[i + h.iType]];
  const name = s.strings[s.nodes[i + h.iName]];
  if (type === 'object') return name;
  if (type === 'closure') return `(closure) ${name || '(anonymous)'}`;
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return '(string)';
  if (type === 'number') return '(number)';
  return `(${type}) ${String(name).slice(0, 60)}`;
}

function group(h) {
  const out = new Map();
  const { s } = h;
  for (let i = 0; i < s.nodes.length; i += h.nf) {
    const k = keyOf(h, i);
    let g = out.get(k);
    if (!g) out.set(k, (g = { size: 0, count: 0 }));
    g.size += s.nodes[i + h.iSize];
    g.count++;
  }
  return out;
}

const idle = load(idlePath);
const idleGroups = group(idle);
const idleIds = new Set();
for (let i = 0; i < idle.s.nodes.length; i += idle.nf) idleIds.add(idle.s.nodes[i + idle.iId]);
idle.s = undefined;

const loaded = load(loadedPath);
const loadedGroups = group(loaded);
const rows = [];
for (const [k, g] of loadedGroups) {
  const b = idleGroups.get(k) ?? { size: 0, count: 0 };
  rows.push({ k, size: g.size - b.size, count: g.count - b.count });
}
rows.sort((a, b) => b.size - a.size);
const top = rows.slice(0, TOP);
const wanted = new Set(top.map((r) => r.k));

// Who holds the new objects of the top groups: the retainer's group and edge name.
const { s } = loaded;
const holders = new Map(top.map((r) => [r.k, new Map()]));
for (let i = 0, e = 0; i < s.nodes.length; i += loaded.nf) {
  const edges = s.nodes[i + loaded.iEdges];
  let fromKey;
  for (let j = 0; j < edges; j++, e += loaded.ef) {
    const et = loaded.edgeTypes[s.edges[e + loaded.eType]];
    if (et === 'weak' || et === 'shortcut') continue;
    const to = s.edges[e + loaded.eTo];
    if (idleIds.has(s.nodes[to + loaded.iId])) continue;
    const k = keyOf(loaded, to);
    if (!wanted.has(k)) continue;
    fromKey ??= keyOf(loaded, i);
    const nameOrIndex = s.edges[e + loaded.eName];
    const edgeName = et === 'element' || et === 'hidden' ? `[${et}]` : String(s.strings[nameOrIndex]);
    const hk = `${fromKey} .${edgeName}`;
    const m = holders.get(k);
    m.set(hk, (m.get(hk) ?? 0) + 1);
  }
}

// DETAIL: bytes of the new objects of a group by their two nearest holders.
const detail = (process.env.DETAIL ?? '').split(',').filter(Boolean);
const detailOut = new Map(detail.map((k) => [k, new Map()]));
if (detail.length) {
  const parent = new Int32Array(s.nodes.length / loaded.nf).fill(-1);
  const parentEdge = new Array(s.nodes.length / loaded.nf);
  for (let i = 0, e = 0; i < s.nodes.length; i += loaded.nf) {
    const edges = s.nodes[i + loaded.iEdges];
    for (let j = 0; j < edges; j++, e += loaded.ef) {
      const et = loaded.edgeTypes[s.edges[e + loaded.eType]];
      if (et === 'weak' || et === 'shortcut') continue;
      const to = s.edges[e + loaded.eTo] / loaded.nf;
      if (parent[to] !== -1) continue;
      parent[to] = i / loaded.nf;
      parentEdge[to] = et === 'element' || et === 'hidden' ? `[${et}]` : String(s.strings[s.edges[e + loaded.eName]]);
    }
  }
  for (let i = 0; i < s.nodes.length; i += loaded.nf) {
    const k = keyOf(loaded, i);
    const m = detailOut.get(k);
    if (!m || idleIds.has(s.nodes[i + loaded.iId])) continue;
    const n = i / loaded.nf;
    const p1 = parent[n];
    const p2 = p1 >= 0 ? parent[p1] : -1;
    const path = `${p2 >= 0 ? `${keyOf(loaded, p2 * loaded.nf)}.${parentEdge[p1]}` : '?'} → ${p1 >= 0 ? `${keyOf(loaded, p1 * loaded.nf)}.${parentEdge[n]}` : '?'}`;
    const g = m.get(path) ?? { size: 0, count: 0 };
    g.size += s.nodes[i + loaded.iSize];
    g.count++;
    m.set(path, g);
  }
}

const total = rows.reduce((a, r) => a + r.size, 0);
const fmt = (x) => (Math.round(x * 10) / 10).toLocaleString('en-US');
console.log(`heap growth ${fmt(total / 1048576)} MB = ${fmt(total / N)} bytes per connection (${N} connections), by group:\n`);
console.log('| group | bytes / connection | objects / connection | held by (commonest) |');
console.log('| --- | --- | --- | --- |');
for (const r of top) {
  const h = [...holders.get(r.k).entries()].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([k, c]) => `${k} (${fmt(c / N)}/conn)`).join('; ');
  console.log(`| ${r.k.replace(/\|/g, '\\|')} | ${fmt(r.size / N)} | ${fmt(r.count / N)} | ${h.replace(/\|/g, '\\|')} |`);
}
for (const [k, m] of detailOut) {
  console.log(`\n${k}: bytes per connection by holder\n`);
  for (const [path, g] of [...m.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, 15)) console.log(`  ${fmt(g.size / N).padStart(8)} B  ${fmt(g.count / N).padStart(5)} obj  ${path}`);
}
