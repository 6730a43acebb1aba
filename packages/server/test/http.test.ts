import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startServer } from 'realtime-message-testing';
import { PresenceMetrics, type HealthCheck } from '../src/index.js';
import { createHttpApp } from '../src/transports/http/app.js';

/** The Fastify shell alone, tested through inject() (no socket). */
function app(opts: { health?: HealthCheck[]; demoDir?: string; readyTimeoutMs?: number } = {}) {
  const a = createHttpApp({ health: opts.health ?? [{ name: 'memory', check: async () => {} }], engine: 'memory', metrics: new PresenceMetrics(), demoDir: opts.demoDir, readyTimeoutMs: opts.readyTimeoutMs });
  onTestFinished(() => a.close());
  return a;
}

describe('HTTP shell (Fastify inject)', () => {
  it('/ready is 503 with the failing check named while a backend is down, and a hanging check counts as down after the timeout', async () => {
    let redisUp = false;
    const redis: HealthCheck = {
      name: 'redis',
      check: async () => {
        if (!redisUp) throw new Error('ECONNREFUSED');
      },
    };
    const a = app({
      health: [
        redis,
        { name: 'nats', check: () => new Promise<void>(() => {}) },
      ],
      readyTimeoutMs: 50,
    });
    const down = await a.inject({ method: 'GET', url: '/ready' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ status: 'unavailable', engine: 'memory', checks: { redis: 'unavailable', nats: 'unavailable' } });
    redisUp = true;
    const up = await app({ health: [redis] }).inject({ method: 'GET', url: '/ready' });
    expect(up.statusCode).toBe(200);
    expect(up.json()).toEqual({ status: 'ready', engine: 'memory', checks: { redis: 'ok' } });
  });

  it('answers other methods with 405 and unknown paths with a JSON 404; API answers are never cached', async () => {
    const a = app();
    const post = await a.inject({ method: 'POST', url: '/health' });
    expect(post.statusCode).toBe(405);
    expect(post.json()).toEqual({ error: 'method not allowed' });
    const missing = await a.inject({ method: 'GET', url: '/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'not found' });
    const health = await a.inject({ method: 'GET', url: '/health' });
    expect(health.json()).toEqual({ status: 'ok' });
    expect(health.headers['cache-control']).toBe('no-store');
    const metrics = await a.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toContain('# HELP rm_connections');
  });

  it('publishes an OpenAPI 3.1 document of the operations routes, without itself', async () => {
    const res = await app().inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { openapi: string; paths: Record<string, { get?: { summary?: string } }> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(['/health', '/metrics', '/ready']);
    expect(doc.paths['/ready']!.get!.summary).toMatch(/503/);
  });

  it('a failing route answers 500 without its message; a client error keeps its message', async () => {
    const a = app();
    a.get('/boom', async () => {
      throw new Error('secret internals');
    });
    a.get('/teapot', async () => {
      throw Object.assign(new Error('short and stout'), { statusCode: 418 });
    });
    const boom = await a.inject({ method: 'GET', url: '/boom' });
    expect(boom.statusCode).toBe(500);
    expect(boom.json()).toEqual({ error: 'internal error' });
    const teapot = await a.inject({ method: 'GET', url: '/teapot' });
    expect(teapot.statusCode).toBe(418);
    expect(teapot.json()).toEqual({ error: 'short and stout' });
  });

  it('serves the demo folder: HEAD gives the headers without a body, index.html is revalidated, assets are cached, a missing file is a JSON 404', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rm-http-'));
    writeFileSync(join(root, 'index.html'), '<title>demo</title>');
    writeFileSync(join(root, 'app.js'), 'export {};');
    writeFileSync(join(root, 'data.bin'), 'x');
    const a = app({ demoDir: root });
    const head = await a.inject({ method: 'HEAD', url: '/' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe('19');
    expect(head.headers['cache-control']).toBe('no-cache');
    expect(head.body).toBe('');
    const js = await a.inject({ method: 'GET', url: '/app.js?v=1' });
    expect(js.body).toBe('export {};');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=3600');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    expect((await a.inject({ method: 'GET', url: '/data.bin' })).headers['content-type']).toBe('application/octet-stream');
    const missing = await a.inject({ method: 'GET', url: '/missing.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'not found' });
    expect((await a.inject({ method: 'GET', url: '/' })).body).toBe('<title>demo</title>');
  });
});

describe('WebSocket upgrades on the shared port', () => {
  it('an upgrade no endpoint claims is answered 404 at once (it never hangs); Socket.IO upgrades still work', async () => {
    const { WebSocket } = await import('ws');
    const { url } = await startServer({ DEMO_DIR: 'off' });
    const ws = url.replace('http', 'ws');
    const stray = new WebSocket(`${ws}/not-an-endpoint`);
    const status = await new Promise<number>((resolve, reject) => {
      stray.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      stray.once('open', () => reject(new Error('a stray upgrade was accepted')));
      stray.once('error', reject);
    });
    expect(status).toBe(404);
    const sio = new WebSocket(`${ws}/socket.io/?EIO=4&transport=websocket`);
    onTestFinished(() => sio.terminate());
    await new Promise((resolve, reject) => sio.once('open', resolve).once('error', reject));
  });
});
