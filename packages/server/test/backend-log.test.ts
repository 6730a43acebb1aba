import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { keysUnder, redisClient, redisNodes, startGateway, startServer, type RedisTarget } from 'realtime-message-testing';
import type { StatusRecord, UserId } from 'realtime-message-protocol';
import { ChannelService, RedisBackend, RedisBroker, type RedisClient } from '../src/index.js';
import { RedisStatusStore } from '../src/engines/redis/status-store.js';
import { checkBackendLogOptions, crc32, logPartition, type BackendLogOptions } from '../src/engines/redis/backend-log.js';
import { createBackends } from '../src/app/backends.js';
import { loadConfig } from '../src/app/config.js';
import type { StatusCommand } from '../src/core/status/store.js';

/** One node: a backend with the log, its broker, status store and a channel service. */
class LogNode {
  readonly backend: RedisBackend;
  readonly broker: RedisBroker;
  readonly status: RedisStatusStore;
  readonly channels: ChannelService;
  constructor(redis: RedisClient, keyPrefix: string, log: BackendLogOptions) {
    this.backend = new RedisBackend({ redis, keyPrefix, backendLog: log, identityCheckIntervalMs: 0 });
    this.broker = new RedisBroker({ backend: this.backend });
    this.status = new RedisStatusStore({ backend: this.backend });
    this.channels = new ChannelService({ broker: this.broker });
  }
  /** Every entry this node's scripts appended is in its partition (Cluster: relayed). */
  settled(): Promise<void> {
    return this.backend.log!.settled();
  }
  async close(): Promise<void> {
    await this.channels.dispose();
    await this.backend.close();
  }
}

interface Entry {
  partition: number;
  id: string;
  fields: Record<string, string>;
}

async function readLog(client: RedisClient, prefix: string, partitions: number): Promise<Entry[]> {
  const out: Entry[] = [];
  for (let p = 0; p < partitions; p++) {
    for (const [id, flat] of await client.xrange(`${prefix}log:${p}`, '-', '+')) {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      out.push({ partition: p, id, fields });
    }
  }
  return out;
}

async function setup(target: RedisTarget, log: BackendLogOptions) {
  const { prefix, clients, first, peer } = await redisNodes(target, 'bl', (redis, keyPrefix) => new LogNode(redis, keyPrefix, log));
  const second = await peer();
  // Partitions have no TTL (they are bounded by length): deleted after the test, as a deployment's are never.
  onTestFinished(async () => {
    const c = redisClient(target);
    for (const k of (await keysUnder(c, prefix)).filter((k) => k.includes(':log'))) await c.del(k);
    c.disconnect();
  });
  const settled = () => Promise.all([first.settled(), second.settled()]);
  return { prefix, client: clients[0]!, a: first, b: second, settled };
}

const base = { nodeId: 'n1', awayAfterMs: 0 };

const targets: Array<[string, () => RedisTarget]> = [
  ['redis', () => ({ url: inject('redisUrl') })],
  ['redis cluster (3 masters)', () => ({ clusterNodes: inject('clusterNodes') })],
];

