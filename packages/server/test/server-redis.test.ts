import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { connect, freePort, listen, request, room, startServer } from 'realtime-message-testing';
import { createRealtimeServer, loadConfig } from '../src/index.js';

/** A pino logger whose lines the test can read. */
function capturedLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

describe('standalone server (in process) on Redis', () => {
  it.each([
    ['redis', () => ({ REDIS_URL: inject('redisUrl') })],
    ['redis-cluster', () => ({ REDIS_CLUSTER_NODES: inject('clusterNodes').map((n) => `${n.host}:${n.port}`).join(',') })],
  ])('%s: /ready names the engine, and presence and messages work through it', async (engine, env) => {
    const { url } = await startServer({ DEMO_DIR: 'off', REDIS_KEY_PREFIX: `srv${Date.now()}:`, ...env() });
    expect(await (await fetch(`${url}/ready`)).json()).toEqual({ status: 'ready', engine, checks: { [engine]: 'ok' } });
    const r = room();
    const [a, b] = await Promise.all([connect(url), connect(url)]);
    const la = listen(a);
    expect((await request(a, 'presence:join', { roomId: r, userId: 'ada' })).ok).toBe(true);
    expect((await request(b, 'presence:join', { roomId: r, userId: 'bob' })).ok).toBe(true);
    await la.waitFor((e) => e.type === 'join' && e.userId === 'bob');
    expect(await request(b, 'presence:message', { event: 'chat:message', data: 'hi' })).toEqual({ ok: true });
    await expect.poll(() => la.messages.map((m) => m.data)).toEqual(['hi']);
  });

  it('REDIS_HEARTBEAT_WINDOW_MS: a heartbeat within the window of the last one waits for its end; one after a quiet spell does not', async () => {
    const WINDOW = 400;
    const { url } = await startServer({ DEMO_DIR: 'off', REDIS_KEY_PREFIX: `hbw${Date.now()}:`, REDIS_URL: inject('redisUrl'), REDIS_HEARTBEAT_WINDOW_MS: String(WINDOW) });
    const r = room();
    const [a, b] = await Promise.all([connect(url), connect(url)]);
    expect((await request(a, 'presence:join', { roomId: r, userId: 'ada' })).ok).toBe(true);
    expect((await request(b, 'presence:join', { roomId: r, userId: 'bob' })).ok).toBe(true);
    await new Promise((res) => setTimeout(res, WINDOW + 50)); // no heartbeat flush in the last window
    const timed = async (s: typeof a) => {
      const t0 = performance.now();
      expect((await request(s, 'presence:heartbeat', {})).ok).toBe(true);
      return performance.now() - t0;
    };
    expect(await timed(a)).toBeLessThan(WINDOW / 2);
    expect(await timed(b)).toBeGreaterThan(WINDOW / 2);
  });

  it("REDIS_STATUS_WINDOW_MS: a connection change within the window of the last one waits for the window's end before it reaches the status store", async () => {
    const WINDOW = 50;
    const { url } = await startServer({ DEMO_DIR: 'off', REDIS_KEY_PREFIX: `stw${Date.now()}:`, REDIS_URL: inject('redisUrl'), REDIS_STATUS_WINDOW_MS: String(WINDOW) });
    const r = room();
    const [ada, bob] = [`ada-${r}`, `bob-${r}`];
    const [watcher, a, b] = await Promise.all([connect(url), connect(url), connect(url)]);
    const online = new Map<string, number>();
    watcher.on('status:event', (e: { userId: string; status: string }) => {
      if (e.status === 'online' && !online.has(e.userId)) online.set(e.userId, performance.now());
    });
    expect((await request(watcher, 'status:subscribe', { userIds: [ada, bob] })).users).toHaveLength(2);
    await new Promise((res) => setTimeout(res, WINDOW + 50)); // no connection change in the last window
    // Ada's join is the first change after a quiet spell; Bob's, right after, falls in its window.
    const t0 = performance.now();
    expect((await request(a, 'presence:join', { roomId: r, userId: ada })).ok).toBe(true);
    expect((await request(b, 'presence:join', { roomId: r, userId: bob })).ok).toBe(true);
    await expect.poll(() => online.size, { timeout: 5_000 }).toBe(2);
    // Ada's write went out after t0, so Bob's, released at the end of that window, not before t0 + WINDOW.
    expect(online.get(bob)! - t0).toBeGreaterThanOrEqual(WINDOW - 2);
  });

  it('REDIS_FAIL_FAST_MS: listen() rejects naming the variable when Redis cannot be reached, and the password is never logged', async () => {
    const port = await freePort(); // nothing listens there
    const { lines, logger } = capturedLogger();
    const server = createRealtimeServer(
      loadConfig({ PORT: '0', HOST: '127.0.0.1', DEMO_DIR: 'off', REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${port}`, REDIS_FAIL_FAST_MS: '300' }),
      { logger },
    );
    onTestFinished(() => server.close());
    await expect(server.listen()).rejects.toThrow(/REDIS_FAIL_FAST_MS=300 \(REDIS_URL\)/);
    await expect.poll(() => lines.some((l) => l.includes('redis unreachable'))).toBe(true);
    const log = lines.join('');
    expect(log).toContain(`REDIS_URL=redis://:***@127.0.0.1:${port}`);
    expect(log).not.toContain('hunter2');
    expect(server.http.listening).toBe(false);
  });
});
