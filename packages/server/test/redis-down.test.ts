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