describe('partition choice', () => {
  it('is crc32(utf8(name)) mod N, as the table in docs/channels.md says (computed independently with zlib)', () => {
    const table: Array<[string, number, number, number, number]> = [
      ['chat:1', 0x32f56e72, 2, 2, 2],
      ['chat:2', 0xabfc3fc8, 0, 0, 8],
      ['news:sport', 0x3803f665, 1, 5, 5],
      ['café', 0x98ad42b5, 1, 5, 5],
      ['orders:42', 0x0cff44c5, 1, 5, 5],
      ['ada', 0x8d708768, 0, 0, 8],
      ['bob', 0xf5cbb140, 0, 0, 0],
    ];
    for (const [name, crc, p4, p8, p16] of table) {
      expect(crc32(name), name).toBe(crc);
      expect([logPartition(name, 4), logPartition(name, 8), logPartition(name, 16)], name).toEqual([p4, p8, p16]);
    }
  });

  it('settings are validated', () => {
    expect(checkBackendLogOptions({ partitions: 8 })).toEqual({ partitions: 8, maxLen: 100_000, repairIntervalMs: 10_000 });
    for (const bad of [0, -1, 1.5, 1025, Number.NaN]) expect(() => checkBackendLogOptions({ partitions: bad })).toThrow(/partitions must be an integer 1\.\.1024/);
    for (const bad of [0, 2.5, 2e9]) expect(() => checkBackendLogOptions({ partitions: 2, maxLen: bad })).toThrow(/maxLen/);
    expect(() => checkBackendLogOptions({ partitions: 2, repairIntervalMs: 1 })).toThrow(/repairIntervalMs/);
    expect(() => createBackends({ backendLog: { partitions: 2 } })).toThrow(/backendLog needs `redis`/);
    // 0 partitions is off: the memory backends accept it.
    expect(createBackends({ backendLog: { partitions: 0 } }).kind).toBe('memory');
  });

  it('BACKEND_LOG_PARTITIONS and BACKEND_LOG_MAXLEN', () => {
    const redis = { REDIS_URL: 'redis://127.0.0.1:1' };
    expect(loadConfig(redis).backendLog).toBeUndefined();
    expect(loadConfig({ ...redis, BACKEND_LOG_PARTITIONS: '0' }).backendLog).toBeUndefined();
    expect(loadConfig({ ...redis, BACKEND_LOG_PARTITIONS: '16' }).backendLog).toEqual({ partitions: 16, maxLen: 100_000 });
    expect(loadConfig({ ...redis, BACKEND_LOG_PARTITIONS: '4', BACKEND_LOG_MAXLEN: '500' }).backendLog).toEqual({ partitions: 4, maxLen: 500 });
    expect(() => loadConfig({ ...redis, BACKEND_LOG_PARTITIONS: '1025' })).toThrow(/BACKEND_LOG_PARTITIONS must be 0 \(off\) \.\. 1024/);
    expect(() => loadConfig({ ...redis, BACKEND_LOG_PARTITIONS: 'x' })).toThrow(/BACKEND_LOG_PARTITIONS must be an integer/);
    expect(() => loadConfig({ ...redis, BACKEND_LOG_PARTITIONS: '4', BACKEND_LOG_MAXLEN: '0' })).toThrow(/BACKEND_LOG_MAXLEN must be an integer >= 1/);
    expect(() => loadConfig({ BACKEND_LOG_PARTITIONS: '4' })).toThrow(/BACKEND_LOG_PARTITIONS needs REDIS_URL or REDIS_CLUSTER_NODES/);
  });
});

