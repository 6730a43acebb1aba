import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { Cluster } from 'ioredis';
import { startRedis, redisClient, waitFor } from 'realtime-message-testing';
import { RedisBackend } from '../src/engines/redis/backend.js';
import { identityChange, parseIdentity, type RedisIdentity } from '../src/engines/redis/identity.js';
import type { StorageReset } from '../src/core/presence/engine.js';

const id = (runId: string, replId: string, replId2 = '0000'): RedisIdentity => ({ runId, replId, replId2, role: 'master' });

describe('Redis identity (issue 12)', () => {
  it('reads run_id, the replication ids and the role from INFO', () => {
    expect(parseIdentity('# Server\r\nrun_id:abc\r\n# Replication\r\nrole:slave\r\nmaster_replid:r1\r\nmaster_replid2:r0\r\n')).toEqual({ runId: 'abc', replId: 'r1', replId2: 'r0', role: 'slave' });
    expect(parseIdentity('# Server\nredis_version:7.2.0\n')).toBeUndefined();
    expect(parseIdentity('run_id:abc')).toEqual({ runId: 'abc', replId: '', replId2: '', role: 'master' });
  });

  it('a first sight is a baseline; a new run_id is a restart; a promoted replica is a failover', () => {
    const known = new Map<string, RedisIdentity>();
    expect(identityChange(known, 'a', id('r1', 'x'))).toBeUndefined();
    known.set('a', id('r1', 'x'));
    expect(identityChange(known, 'a', id('r1', 'x'))).toBeUndefined();
    expect(identityChange(known, 'a', id('r2', 'y'))).toEqual({ reason: 'restart', node: 'a' });
    // The same address now serves the replica that continued x (Sentinel, a proxy).
    expect(identityChange(known, 'a', id('r3', 'z', 'x'))).toEqual({ reason: 'failover', node: 'a' });
    // A cluster: a master never seen before that continues a known master's history.
    expect(identityChange(known, 'b', id('r4', 'w', 'x'))).toEqual({ reason: 'failover', node: 'b' });
    // A new master with its own history (a cluster grew): not a reset.
    expect(identityChange(known, 'c', id('r5', 'v'))).toBeUndefined();
  });

  it('reports a restart of a single Redis once, and not its first connection', async () => {
    const server = await startRedis();
    const redis = redisClient({ url: server.url }).on('error', () => {});
    const backend = new RedisBackend({ redis, identityCheckIntervalMs: 50 });
    onTestFinished(async () => {
      await backend.close();
      redis.disconnect();
    });
    const resets: StorageReset[] = [];
    const off = backend.onReset((r) => resets.push(r));
    await redis.ping();
    await new Promise((r) => setTimeout(r, 200));
    expect(resets).toEqual([]);
    await server.restart();
    await waitFor(() => resets.length > 0, { what: 'the reset', timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    expect(resets).toEqual([{ reason: 'restart', node: `127.0.0.1:${server.port}` }]);
    off();
  });

  it('watches every master of a cluster without a false reset', async () => {
    const redis = new Cluster(inject('clusterNodes'), { redisOptions: { maxRetriesPerRequest: 2 } }).on('error', () => {});
    const backend = new RedisBackend({ redis, identityCheckIntervalMs: 50 });
    onTestFinished(async () => {
      await backend.close();
      redis.disconnect();
    });
    const resets: StorageReset[] = [];
    backend.onReset((r) => resets.push(r));
    await redis.ping();
    await waitFor(() => redis.nodes('master').length === 3, { what: 'three masters' });
    await new Promise((r) => setTimeout(r, 300));
    expect(resets).toEqual([]);
  });
});
