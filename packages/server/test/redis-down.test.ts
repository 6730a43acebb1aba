import { describe, expect, it } from 'vitest';
import { NodeProcess, connect, freePort, request, room, waitFor } from 'realtime-message-testing';

/** A Redis URL where nothing listens, with a password that must never reach the logs. */
async function deadRedisUrl(): Promise<string> {
  return `redis://:hunter2-secret@127.0.0.1:${await freePort()}`;
}

describe('Redis down at start', () => {
  it('the server starts, /ready is 503, clients get unavailable quickly, the log names REDIS_URL once and then summarises, nothing unhandled', async () => {
    const url = await deadRedisUrl();
    const node = await NodeProcess.start({ REDIS_URL: url, DEMO_DIR: 'off' });
    expect((await node.get('/ready')).status).toBe(503);
    expect((await node.get('/health')).status).toBe(200);
    const s = await connect(node.url);
    const started = Date.now();
    const ack = await request(s, 'presence:join', { roomId: room(), userId: 'ada' });
    expect(ack).toEqual({ ok: false, error: { code: 'unavailable', message: expect.stringContaining('retry') } });
    expect(Date.now() - started).toBeLessThan(5_000);
    // Several seconds of a Redis that stays down.
    await new Promise((r) => setTimeout(r, 6_000));
    const lines = node.logs.filter((l) => l.includes('redis unreachable'));
    expect(lines.length).toBeGreaterThanOrEqual(2); // the first error, then a summary with a count
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(lines[0]).toContain('REDIS_URL=redis://');
    expect(lines.some((l) => l.includes('"repeated"'))).toBe(true);
    const all = node.logs.join('\n');
    expect(all).not.toContain('hunter2-secret');
    expect(all).not.toContain('unhandled rejection');
  });

  it('REDIS_FAIL_FAST_MS makes the server exit at start naming the setting', async () => {
    const node = await NodeProcess.start({ REDIS_URL: await deadRedisUrl(), REDIS_FAIL_FAST_MS: '500', DEMO_DIR: 'off' }, { waitReady: false });
    expect(await waitFor(() => node.proc.exitCode ?? undefined, { timeoutMs: 10_000, what: 'exit' })).toBe(1);
    expect(node.logs.join('\n')).toContain('Redis could not be reached within REDIS_FAIL_FAST_MS=500 (REDIS_URL)');
  });
});

describe('log amplification', () => {
  it('a shutdown with Redis down logs the failed leaves once, not once per room; a flood of CONNECTs logs once', async () => {
    const { startRedis } = await import('realtime-message-testing');
    const redis = await startRedis();
    const node = await NodeProcess.start({ REDIS_URL: redis.url, DEMO_DIR: 'off', SHUTDOWN_TIMEOUT_MS: '5000' });
    const sockets = await Promise.all(Array.from({ length: 30 }, () => connect(node.url)));
    for (const s of sockets) expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    // Ten flood POSTs: each closes its connection at the second CONNECT.
    for (let i = 0; i < 10; i++) {
      const hs = await fetch(`${node.url}/socket.io/?EIO=4&transport=polling`).then((r) => r.text());
      const sid = /"sid":"([^"]+)"/.exec(hs)![1];
      await fetch(`${node.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: Array.from({ length: 200 }, () => '40').join('\x1e') }).then((r) => r.text());
    }
    await redis.kill();
    await waitFor(async () => (await node.get('/ready')).status === 503, { timeoutMs: 8_000, what: '/ready 503' });
    await node.kill('SIGTERM');
    const count = (fragment: string) => node.logs.filter((l) => l.includes(fragment)).length;
    expect(count('leave at dispose failed')).toBeLessThanOrEqual(2); // the first, then at most one summary line
    expect(count('sunsubscribe failed')).toBeLessThanOrEqual(2);
    // 30 rooms, an outage, a shutdown and ten floods: a handful of lines, not one per room or packet.
    expect(node.logs.filter((l) => l.includes('"level":40') || l.includes('"level":50')).length).toBeLessThan(15);
    expect(count('connect-flood')).toBe(1);
  });
});
