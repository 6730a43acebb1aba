#!/usr/bin/env node
// Bytes delivered by state updates (issue 12, "Amplification"): one member of
// a room of MEMBERS, each with a STATE_BYTES state, sends PATCHES one-key
// patches; every member socket counts the Socket.IO bytes it receives while
// they are delivered. Run once with every socket in the default full-state
// form (`updates: 'state'`, the original protocol) and once with every socket
// in the patch form (`updates: 'patch'`, what the SDK asks for).
//   npx tsc -b && node bench/update-bytes.mjs            (memory engine)
//   ENGINE=redis node bench/update-bytes.mjs             (a private redis-server)
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as ioc } from 'socket.io-client';
import { startRedis } from './lib/redis.mjs';

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const MEMBERS = num('MEMBERS', 50);
const STATE_BYTES = num('STATE_BYTES', 16_000);
const PATCHES = num('PATCHES', 200);
const ENGINE = env.ENGINE ?? 'memory';
const { initPresence } = await import(new URL('../packages/server/dist/index.js', import.meta.url).href);

const redis = ENGINE === 'redis' ? await startRedis() : undefined;

async function run(form) {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], maxHttpBufferSize: 1e7 });
  const client = redis ? new Redis(redis.url) : undefined;
  const runtime = initPresence({ io, redis: client, keyPrefix: `ub${form}:`, rateLimit: false, snapshotBytesPerSecond: false });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${http.address().port}`;
  const roomId = `room-${form}`;
  const sockets = [];
  let bytes = 0;
  let updates = 0;
  let counting = false;
  for (let i = 0; i < MEMBERS; i++) {
    const s = ioc(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise((resolve, reject) => s.once('connect', resolve).once('connect_error', reject));
    s.io.engine.on('data', (d) => {
      if (counting) bytes += typeof d === 'string' ? Buffer.byteLength(d) : d.byteLength;
    });
    s.on('presence:event', (e) => {
      if (counting && e.type === 'update') updates++;
    });
    const ack = await s.timeout(10_000).emitWithAck('presence:join', { roomId, userId: `u${i}`, state: { blob: 'x'.repeat(STATE_BYTES), n: 0 }, updates: form });
    if (!ack.ok) throw new Error(JSON.stringify(ack));
    sockets.push(s);
  }
  counting = true;
  const sender = sockets[0];
  let patchBytes = 0;
  for (let i = 1; i <= PATCHES; i++) {
    const payload = { roomId, patchState: { n: i } };
    patchBytes += Buffer.byteLength(JSON.stringify(payload.patchState));
    const ack = await sender.timeout(10_000).emitWithAck('presence:heartbeat', payload);
    if (!ack.ok) throw new Error(JSON.stringify(ack));
  }
  const want = PATCHES * MEMBERS;
  const deadline = Date.now() + 30_000;
  while (updates < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  counting = false;
  // The sender's own acks are counted too; they are the same in both forms.
  for (const s of sockets) s.disconnect();
  await runtime.dispose({ leave: false });
  await io.close();
  client?.disconnect();
  return { form, updates, bytes, patchBytes };
}

const results = [];
for (const form of ['state', 'patch']) results.push(await run(form));
await redis?.stop();
const [before, after] = results;
const mb = (b) => (b / 1e6).toFixed(2);
console.log(`engine ${ENGINE}, ${MEMBERS} members, ${STATE_BYTES} B state, ${PATCHES} one-key patches (${before.patchBytes} B of patches)`);
for (const r of results) {
  console.log(`updates: '${r.form}'  ${r.updates} update events delivered, ${mb(r.bytes)} MB received (${(r.bytes / r.patchBytes).toFixed(0)}x the patch bytes)`);
}
console.log(`ratio state/patch: ${(before.bytes / after.bytes).toFixed(1)}x fewer bytes with patches`);
