// Redis time of the presence scripts, per heartbeat or per join+leave cycle,
// read from INFO commandstats of a private redis-server: the script calls'
// own time (evalsha) beside the time of the Redis commands they ran. No
// Socket.IO, no load generator: only what Redis spends, so two builds can be
// compared in the same minutes on a noisy machine (run them alternately).
//   node bench/redis-script-cost.mjs                    # this tree (build it first)
//   DIST=/tmp/rm-previous-<sha>/packages/server/dist node bench/redis-script-cost.mjs
//   MODE=heartbeat|churn ROUNDS=500 PORT=39200
// heartbeat: 1,000 connections in 100 rooms, 200 concurrent heartbeats per
// round (batched as the server batches them); churn: 100 joins then their
// 100 leaves per round, over 100 rooms.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';

const dist = process.env.DIST ?? new URL('../packages/server/dist', import.meta.url).pathname;
const { RedisEngine, REDIS_BATCHED_COMMANDS } = await import(pathToFileURL(`${dist}/engines/redis/index.js`).href);
const mode = process.env.MODE ?? 'heartbeat';
const rounds = Number(process.env.ROUNDS ?? (mode === 'churn' ? 200 : 500));
const port = Number(process.env.PORT ?? 39200);

const server = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
try {
  await sleep(500);
  const redis = new Redis({ port, enableAutoPipelining: true, autoPipeliningIgnoredCommands: [...(REDIS_BATCHED_COMMANDS ?? [])] });
  const engine = new RedisEngine({ redis });
  const timing = { ttlMs: 45_000, lookbackMs: 90_000 };

  const commandStats = async () => {
    const out = {};
    for (const line of (await redis.info('commandstats')).split('\n')) {
      if (!line.startsWith('cmdstat_')) continue;
      const [name, rest] = line.trim().split(':');
      const f = Object.fromEntries(rest.split(',').map((kv) => kv.split('=')));
      out[name.slice(8)] = { calls: Number(f.calls), usec: Number(f.usec) };
    }
    return out;
  };

  let conns = [];
  if (mode === 'heartbeat') {
    for (let i = 0; i < 1000; i++) {
      const roomId = `room-${i % 100}`;
      const j = await engine.join({ now: Date.now(), ...timing, roomId, userId: `u${i}`, freshConnId: `c${i}`, state: {} });
      conns.push({ roomId, connId: j.connId, epoch: j.epoch });
    }
  }

  let next = 0;
  const round = async () => {
    if (mode === 'heartbeat') {
      const acks = await Promise.all(
        Array.from({ length: 200 }, (_, k) => {
          const c = conns[(next + k) % conns.length];
          return engine.heartbeat({ now: Date.now(), ...timing, roomId: c.roomId, connId: c.connId, epoch: c.epoch, maxStateBytes: 4096 });
        }),
      );
      next += 200;
      if (acks.some((a) => !a.ok)) throw new Error(`a heartbeat failed: ${JSON.stringify(acks.find((a) => !a.ok))}`);
      return 200;
    }
    const joined = await Promise.all(
      Array.from({ length: 100 }, () => {
        const i = next++;
        const roomId = `room-${i % 100}`;
        return engine.join({ now: Date.now(), ...timing, roomId, userId: `u${i}`, freshConnId: `c${i}`, state: { a: 1 } }).then((j) => ({ roomId, j }));
      }),
    );
    const left = await Promise.all(joined.map(({ roomId, j }) => engine.leave({ now: Date.now(), ...timing, roomId, connId: j.connId, epoch: j.epoch, reason: 'leave' })));
    if (left.some((l) => !l.ok)) throw new Error('a leave failed');
    return 100;
  };

  // One warm-up pass, then the measured one.
  for (let pass = 0; pass < 2; pass++) {
    await redis.config('RESETSTAT');
    let n = 0;
    for (let r = 0; r < rounds; r++) n += await round();
    if (pass === 0) continue;
    const s = await commandStats();
    const per = (usec) => Math.round((usec / n) * 100) / 100;
    const inner = Object.entries(s)
      .filter(([k]) => !['evalsha', 'eval', 'info', 'config|resetstat', 'config'].includes(k))
      .reduce((sum, [, v]) => sum + v.usec, 0);
    const unit = mode === 'heartbeat' ? 'heartbeat' : 'join+leave cycle';
    console.log(
      JSON.stringify({
        mode,
        dist,
        [`${unit}s`]: n,
        perScriptCall: Math.round((n / (s.evalsha?.calls ?? 1)) * 10) / 10,
        [`scriptMicrosPer${mode === 'heartbeat' ? 'Heartbeat' : 'Cycle'}`]: per(s.evalsha?.usec ?? 0),
        [`commandMicrosPer${mode === 'heartbeat' ? 'Heartbeat' : 'Cycle'}`]: per(inner),
        scriptToCommands: Math.round(((s.evalsha?.usec ?? 0) / Math.max(1, inner)) * 100) / 100,
      }),
    );
  }
  await engine.close();
  redis.disconnect();
} finally {
  server.kill();
}
