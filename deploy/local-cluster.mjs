#!/usr/bin/env node
// A local cluster on loopback, for trying the multi-node setup by hand
// (docs/deploy.md): a private redis-server, three realtime-message nodes
// sharing it, and nginx with deploy/nginx/realtime-message.conf in front of
// them, every port free and chosen at start. Prints the URL to open; Ctrl-C
// drains the nodes and stops everything it started.
//
//   npm run cluster:local                      # builds, then runs this file
//   node deploy/local-cluster.mjs --nodes 5    # another number of nodes
//   node deploy/local-cluster.mjs --check      # start, check through nginx, stop (exit 0/1)
//
// Environment: PORT (nginx's port; default a free one), LOG_LEVEL (the
// nodes'; default warn), and any server setting (PRESENCE_TTL_MS, API_KEY,
// AUTH_JWT_SECRET...), passed to every node.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nginxBinary, renderNginxConf } from './nginx/render.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'packages/server/dist/app/cli.js');
const check = process.argv.includes('--check');
const nodesArg = process.argv.indexOf('--nodes');
const count = nodesArg > 0 ? Number(process.argv[nodesArg + 1]) : 3;
if (!Number.isInteger(count) || count < 1 || count > 16) {
  console.error('--nodes must be 1..16');
  process.exit(2);
}
if (!existsSync(cli)) {
  console.error(`${cli} is missing: run npm run build:app first (npm run cluster:local does)`);
  process.exit(1);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'rm-local-cluster-'));
const children = [];
let stopping = false;

function start(name, cmd, args, env = {}) {
  // Own process group: Ctrl-C reaches this script only, which stops the children in order.
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const entry = children.find((c) => c.name === name);
  if (entry) entry.child = child;
  else children.push({ name, child });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (d) => {
      if (!check) process.stdout.write(d.toString().replace(/^(?=.)/gm, `[${name}] `));
    });
  }
  child.on('error', (err) => {
    console.error(`[${name}] could not start ${cmd}: ${err.message}`);
    void stop(1);
  });
  child.on('exit', (code, signal) => {
    if (stopping) return;
    if (name.startsWith('node')) {
      // A supervisor's job: a node that stopped (a drain after kill -TERM, or a crash) starts again.
      console.error(`[${name}] exited (${signal ?? code}); starting it again`);
      setTimeout(() => {
        if (!stopping) console.error(`[${name}] started again, pid ${start(name, cmd, args, env).pid}`);
      }, 500);
      return;
    }
    console.error(`[${name}] exited (${signal ?? code}); stopping the cluster`);
    void stop(1);
  });
  return child;
}

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

async function stop(code) {
  if (stopping) return;
  stopping = true;
  // Nodes first (they drain: their clients move on, nothing leaves), then nginx, then Redis.
  const order = [...children.filter((c) => c.name.startsWith('node')), ...children.filter((c) => c.name === 'nginx'), ...children.filter((c) => c.name === 'redis')];
  for (const group of [order.filter((c) => c.name.startsWith('node')), order.filter((c) => !c.name.startsWith('node'))]) {
    for (const { child } of group) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.all(group.map(({ child }) => (child.exitCode === null && child.signalCode === null ? new Promise((r) => child.once('exit', r)) : undefined)));
  }
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  const redisPort = await freePort();
  start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning']);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const nodePorts = [];
  for (let i = 0; i < count; i++) nodePorts.push(await freePort());
  // The settings every node must share (docs/deploy.md), and TRUST_PROXY for nginx on loopback.
  const shared = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: process.env.REDIS_KEY_PREFIX ?? 'rm:', TRUST_PROXY: process.env.TRUST_PROXY ?? 'loopback', HOST: '127.0.0.1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
  nodePorts.forEach((port, i) => start(`node${i + 1}`, process.execPath, [cli], { ...shared, PORT: String(port), NODE_ID: `node${i + 1}` }));
  const port = process.env.PORT ? Number(process.env.PORT) : await freePort();
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, renderNginxConf({ nodes: nodePorts.map((p) => `127.0.0.1:${p}`), listen: `127.0.0.1:${port}`, prefix: dir }));
  start('nginx', nginxBinary(), ['-c', conf, '-p', dir, '-g', 'daemon off;']);

  for (const p of nodePorts) await until(`the node on ${p}`, async () => (await fetch(`http://127.0.0.1:${p}/ready`)).ok);
  const url = `http://127.0.0.1:${port}`;
  await until('nginx', async () => (await fetch(`${url}/nginx-health`)).ok);
  if (check) {
    const ready = await fetch(`${url}/ready`);
    const body = await ready.json();
    const ok = ready.status === 200 && body.engine === 'redis';
    console.log(ok ? `ok: ${count} nodes behind nginx at ${url}, /ready through nginx: ${JSON.stringify(body)}` : `not ready: ${ready.status} ${JSON.stringify(body)}`);
    await stop(ok ? 0 : 1);
  } else {
    console.log(`
realtime-message local cluster: ${count} nodes on one Redis behind nginx

  open           ${url}/               (the demo; Socket.IO, Centrifugo and the APIs too)
  nodes          ${nodePorts.map((p, i) => `node${i + 1} http://127.0.0.1:${p} (pid ${children.find((c) => c.name === `node${i + 1}`).child.pid})`).join('\n                 ')}
  redis          ${redisUrl}
  nginx config   ${conf}

Drain a node with kill -TERM <its pid>: its clients move to the others with no
leave and no join, and it starts again half a second after it exits (a
rolling restart by hand). Ctrl-C stops everything.
`);
  }
} catch (err) {
  console.error(`local cluster: ${err.message}`);
  await stop(1);
}