describe('initPresence({ backendLog })', () => {
  it('passes the option to the backends: a publication and a status event land in the log', async () => {
    const keyPrefix = `blg:${randomUUID().slice(0, 8)}:`;
    const gw = await startGateway({ redisUrl: inject('redisUrl'), keyPrefix, backendLog: { partitions: 2, maxLen: 1_000 } });
    await gw.runtime.channels!.publish('chat:1', { hi: 1 });
    await gw.runtime.status!.set('ada' as UserId, { status: 'online', ttlSeconds: 60 });
    const redis = new Redis(inject('redisUrl'));
    try {
      const keys = await redis.keys(`${keyPrefix}log:*`);
      const kinds = new Set<string>();
      for (const k of keys) for (const [, f] of await redis.xrange(k, '-', '+')) kinds.add(f[1]!);
      expect(kinds).toEqual(new Set(['publication', 'status']));
      await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
    await expect(startGateway({ backendLog: { partitions: 2 } })).rejects.toThrow(/backendLog needs `redis`/);
  });
});

describe('the standalone server with BACKEND_LOG_PARTITIONS', () => {
  it('logs a publication made through the server API', async () => {
    const prefix = `bls:${randomUUID().slice(0, 8)}:`;
    const key = 'backend-log-test-key-0123456789';
    const { url } = await startServer({ REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: prefix, BACKEND_LOG_PARTITIONS: '3', BACKEND_LOG_MAXLEN: '1000', API_KEY: key });
    const res = await fetch(`${url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ channel: 'chat:1', data: { hi: 1 } }) });
    expect(res.status).toBe(200);
    const redis = new Redis(inject('redisUrl'));
    try {
      const p = logPartition('chat:1', 3);
      const entries = await redis.xrange(`${prefix}log:${p}`, '-', '+');
      expect(entries.map(([, f]) => [f[1], f[3], f[7], f[9]])).toEqual([['publication', 'chat:1', '1', '{"data":{"hi":1}}']]);
      await redis.del(`${prefix}log:${p}`);
    } finally {
      redis.disconnect();
    }
  });
});

describe.each(targets)('backend log on %s', (_name, target) => {
  it('every publication from two nodes appears exactly once, in its partition, in offset order per channel', async () => {
    const N = 4;
    const { prefix, client, a, b, settled } = await setup(target(), { partitions: N });
    const channels = ['chat:1', 'chat:2', 'news:sport', 'café', 'orders:42', 'x'];
    const published = new Map<string, Array<{ offset: number; epoch: string; n: number }>>();
    await Promise.all(
      [a, b].flatMap((node, k) =>
        channels.map(async (ch) => {
          for (let i = 0; i < 25; i++) {
            const n = k * 1000 + i;
            const pos = await node.channels.publish(ch, { n, text: `é ${n}` });
            const list = published.get(ch) ?? [];
            list.push({ ...pos, n });
            published.set(ch, list);
          }
        }),
      ),
    );
    await settled();
    const entries = await readLog(client, prefix, N);
    expect(entries).toHaveLength(channels.length * 50);
    for (const ch of channels) {
      const mine = entries.filter((e) => e.fields.channel === ch);
      // The script computed the partition (Lua CRC-32) where the node expects it (TypeScript CRC-32).
      expect(new Set(mine.map((e) => e.partition)), ch).toEqual(new Set([logPartition(ch, N)]));
      expect(mine.map((e) => Number(e.fields.offset))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const byOffset = new Map(published.get(ch)!.map((p) => [p.offset, p]));
      for (const e of mine) {
        expect(Object.keys(e.fields)).toEqual(['kind', 'channel', 'epoch', 'offset', 'payload', 'ts']);
        expect(e.fields.kind).toBe('publication');
        const p = byOffset.get(Number(e.fields.offset))!;
        expect(e.fields.epoch).toBe(p.epoch);
        expect(JSON.parse(e.fields.payload!)).toEqual({ data: { n: p.n, text: `é ${p.n}` } });
        expect(Number(e.fields.ts)).toBeGreaterThan(Date.now() - 60_000);
      }
    }
    // Nothing but the partitions is left of the log (Cluster: outboxes and relay locks deleted once relayed).
    const logKeys = (await keysUnder(client, prefix)).filter((k) => k.startsWith(`${prefix}log`));
    expect(logKeys.every((k) => /:log:\d$/.test(k)), logKeys.join()).toBe(true);
  });

  it('a refused publish writes nothing: not in the log, not in history; a publication without history is not logged', async () => {
    const N = 2;
    const { prefix, client, a, settled } = await setup(target(), { partitions: N });
    await expect(a.channels.publish('chat:1', 'x'.repeat(70_000))).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(a.channels.publish('bad{name}', 1)).rejects.toMatchObject({ code: 'invalid_payload' });
    // The log key (or the slot's outbox) holds something else: the script refuses before it writes.
    const log = a.backend.log!;
    const key = log.target('chat:1', a.backend.keys.channel('chat:1').slot).key;
    await client.set(key, 'not a stream');
    await expect(a.channels.publish('chat:1', { n: 1 })).rejects.toMatchObject({ code: 'internal' });
    expect(await client.exists(a.backend.keys.channel('chat:1').meta, a.backend.keys.channel('chat:1').stream)).toBe(0);
    await client.del(key);
    await a.channels.publish('chat:1', { n: 2 });
    // skipHistory: delivered, not stored, so not in the log either.
    expect(await a.channels.publish('chat:1', { typing: true }, { skipHistory: true })).toMatchObject({ offset: 0 });
    await settled();
    const entries = await readLog(client, prefix, N);
    expect(entries.map((e) => [e.fields.channel, e.fields.offset, e.fields.payload])).toEqual([['chat:1', '1', '{"data":{"n":2}}']]);
  });

  it('every status event (writes on two nodes and the sweep) appears exactly once, in seq order per user', async () => {
    const N = 3;
    const { prefix, client, a, b, settled } = await setup(target(), { partitions: N });
    const t0 = Date.now();
    const users = ['ada', 'bob', 'zoë', 'u-4', 'u-5'];
    const expected = new Map<string, StatusRecord[]>();
    const record = (u: string, e: StatusRecord | undefined) => e && expected.set(u, [...(expected.get(u) ?? []), e]);
    await Promise.all(
      users.map(async (u, i) => {
        const userId = u as UserId;
        const write = (node: LogNode, cmd: StatusCommand) => node.status.write(cmd).then((r) => record(u, r.event));
        await write(a, { ...base, userId, now: t0, type: 'set', manual: null, manualExpiresAt: null, keepAliveUntil: t0 + 1_000, messageExpiresAt: null });
        await write(b, { ...base, userId, now: t0 + 1, type: 'set', manual: 'busy', manualExpiresAt: null, messageExpiresAt: null });
        await write(a, { ...base, userId, now: t0 + 2, type: 'activity' }); // no change, no event
        await write(b, { ...base, userId, now: t0 + 3, type: 'set', manual: 'busy', manualExpiresAt: null, message: `m${i}`, messageExpiresAt: null });
        await write(a, { ...base, userId, now: t0 + 4, type: 'conn', conn: `c${i}`, epoch: 1, live: true });
        await write(b, { ...base, userId, now: t0 + 5, type: 'conn', conn: `c${i}`, epoch: 1, live: false });
        await write(a, { ...base, userId, now: t0 + 6, type: 'clear' });
      }),
    );
    // The keep-alives end at t0 + 1000: the sweep (on both nodes) emits each user's offline event once.
    let swept = 0;
    for (const node of [a, b, a]) {
      for (let more = true; more; ) {
        const r = await node.status.sweep({ ...base, now: t0 + 5_000, limit: 100, intervalMs: 1_000 });
        swept += r.events;
        more = r.more;
      }
    }
    expect(swept).toBe(users.length);
    await settled();
    const entries = await readLog(client, prefix, N);
    for (const u of users) {
      const mine = entries.filter((e) => e.fields.user === u);
      expect(new Set(mine.map((e) => e.partition))).toEqual(new Set([logPartition(u, N)]));
      expect(Object.keys(mine[0]!.fields)).toEqual(['kind', 'user', 'seq', 'record', 'ts']);
      const records = mine.map((e) => JSON.parse(e.fields.record!) as StatusRecord);
      // The writes' events, in order, then the sweep's offline event; seq 1, 2, 3... with no gap or repeat.
      expect(records.slice(0, -1)).toEqual(expected.get(u));
      expect(records.at(-1)).toMatchObject({ userId: u, status: 'offline' });
      expect(mine.map((e) => Number(e.fields.seq))).toEqual(records.map((_, i) => i + 1));
      expect(mine.every((e) => e.fields.kind === 'status')).toBe(true);
    }
    expect(entries).toHaveLength([...expected.values()].reduce((n, l) => n + l.length, 0) + users.length);
  });

  it('MAXLEN ~ bounds each partition', async () => {
    const { prefix, client, a, settled } = await setup(target(), { partitions: 1, maxLen: 50 });
    for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 20 }, (_, j) => a.channels.publish(`c${j}`, i)));
    await settled();
    const len = await client.xlen(`${prefix}log:0`);
    // `~` trims whole stream nodes (100 entries by default): never more than maxLen + one node.
    expect(len).toBeGreaterThanOrEqual(50);
    expect(len).toBeLessThanOrEqual(150);
    expect(await client.pttl(`${prefix}log:0`)).toBe(-1); // bounded by length, not by time
  });
});

describe('backend log on a Redis Cluster: the outbox relay', () => {
  it('entries a node wrote but did not relay (it died) are relayed by another node, once each and in order', async () => {
    const N = 2;
    const { prefix, client, a, b } = await setup({ clusterNodes: inject('clusterNodes') }, { partitions: N, repairIntervalMs: 60_000 });
    a.backend.log!.close(); // a "dies" right after each script: its outboxes stay behind
    for (let i = 1; i <= 20; i++) await Promise.all(['chat:1', 'chat:2', 'orders:42'].map((ch) => a.channels.publish(ch, i)));
    expect(await readLog(client, prefix, N)).toHaveLength(0);
    const outboxes = (await keysUnder(client, prefix)).filter((k) => k.includes(':logq:'));
    expect(outboxes.length).toBeGreaterThan(0);
    expect(await b.backend.log!.repair()).toBe(outboxes.length);
    await b.settled();
    const entries = await readLog(client, prefix, N);
    for (const ch of ['chat:1', 'chat:2', 'orders:42']) {
      const mine = entries.filter((e) => e.fields.channel === ch);
      expect(mine.map((e) => [e.partition, Number(e.fields.offset), e.fields.payload])).toEqual(
        Array.from({ length: 20 }, (_, i) => [logPartition(ch, N), i + 1, `{"data":${i + 1}}`]),
      );
      // The outbox entry's `p` field is dropped on the way.
      expect(Object.keys(mine[0]!.fields)).toEqual(['kind', 'channel', 'epoch', 'offset', 'payload', 'ts']);
    }
    expect((await keysUnder(client, prefix)).filter((k) => k.includes(':logq:'))).toEqual([]);
  });

  it('an outbox held by another relayer is retried, then relayed', async () => {
    const { prefix, client, a } = await setup({ clusterNodes: inject('clusterNodes') }, { partitions: 1 });
    const outbox = a.backend.keys.logOutbox(a.backend.keys.channel('chat:1').slot);
    await client.set(`${outbox}:lk`, 'someone else', 'PX', 300);
    await a.channels.publish('chat:1', 1);
    expect(await a.backend.log!.relaySlot(a.backend.keys.channel('chat:1').slot)).toBe('busy');
    await a.settled();
    expect((await readLog(client, prefix, 1)).map((e) => e.fields.offset)).toEqual(['1']);
  });
});
