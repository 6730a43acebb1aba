import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.js';
import { NodeProcess, connect, request, room, startServer } from 'realtime-message-testing';

describe('configuration', () => {
  it('has the SPEC defaults', () => {
    const c = loadConfig({});
    expect(c).toEqual(expect.objectContaining({ port: 3000, engine: 'memory', ttlMs: 30_000, reaperIntervalMs: 3_000, reaperLookbackMs: 60_000, disconnectGraceMs: 5_000, maxStateBytes: 16_384, authMode: 'open', workers: 1, redisHeartbeatWindowMs: 2, redisStatusWindowMs: 5 }));
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT must be an integer'],
    [{ PORT: '70000' }, 'PORT must be < 65536'],
    [{ PRESENCE_TTL_MS: '-5' }, 'PRESENCE_TTL_MS must be an integer >= 1'],
    [{ PRESENCE_DISCONNECT_GRACE_MS: '1.5' }, 'PRESENCE_DISCONNECT_GRACE_MS'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL must start with redis://'],
    [{ REDIS_CLUSTER_NODES: 'a:1,b' }, "bad entry 'b'"],
    [{ REDIS_URL: 'redis://x', REDIS_CLUSTER_NODES: 'a:1' }, 'not both'],
    [{ REDIS_HEARTBEAT_WINDOW_MS: '1001' }, 'REDIS_HEARTBEAT_WINDOW_MS must be at most 1000'],
    [{ REDIS_HEARTBEAT_WINDOW_MS: '-1' }, 'REDIS_HEARTBEAT_WINDOW_MS must be an integer >= 0'],
    [{ REDIS_STATUS_WINDOW_MS: '51' }, 'REDIS_STATUS_WINDOW_MS must be at most 50'],
    [{ REDIS_STATUS_WINDOW_MS: '2.5' }, 'REDIS_STATUS_WINDOW_MS must be an integer'],
    [{ AUTH_JWT_SECRET: 'short' }, 'at least 32 bytes'],
    [{ AUTH_JWT_SECRET: 'x'.repeat(32), AUTH_JWKS_URL: 'https://x/jwks' }, 'only one of'],
    [{ WORKERS: '4' }, 'WORKERS=4 needs REDIS_URL'],
    [{ WORKERS: 'many' }, "WORKERS must be 'auto'"],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ PRESENCE_DISCONNECT_GRACE_MS: '40000' }, 'must not exceed PRESENCE_TTL_MS'],
  ])('refuses %j naming the variable', (env, fragment) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(fragment);
  });

  it('the CLI exits with code 2 and a clear message on bad configuration', async () => {
    const node = await NodeProcess.start({ PRESENCE_TTL_MS: 'soon' }, { waitReady: false });
    expect(await node.waitExit()).toBe(2);
    expect(node.logs.join('\n')).toContain('PRESENCE_TTL_MS must be an integer >= 1');
  });
});

describe('standalone server (in process)', () => {
  const start = startServer;

  it('serves /health, /ready and /metrics', async () => {
    const { url } = await start();
    const s = await connect(url);
    await request(s, 'presence:join', { roomId: room(), userId: 'ada' });
    await request(s, 'presence:heartbeat', { epoch: 9 });
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${url}/ready`)).json()).toEqual({ status: 'ready', engine: 'memory', checks: { memory: 'ok' } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const name of ['rm_connections 1', 'rm_joins_total{outcome="joined"} 1', 'rm_stale_epoch_rejections_total 1', 'rm_errors_total{event="presence:heartbeat",code="stale_epoch"} 1', 'rm_engine_latency_seconds_bucket', 'rm_event_fanout_total', 'process_cpu_seconds_total']) {
      expect(metrics).toContain(name);
    }
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });

  it('serves the demo folder at / with a CSP, and nothing outside it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rm-demo-'));
    mkdirSync(join(root, 'site'));
    writeFileSync(join(root, 'site', 'index.html'), '<title>demo</title>');
    writeFileSync(join(root, 'secret.txt'), 'do not serve');
    const { url } = await start({ DEMO_DIR: join(root, 'site') });
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('<title>demo</title>');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    // Raw paths (no URL normalization by the client) must not escape the folder.
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(url);
        httpRequest({ host: u.hostname, port: u.port, path, method: 'GET' }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    for (const path of ['/../secret.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/site/../../secret.txt', '/%00']) {
      expect(await raw(path), path).toBe(404);
    }
    // A path that is not valid percent-encoding is a bad request.
    expect(await raw('/%E0%A4%A')).toBe(400);
    const off = await start({ DEMO_DIR: 'off' });
    expect((await fetch(`${off.url}/`)).status).toBe(200); // a short text page: the demo is not served
    expect(await (await fetch(`${off.url}/`)).text()).toContain('not built');
  });

  it('enforces ALLOWED_ORIGINS on the WebSocket handshake', async () => {
    const { url } = await start({ ALLOWED_ORIGINS: 'https://app.example.com,https://admin.example.com/' });
    await expect(connect(url, { extraHeaders: { origin: 'https://evil.example.com' } })).rejects.toThrow();
    const ok = await connect(url, { extraHeaders: { origin: 'https://admin.example.com' } });
    expect(ok.connected).toBe(true);
    const noOrigin = await connect(url); // non-browser clients send no Origin
    expect(noOrigin.connected).toBe(true);
  });

  it('graceful close makes local members leave at once (reason disconnect)', async () => {
    const a = await start();
    const s = await connect(a.url);
    const r = room();
    await request(s, 'presence:join', { roomId: r, userId: 'ada' });
    const seen: string[] = [];
    await a.server.presence.service.subscribe(r, () => {});
    const unsub = await a.server.presence.service.subscribe(r, (e) => seen.push(e.type === 'leave' ? `leave:${e.reason}` : e.type));
    await a.server.close();
    await unsub();
    expect(seen).toContain('leave:disconnect');
  });
});

describe('reaper metrics', () => {
  it('count reaper passes and the leaves they emitted', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', PRESENCE_TTL_MS: '200', PRESENCE_DISCONNECT_GRACE_MS: '0', PRESENCE_REAPER_INTERVAL_MS: '20' });
    const s = await connect(url);
    await request(s, 'presence:join', { roomId: room(), userId: 'ada' }); // never heartbeats: expires
    const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);
    await expect.poll(() => metric('rm_reaper_leaves_total'), { timeout: 3_000 }).toBe(1);
    expect(await metric('rm_reaper_runs_total\\{outcome="ok"\\}')).toBeGreaterThan(1);
    expect(await metric('rm_leaves_total\\{reason="timeout"\\}')).toBe(1);
  });
});
