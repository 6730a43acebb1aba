import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import type { RedisTarget } from 'realtime-message-testing';
import type { UserId } from 'realtime-message-protocol';
import type { StatusCommand } from '../src/core/status/store.js';
import { statusRedisFixture } from './conformance/status-redis-fixture.js';

/** A connection change as the status bridge sends it. */
const conn = (userId: string, c: string, epoch: number, live: boolean, now: number): StatusCommand => ({
  type: 'conn', userId: userId as UserId, conn: c, epoch, live, now, nodeId: 'n1', awayAfterMs: 0,
});

const targets: Array<[string, () => RedisTarget]> = [
  ['Redis', () => ({ url: inject('redisUrl') })],
  ['Redis Cluster (3 masters)', () => ({ clusterNodes: inject('clusterNodes') })],
];

describe.each(targets)('status connection changes sent together (%s)', (_name, target) => {
  it('go in batch calls, each change with its own answer, in order per user', async () => {
    const { store } = await statusRedisFixture(target());
    const now = Date.now();
    const users = Array.from({ length: 30 }, (_, i) => `b-${randomUUID().slice(0, 6)}-${i}`);
    // One event-loop turn: every user's connection goes live; the first user also gets a second connection,
    // its end, and a stale repeat of the first connection's start (ignored by the marks).
    const first = users[0]!;
    const started = await Promise.all([
      ...users.map((u) => store.write(conn(u, 'r\u001fc1', 1, true, now))),
      store.write(conn(first, 'r\u001fc2', 1, true, now)),
      store.write(conn(first, 'r\u001fc2', 1, false, now)),
      store.write(conn(first, 'r\u001fc1', 0, true, now)),
    ]);
    for (let i = 0; i < users.length; i++) {
      expect(started[i]!.event?.status).toBe('online');
      expect(started[i]!.state?.connected).toBe(true);
    }
    // The first user's second connection, its end and the stale repeat change the count but not the status: no event.
    expect(started.slice(users.length).map((r) => [r.state?.connected, r.event?.status])).toEqual([[true, undefined], [true, undefined], [true, undefined]]);
    const ended = await Promise.all(users.map((u) => store.write(conn(u, 'r\u001fc1', 1, false, now + 10))));
    for (const r of ended) {
      expect(r.event?.status).toBe('offline');
      expect(r.event?.lastSeen).toBe(now + 10);
      expect(r.state?.connected).toBe(false);
    }
    // Repeats of applied ends change nothing and publish no event.
    const again = await Promise.all(users.map((u) => store.write(conn(u, 'r\u001fc1', 1, false, now + 20))));
    expect(again.every((r) => r.event === undefined && r.state?.connected === false)).toBe(true);
  });
});

/**
 * Script calls under `prefix`, as Redis's MONITOR reports them (each call's arguments, unquoted). A raw socket and
 * not ioredis's `monitor()`: ioredis enters its monitoring mode a microtask after the OK, so a MONITOR line that
 * arrives in the same chunk (another test's command on the shared Redis) fails with "Command queue state error".
 * Resolves once Redis has acknowledged MONITOR, so no call after that is missed.
 */
async function monitorScriptCalls(url: string, prefix: string): Promise<string[][]> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  onTestFinished(() => void socket.destroy());
  const calls: string[][] = [];
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line === '+OK') resolve();
        else if (line.startsWith('-')) reject(new Error(line));
        // +<time> [<db> <client>] "cmd" "arg" ...: the quoted arguments, escapes kept (prefix and numbers have none).
        const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
        if ((args[0] === 'evalsha' || args[0] === 'eval') && args.some((a) => a.startsWith(prefix))) calls.push(args);
      }
    });
    socket.write('MONITOR\r\n');
  });
  return calls;
}

describe('status connection changes sent together (Redis, calls counted)', () => {
  it('thirty changes of one turn cost two script calls (at most 16 changes each), not thirty', async () => {
    const url = inject('redisUrl');
    const { store, prefix } = await statusRedisFixture({ url });
    const calls = await monitorScriptCalls(url, prefix);
    const now = Date.now();
    const users = Array.from({ length: 30 }, (_, i) => `c-${randomUUID().slice(0, 6)}-${i}`);
    const res = await Promise.all(users.map((u) => store.write(conn(u, 'r\u001fc1', 1, true, now))));
    expect(res.every((r) => r.event?.status === 'online')).toBe(true);
    await expect.poll(() => calls.length).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 100));
    // The batches' KEYS: four per change, 16 changes and then the other 14.
    expect(calls.map((c) => Number(c[2]))).toEqual([4 * 16, 4 * 14]);
  });
});
