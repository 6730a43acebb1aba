#!/usr/bin/env node
// Starts, on loopback, the user status topology of SPEC §10 for trying it by
// hand: a NATS hub (domain "hub"), two leaf servers (regions eu and us, own
// domains) from deploy/nats/hub.conf and leaf.conf, and one realtime-message
// node per region (STATUS_STORE=nats). Ctrl-C stops everything it started.
//
//   npm run build:app && node deploy/nats/loopback.mjs
//   node deploy/nats/loopback.mjs --check      # start, write in eu, read in us, stop (exit 0/1)
//
// Ports (override with BASE_PORT, default 14200): hub 14200 (clients),
// 14201 (leaf nodes), 14202 (monitor); leaf eu 14210/14212, leaf us
// 14220/14222; service eu http://127.0.0.1:14230, us http://127.0.0.1:14240.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const base = Number(process.env.BASE_PORT ?? 14200);
const check = process.argv.includes('--check');
const natsBin = ['nats-server', '/usr/sbin/nats-server'].find((b) => b.includes('/') ? existsSync(b) : (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, b)))) ?? 'nats-server';
const cli = join(root, 'packages/server/dist/app/cli.js');
if (!existsSync(cli)) {
  console.error(`${cli} is missing: run npm run build:app first`);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'rm-nats-loopback-'));
const children = [];

function start(name, cmd, args, env) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const prefix = `[${name}] `;
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (d) => {
      if (!check) process.stdout.write(d.toString().replace(/^(?=.)/gm, prefix));
    });
  }
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`${prefix}exited (${signal ?? code})`);
  });
  return child;
}

const nats = (name, conf, ports, extra) =>
  start(name, natsBin, ['-c', join(here, conf)], {
    NATS_SERVER_NAME: name,
    NATS_LISTEN: `127.0.0.1:${ports.client}`,
    NATS_MONITOR: `127.0.0.1:${ports.monitor}`,
    NATS_STORE_DIR: join(dir, name),
    ...extra,
  });

async function until(what, fn, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const monitorJson = async (port, path) => (await fetch(`http://127.0.0.1:${port}/${path}`)).json();

let stopping = false;
async function stop(code) {
  stopping = true;
  // Service nodes first (they leave their connections), then the NATS servers.
  for (const c of children.slice().reverse()) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const hub = { client: base, leaf: base + 1, monitor: base + 2 };
const regions = [
  { name: 'eu', client: base + 10, monitor: base + 12, http: base + 30 },
  { name: 'us', client: base + 20, monitor: base + 22, http: base + 40 },
];

try {
  nats('hub', 'hub.conf', hub, { NATS_LEAF_LISTEN: `127.0.0.1:${hub.leaf}` });
  await until('the hub', async () => (await fetch(`http://127.0.0.1:${hub.monitor}/healthz`)).ok);
  for (const r of regions) nats(r.name, 'leaf.conf', r, { NATS_DOMAIN: r.name, NATS_HUB_LEAF_URL: `nats://127.0.0.1:${hub.leaf}` });
  await until('both leaves linked to the hub', async () => ((await monitorJson(hub.monitor, 'leafz')).leafs ?? []).length === regions.length);
  for (const r of regions) {
    start(`node-${r.name}`, process.execPath, [cli], {
      PORT: String(r.http),
      HOST: '127.0.0.1',
      STATUS_STORE: 'nats',
      NATS_URL: `nats://127.0.0.1:${r.client}`,
      NATS_HUB_DOMAIN: 'hub',
      NATS_BUCKET: 'rm_status',
      REGION: r.name,
      NODE_ID: '1',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      DEMO_DIR: 'off',
    });
  }
  for (const r of regions) await until(`node ${r.name} ready`, async () => (await fetch(`http://127.0.0.1:${r.http}/ready`)).ok, 20_000);

  const [eu, us] = regions.map((r) => `http://127.0.0.1:${r.http}`);
  if (check) {
    const id = `loopback-${Date.now()}`;
    const put = await fetch(`${eu}/api/v2/presence/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'busy', message: 'written in eu' }) });
    if (!put.ok) throw new Error(`PUT in eu answered ${put.status}`);
    const started = Date.now();
    await until('the write in eu read in us', async () => (await (await fetch(`${us}/api/v2/presence/${id}`)).json()).message === 'written in eu', 5_000);
    console.log(`ok: written in eu (${eu}), read in us (${us}) after ${Date.now() - started} ms`);
    await stop(0);
  } else {
    console.log(`
User status across two regions on loopback:
  hub      nats://127.0.0.1:${hub.client}   leaf nodes 127.0.0.1:${hub.leaf}   monitor http://127.0.0.1:${hub.monitor}/leafz
  leaf eu  nats://127.0.0.1:${regions[0].client}   node eu ${eu}
  leaf us  nats://127.0.0.1:${regions[1].client}   node us ${us}

  curl -X PUT ${eu}/api/v2/presence/ada -H 'content-type: application/json' -d '{"status":"busy","message":"in a meeting"}'
  curl ${us}/api/v2/presence/ada

Ctrl-C stops everything.`);
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  await stop(1);
}
