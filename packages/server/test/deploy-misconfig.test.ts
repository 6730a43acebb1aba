// A misconfigured node is detected at start and in /ready (docs/deploy.md,
// "Settings that must match"), not discovered later as ghosts: other presence
// timings than the nodes already running, a clock far off, another key prefix
// on the same Redis. Each test has its own redis-server, so that the nodes of
// other tests (other prefixes) do not show up.
import type { IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { NodeProcess, startRedis, waitFor } from 'realtime-message-testing';
import { CLUSTER_REGISTRY_KEY, ClusterCheck, type ClusterSettings } from '../src/app/cluster-check.js';
import { parseTrustedProxies, type TrustedProxies } from '../src/app/trusted-proxies.js';

vi.setConfig({ testTimeout: 30_000 });

async function ready(node: NodeProcess): Promise<{ status: number; body: { checks: Record<string, string> } }> {
  const r = await node.get('/ready');
  return { status: r.status, body: JSON.parse(r.body) };
}

describe('cluster check (Redis)', () => {
  it('a node started with another PRESENCE_TTL_MS than the running ones says so and is not ready; the running one only warns', async () => {
    const redis = await startRedis();
    const a = await NodeProcess.start({ REDIS_URL: redis.url, PRESENCE_TTL_MS: '30000' });
    const b = await NodeProcess.start({ REDIS_URL: redis.url, PRESENCE_TTL_MS: '10000' });
    expect(b.logs.join('\n')).toMatch(/cluster check: settings differ from another node with REDIS_KEY_PREFIX=rm:: PRESENCE_TTL_MS=10000 here, 30000 on node/);
    expect(await ready(b)).toEqual({ status: 503, body: expect.objectContaining({ checks: { redis: 'ok', cluster: 'unavailable' } }) });
    expect((await ready(a)).status).toBe(200);
    // The running node notices at its next round, and stays ready.
    await waitFor(() => a.logs.some((l) => l.includes('that node started later')), { timeoutMs: 8_000, what: 'the warning on the running node' });
    expect((await ready(a)).status).toBe(200);
    // Once the wrong node is gone, nothing is reported any more; a node with the right settings is ready.
    await b.kill('SIGTERM');
    const c = await NodeProcess.start({ REDIS_URL: redis.url, PRESENCE_TTL_MS: '30000' });
    expect((await ready(c)).status).toBe(200);
    expect(c.logs.join('\n')).not.toContain('cluster check');
  });

  it('CLUSTER_CHECK=warn reports the difference but keeps the node ready', async () => {
    const redis = await startRedis();
    await NodeProcess.start({ REDIS_URL: redis.url, PRESENCE_DISCONNECT_GRACE_MS: '5000' });
    const b = await NodeProcess.start({ REDIS_URL: redis.url, PRESENCE_DISCONNECT_GRACE_MS: '2000', CLUSTER_CHECK: 'warn' });
    expect(b.logs.join('\n')).toContain('PRESENCE_DISCONNECT_GRACE_MS=2000 here, 5000 on node');
    expect((await ready(b)).status).toBe(200);
  });

  it('a node whose clock is far off Redis\u2019s says so at start and is not ready', async () => {
    const redis = await startRedis();
    // This node's Date.now runs two minutes ahead.
    const node = await NodeProcess.start({ REDIS_URL: redis.url, NODE_OPTIONS: '--import=data:text/javascript,const%20n=Date.now;Date.now=()=>n()+120000;' });
    expect(node.logs.join('\n')).toMatch(/this node's clock is ahead of Redis's by 1\d{5} ms \(at most 5000 ms is tolerated\)/);
    expect(await ready(node)).toEqual({ status: 503, body: expect.objectContaining({ checks: { redis: 'ok', cluster: 'unavailable' } }) });
  });

  it('another REDIS_KEY_PREFIX on the same Redis is reported at start (both stay ready: sharing a Redis may be on purpose)', async () => {
    const redis = await startRedis();
    const a = await NodeProcess.start({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' });
    const b = await NodeProcess.start({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app2:' });
    expect(b.logs.join('\n')).toContain("other nodes on this Redis use REDIS_KEY_PREFIX 'app:' (this node: 'app2:')");
    expect((await ready(a)).status).toBe(200);
    expect((await ready(b)).status).toBe(200);
  });

  it('CLUSTER_CHECK=off, and a bad value is refused at start', async () => {
    const redis = await startRedis();
    const node = await NodeProcess.start({ REDIS_URL: redis.url, NODE_OPTIONS: '--import=data:text/javascript,const%20n=Date.now;Date.now=()=>n()+120000;', CLUSTER_CHECK: 'off' });
    expect((await ready(node)).status).toBe(200);
    const bad = await NodeProcess.start({ CLUSTER_CHECK: 'loose' }, { waitReady: false });
    expect(await bad.waitExit()).toBe(2);
    expect(bad.logs.join('\n')).toContain("CLUSTER_CHECK must be 'strict', 'warn' or 'off'");
  });
});

describe('ClusterCheck (in process)', () => {
  const settings: ClusterSettings = { prefix: 'rm:', ttlMs: 30_000, graceMs: 5_000, lookbackMs: 60_000 };
  async function redisClient(): Promise<Redis> {
    const server = await startRedis();
    const redis = new Redis(server.url);
    onTestFinished(() => redis.disconnect());
    return redis;
  }

  it('newer node with other timings: problems and onChange; the older one only warns; stale entries are dropped; stop leaves the registry', async () => {
    const redis = await redisClient();
    const warnings: string[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: (_o: object, m?: string) => warnings.push(m ?? ''), error: (_o: object, m?: string) => warnings.push(m ?? '') };
    const old = new ClusterCheck({ redis, id: 'old', settings, mode: 'strict', logger });
    await old.start();
    await new Promise((r) => setTimeout(r, 5));
    const changes: Array<readonly string[]> = [];
    const newer = new ClusterCheck({ redis, id: 'new', settings: { ...settings, graceMs: 1_000, lookbackMs: 1 }, mode: 'strict', logger, onChange: (p) => changes.push(p) });
    expect(await newer.round()).toEqual([expect.stringContaining('PRESENCE_DISCONNECT_GRACE_MS=1000 here, 5000 on node old; PRESENCE_REAPER_LOOKBACK_MS=1 here, 60000 on node old')]);
    expect(changes).toHaveLength(1);
    expect(await old.round()).toEqual([]);
    expect(warnings.some((w) => w.includes('that node started later'))).toBe(true);
    // A dead node's entry (not refreshed for three intervals) and garbage are removed.
    await redis.hset(CLUSTER_REGISTRY_KEY, 'gone', JSON.stringify({ ...settings, id: 'gone', ttlMs: 1, startedAt: 0, seenAt: 0 }), 'junk', '{');
    await old.round();
    expect(Object.keys(await redis.hgetall(CLUSTER_REGISTRY_KEY)).sort()).toEqual(['new', 'old']);
    await newer.stop();
    expect(await old.round()).toEqual([]);
    expect(changes).toHaveLength(1);
    await old.stop();
    expect(await redis.hgetall(CLUSTER_REGISTRY_KEY)).toEqual({});
  });

  it('clock skew beyond a quarter of the TTL (1..5 s) is a problem; within it is not; warn mode reports none', async () => {
    const redis = await redisClient();
    const ahead = new ClusterCheck({ redis, id: 'a', settings: { ...settings, ttlMs: 6_000 }, mode: 'strict', now: () => Date.now() + 2_000 });
    expect(ahead.maxSkewMs).toBe(1_500);
    expect(await ahead.round()).toEqual([expect.stringMatching(/clock is ahead of Redis's by \d+ ms \(at most 1500 ms/)]);
    const behind = new ClusterCheck({ redis, id: 'b', settings: { ...settings, ttlMs: 6_000 }, mode: 'strict', now: () => Date.now() - 2_000 });
    expect(await behind.round()).toEqual([expect.stringContaining('behind')]);
    const fine = new ClusterCheck({ redis, id: 'c', settings: { ...settings, ttlMs: 6_000 }, mode: 'strict', now: () => Date.now() + 500 });
    expect(await fine.round()).toEqual([]);
    const lenient = new ClusterCheck({ redis, id: 'd', settings: { ...settings, ttlMs: 6_000 }, mode: 'warn', now: () => Date.now() + 2_000 });
    expect(await lenient.round()).toEqual([]);
    expect(new ClusterCheck({ redis, id: 'e', settings: { ...settings, ttlMs: 100_000 }, mode: 'strict' }).maxSkewMs).toBe(5_000);
    expect(new ClusterCheck({ redis, id: 'f', settings: { ...settings, ttlMs: 1_000 }, mode: 'strict' }).maxSkewMs).toBe(1_000);
  });
});

describe('TRUST_PROXY parsing and the client address', () => {
  const req = (remoteAddress: string, xff?: string | string[]): IncomingMessage => ({ socket: { remoteAddress }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;
  const parse = (v: string): TrustedProxies => {
    const p = parseTrustedProxies(v);
    if (typeof p === 'string') throw new Error(p);
    return p;
  };

  it('accepts addresses, CIDR ranges and names; refuses anything else naming the entry', () => {
    expect(parse('loopback, 10.0.0.0/8 ,192.0.2.7,fd00::/8').entries).toEqual(['loopback', '10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
    expect(parseTrustedProxies('')).toMatch(/at least one/);
    for (const bad of ['10.0.0.0/33', 'example.com', '1.2.3.4/8/1', '::1/129', 'true']) expect(parseTrustedProxies(bad)).toContain(`bad entry '${bad}'`);
  });

  it('walks X-Forwarded-For from the right while the hop is trusted', () => {
    const t = parse('loopback,private');
    expect(t.trusts('::ffff:127.0.0.1')).toBe(true);
    expect(t.trusts('8.8.8.8')).toBe(false);
    expect(t.trusts(undefined)).toBe(false);
    expect(t.clientAddress(req('203.0.113.9', '1.1.1.1'))).toBe('203.0.113.9');
    expect(t.clientAddress(req('127.0.0.1', '1.1.1.1, 10.1.2.3'))).toBe('1.1.1.1');
    expect(t.clientAddress(req('127.0.0.1', ['6.6.6.6, 7.7.7.7', '10.0.0.5']))).toBe('7.7.7.7');
    expect(t.clientAddress(req('127.0.0.1', 'garbage, 10.0.0.5'))).toBe('10.0.0.5');
    expect(t.clientAddress(req('127.0.0.1'))).toBe('127.0.0.1');
    expect(t.clientAddress(req('::ffff:127.0.0.1', '::ffff:10.0.0.1'))).toBe('10.0.0.1');
    expect(parse('linklocal').trusts('169.254.1.1')).toBe(true);
  });
});
