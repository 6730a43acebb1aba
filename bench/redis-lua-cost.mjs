// What each part of the batched heartbeat script costs Redis, per heartbeat:
// the real script beside variants that keep only its loop and string work,
// then add one command at a time (HGET, HMGET of 2 or 4 fields, HSET of 1 or
// 2 fields, ZADD, PING), run on the hashes and deadline zsets of 1,000 real
// connections (joined by the engine of this tree) in a private redis-server.
// The variants are run in turn, ROUNDS times, so drift of a noisy machine
// hits all of them; medians of the script time (INFO commandstats) and of
// Redis's whole CPU (INFO cpu, argument parsing and the reply included).
// Use it to price a change of the hot script before making it.
//   node bench/redis-lua-cost.mjs        # build first (npm run build)
//   ROUNDS=10 CALLS=300 PORT=39210
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

const dist = new URL('../packages/server/dist', import.meta.url).pathname;
const { RedisEngine, KeySpace } = await import(`${dist}/engines/redis/index.js`);
const { heartbeatBatch } = await import(`${dist}/engines/redis/scripts/heartbeat.js`);
const rounds = Number(process.env.ROUNDS ?? 10);
const callsPerRound = Number(process.env.CALLS ?? 300);
const port = Number(process.env.PORT ?? 39210);
const PER_CALL = 100;

// The batch script's calling convention (KEYS: exp slotIndex per heartbeat;
// ARGV: now ttl lookback keep, then conn epoch per heartbeat), its loop and
// key derivation, and one reply per heartbeat.
const head = `local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local now_s, deadline_s = ARGV[1], string.format('%.17g', now + ttl)
local out = {}
for i = 1, #KEYS, 2 do
  local exp, conn, epoch = KEYS[i], ARGV[4 + i], tonumber(ARGV[5 + i])
  local ck = string.sub(exp, 1, -4) .. 'c:' .. conn
`;
const tail = `  out[#out + 1] = epoch
end
return out`;
const variant = (body) => head + body + tail;
const VARIANTS = {
  'the heartbeat batch script': heartbeatBatch.lua,
  'loop, keys and reply only': `local out = {} for i = 1, #KEYS, 2 do out[#out + 1] = 1 end return out`,
  '+ string work': variant(''),
  '+ PING': variant(`redis.call('PING')\n`),
  '+ HGET 1 field': variant(`redis.call('HGET', ck, '.e')\n`),
  '+ HMGET 2 fields': variant(`redis.call('HMGET', ck, '.e', '.x')\n`),
  '+ HMGET 4 fields': variant(`redis.call('HMGET', ck, '.e', '.x', '.d', '.t')\n`),
  '+ HSET 1 field': variant(`redis.call('HSET', ck, '.x', deadline_s)\n`),
  '+ HSET 2 fields': variant(`redis.call('HSET', ck, '.l', now_s, '.x', deadline_s)\n`),
  '+ ZADD': variant(`redis.call('ZADD', exp, deadline_s, conn)\n`),
};

const server = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
try {
  await sleep(400);
  const redis = new Redis({ port });
  const engine = new RedisEngine({ redis });
  const timing = { ttlMs: 45_000, lookbackMs: 90_000 };
  const conns = [];
  for (let i = 0; i < 1000; i++) {
    const roomId = `room-${i % 100}`;
    const j = await engine.join({ now: Date.now(), ...timing, roomId, userId: `u${i}`, freshConnId: `c${i}`, state: {} });
    conns.push({ roomId, connId: j.connId, epoch: j.epoch });
  }
  const ctx = { keys: new KeySpace(), keySlackMs: 60_000 };
  const shas = {};
  for (const [name, lua] of Object.entries(VARIANTS)) shas[name] = await redis.script('LOAD', lua);
  const info = async () => {
    const text = await redis.info('all');
    const num = (re) => Number(re.exec(text)?.[1] ?? 0);
    return { scriptUs: num(/cmdstat_evalsha:calls=\d+,usec=(\d+)/), cpuS: num(/used_cpu_sys:([\d.]+)/) + num(/used_cpu_user:([\d.]+)/) };
  };
  const run = async (name) => {
    await redis.config('RESETSTAT');
    const before = await info();
    for (let r = 0; r < callsPerRound; r++) {
      const cmds = [];
      for (let k = 0; k < PER_CALL; k++) {
        const c = conns[(r * PER_CALL + k) % conns.length];
        cmds.push({ now: Date.now(), ...timing, roomId: c.roomId, connId: c.connId, epoch: c.epoch, maxStateBytes: 4096 });
      }
      const reply = await redis.evalsha(shas[name], ...heartbeatBatch.args(cmds, ctx));
      if (!Array.isArray(reply) || reply.length !== PER_CALL || reply.some((x) => typeof x !== 'number')) throw new Error(`${name}: unexpected reply ${JSON.stringify(reply).slice(0, 200)}`);
    }
    const after = await info();
    const n = callsPerRound * PER_CALL;
    return { script: after.scriptUs / n, cpu: ((after.cpuS - before.cpuS) * 1e6) / n };
  };
  const results = Object.fromEntries(Object.keys(VARIANTS).map((k) => [k, []]));
  for (const name of Object.keys(VARIANTS)) await run(name); // warm-up pass
  for (let r = 0; r < rounds; r++) for (const name of Object.keys(VARIANTS)) results[name].push(await run(name));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`| variant (${PER_CALL} heartbeats per call, ${rounds} rounds) | script µs per heartbeat | Redis CPU µs per heartbeat |`);
  console.log('| --- | --- | --- |');
  for (const [name, rs] of Object.entries(results)) {
    console.log(`| ${name} | ${median(rs.map((x) => x.script)).toFixed(2)} | ${median(rs.map((x) => x.cpu)).toFixed(2)} |`);
  }
  await engine.close();
  redis.disconnect();
} finally {
  server.kill();
}
