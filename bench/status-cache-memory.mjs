#!/usr/bin/env node
// Bytes per record of the server's node-local user status cache, measured in
// process: fills a StatusCache (the built server's, packages/server/dist)
// with RECORDS realistic records and compares the V8 heap after full GCs.
//   npx tsc -b packages/protocol packages/server
//   node --expose-gc bench/status-cache-memory.mjs      # RECORDS=100000
// Counted: the state objects, their strings (user id, message, node id) and
// the cache's own structures (lru-cache's preallocated arrays included).
import { pathToFileURL } from 'node:url';

// The cache of the build that OURS_CLI points at (as the benchmark's server), else of this tree.
const dist = process.env.OURS_CLI ? new URL('../', pathToFileURL(process.env.OURS_CLI)) : new URL('../packages/server/dist/', import.meta.url);
const { StatusCache } = await import(new URL('core/status/cache.js', dist).href);

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const N = Number(process.env.RECORDS ?? 100_000);
const messages = ['in a meeting', 'back at 3 pm', 'on holiday until Monday', 'on the train, slow replies'];

function heap() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/**
 * A record as a store read or write returns it: fresh objects and strings
 * per user (ids and messages arrive from Redis replies or request bodies, so
 * they are not shared), the mix of the status benchmark's seed.
 */
function state(i, now, own) {
  const connected = i % 2 === 0;
  const manual = connected && i % 6 === 0 ? 'busy' : connected && i % 6 === 2 ? 'away' : !connected && i % 4 === 3 ? 'offline' : null;
  const message = i % 6 === 0 ? messages[0] : i % 6 === 2 ? messages[1] : i % 4 === 1 ? messages[2] : i % 10 === 0 ? messages[3] : null;
  return {
    version: 2 + (i % 3),
    seq: 1 + (i % 3),
    connected: false,
    keepAliveUntil: connected ? now + 3_600_000 + i : null,
    manual,
    manualExpiresAt: manual === 'busy' ? now + 3_600_000 + i : null,
    message: message === null || !own ? message : fresh(message),
    messageExpiresAt: null,
    lastSeen: connected ? now + i : null,
    lastActivity: null,
    updatedAt: now + i,
    nodeId: own ? fresh(`bench-${process.pid}`) : NODE_ID,
  };
}

/** A string of its own (not shared with other records), as decoding a reply or a body makes. */
const fresh = (s) => Buffer.from(s).toString();

const NODE_ID = `bench-${process.pid}`;

/**
 * Fills a cache and measures it. `own` strings: every record has its own
 * message and nodeId strings, as the Redis store's decoded replies do; else
 * they are shared, as the memory store's copies share them with the store.
 */
function measure(own) {
  const now = Date.now();
  const before = heap();
  const cache = new StatusCache({ max: Math.max(N, 100_000) });
  const emptyCache = heap();
  // Ids as fresh strings, like a parsed request's.
  const ids = Array.from({ length: N }, (_, i) => fresh(`user-${i}`));
  for (let i = 0; i < N; i++) {
    const done = cache.beginRead(ids[i]);
    done(state(i, now, own));
}
ids.length = 0; // the cache now holds the only references to the ids
const full = heap();
if (cache.size !== N) throw new Error(`cache holds ${cache.size} of ${N} records`);

return {
  // Everything the filled cache holds (ids, states, messages, its arrays), per record.
  bytesPerRecord: Math.round((full - before) / N),
  bytesPerRecordMarginal: Math.round((full - emptyCache) / N),
  emptyCacheKB: Math.round((emptyCache - before) / 1024),
};
}

const redis = measure(true);
const memory = measure(false);
const result = { records: N, ...redis, sharedStrings: memory };
if (process.env.JSON_ONLY) console.log(JSON.stringify(result));
else {
  for (const [name, r] of [['own strings (Redis store replies)', redis], ['strings shared with the store (memory store)', memory]]) {
    console.log(`${N} cached records, ${name}: ${r.bytesPerRecord} bytes/record in all (${r.bytesPerRecordMarginal} beyond the empty cache, whose preallocated arrays take ${r.emptyCacheKB} KB)`);
  }
}
