#!/usr/bin/env node
// A worker of the backend log (docs/channels.md, "Backend log"): plain Node
// and ioredis, consumer groups, at least once, in order per channel (and
// per user).
//
//   BACKEND_LOG_PARTITIONS=8 REDIS_URL=redis://127.0.0.1:6379 npm start      # the server
//   PARTITIONS=8 REDIS_URL=redis://127.0.0.1:6379 node examples/backend-log-consumer.mjs
//
// Settings (environment):
//   REDIS_URL or REDIS_CLUSTER_NODES (host:port,...)   where the server's Redis is
//   KEY_PREFIX        the server's REDIS_KEY_PREFIX (default rm:)
//   PARTITIONS        the server's BACKEND_LOG_PARTITIONS (required)
//   OWN               the partitions this worker owns, e.g. 0,1,2 (default all)
//   GROUP             consumer group name (default workers)
//   CONSUMER          this worker's name in the group (default host-pid)
//   CLAIM_IDLE_MS     pending entries idle this long belong to a dead worker (default 30000;
//                     must exceed the longest time one entry takes to process)
//   BATCH, BLOCK_MS, PROCESS_DELAY_MS (slows processing down, for demos and tests)
//
// Order: a consumer group hands the entries of one stream to whichever
// consumer asks, so two live consumers on one partition would process a
// channel's publications in parallel, out of order. Give each partition to
// one worker at a time (OWN), as Kafka assigns partitions; run a spare that
// takes over the partitions of a worker that died. A worker that starts
// first finishes what its predecessor left pending (its own pending entries
// if it restarts under the same name, then those of others, claimed with
// XAUTOCLAIM once idle for CLAIM_IDLE_MS), and only then reads new entries.
//
// At least once: an entry is acknowledged (XACK) after it is processed; a
// worker killed in between leaves it pending, and the next one processes it
// again. Make processing idempotent: a publication is identified by
// (channel, epoch, offset), a status event by (user, seq).
//
// Output: one JSON line per processed entry on stdout ({"event":"processed",...}).

import { hostname } from 'node:os';
import { Cluster, Redis } from 'ioredis';

const env = process.env;
const PREFIX = env.KEY_PREFIX ?? 'rm:';
const PARTITIONS = Number(env.PARTITIONS);
if (!Number.isSafeInteger(PARTITIONS) || PARTITIONS < 1) {
  console.error('PARTITIONS must be the server\'s BACKEND_LOG_PARTITIONS (an integer >= 1)');
  process.exit(2);
}
const OWN = env.OWN ? env.OWN.split(',').map(Number) : Array.from({ length: PARTITIONS }, (_, p) => p);
const GROUP = env.GROUP ?? 'workers';
const CONSUMER = env.CONSUMER ?? `${hostname()}-${process.pid}`;
const CLAIM_IDLE_MS = Number(env.CLAIM_IDLE_MS ?? 30_000);
const BATCH = Number(env.BATCH ?? 10);
const BLOCK_MS = Number(env.BLOCK_MS ?? 2_000);
const PROCESS_DELAY_MS = Number(env.PROCESS_DELAY_MS ?? 0);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

function connect() {
  if (env.REDIS_CLUSTER_NODES) {
    const nodes = env.REDIS_CLUSTER_NODES.split(',').map((hp) => ({ host: hp.split(':')[0], port: Number(hp.split(':')[1]) }));
    return new Cluster(nodes);
  }
  return new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
}

/** The application's work. Here: one line per entry. */
async function handle(partition, id, entry) {
  if (PROCESS_DELAY_MS > 0) await sleep(PROCESS_DELAY_MS);
  const about = entry.kind === 'publication' ? { channel: entry.channel, epoch: entry.epoch, offset: Number(entry.offset) } : { user: entry.user, seq: Number(entry.seq) };
  out({ event: 'processed', consumer: CONSUMER, partition, id, kind: entry.kind, ...about });
  // entry.payload (publications) is JSON { data, info?, tags? }; entry.record (status) is JSON of the status record.
}

const fieldsOf = (flat) => {
  const o = {};
  for (let i = 0; i + 1 < flat.length; i += 2) o[flat[i]] = flat[i + 1];
  return o;
};

let stopping = false;

/** Processes entries in order, acknowledging each once done; an entry trimmed away (MAXLEN) before it was processed is reported. */
async function process_(redis, key, partition, entries) {
  for (const [id, flat] of entries) {
    if (stopping) return;
    if (flat === null) out({ event: 'lost', consumer: CONSUMER, partition, id, reason: 'trimmed by MAXLEN before it was processed' });
    else await handle(partition, id, fieldsOf(flat));
    await redis.xack(key, GROUP, id);
  }
}

async function readGroup(redis, key, from, block) {
  const args = ['GROUP', GROUP, CONSUMER, 'COUNT', BATCH, ...(block ? ['BLOCK', BLOCK_MS] : []), 'STREAMS', key, from];
  const res = await redis.xreadgroup(...args);
  return res?.[0]?.[1] ?? [];
}

async function consume(redis, partition) {
  const key = `${PREFIX}log:${partition}`;
  try {
    // '0': a new group starts at the oldest entry the partition still holds.
    await redis.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!String(err?.message).includes('BUSYGROUP')) throw err;
  }
  // 1. Our own pending entries (we restarted under the same name).
  for (let batch; !stopping && (batch = await readGroup(redis, key, '0', false)).length > 0; ) await process_(redis, key, partition, batch);
  // 2. Pending entries of a dead worker: claimed once idle for CLAIM_IDLE_MS, in id order; new entries wait until none is left.
  while (!stopping) {
    const [, claimed, deleted] = await redis.xautoclaim(key, GROUP, CONSUMER, CLAIM_IDLE_MS, '0-0', 'COUNT', BATCH);
    for (const id of deleted ?? []) out({ event: 'lost', consumer: CONSUMER, partition, id, reason: 'trimmed by MAXLEN before it was processed' });
    if (claimed.length > 0) {
      out({ event: 'claimed', consumer: CONSUMER, partition, count: claimed.length });
      await process_(redis, key, partition, claimed);
      continue;
    }
    const [pending] = await redis.xpending(key, GROUP);
    if (Number(pending) === 0) break;
    await sleep(Math.min(CLAIM_IDLE_MS, 200)); // not idle long enough yet
  }
  // 3. New entries.
  while (!stopping) await process_(redis, key, partition, await readGroup(redis, key, '>', true));
}

const conns = OWN.map(() => connect());
out({ event: 'started', consumer: CONSUMER, group: GROUP, partitions: OWN });
const stop = () => {
  stopping = true;
  for (const c of conns) c.disconnect();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const results = await Promise.allSettled(OWN.map((p, i) => consume(conns[i], p)));
const failed = results.find((r) => r.status === 'rejected');
if (failed && !stopping) {
  console.error(failed.reason);
  stop();
  process.exitCode = 1;
}
out({ event: 'stopped', consumer: CONSUMER });
