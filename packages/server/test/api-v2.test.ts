import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startServer } from 'realtime-message-testing';
import { MemoryStatusStore, PresenceMetrics, StatusService, createJwtVerifier, loadConfig } from '../src/index.js';
import { createHttpApp } from '../src/transports/http/app.js';

/** The /api/v2 edge over real HTTP: per-client rate limits, CORS that follows ALLOWED_ORIGINS, the docs page. */

const SECRET = 'api-v2-test-secret-0123456789abcdef';
const API_KEY = 'api-v2-test-api-key-0123456789';
const enc = new TextEncoder().encode(SECRET);
const token = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(enc);
const bearer = async (sub: string) => ({ authorization: `Bearer ${await token(sub)}` });

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(url: string, method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body };
}

const p = (id: string) => `/api/v2/presence/${encodeURIComponent(id)}`;

describe('rate limits of the status routes', () => {
  it('a client over its limit gets 429 rate_limited with Retry-After; others keep their own budget; the window restarts', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', AUTH_JWT_SECRET: SECRET, API_KEY, STATUS_RATE_LIMIT: '2', STATUS_RATE_LIMIT_BURST: '6' }); // 6 per 3 s window
    const first = await call(url, 'GET', p('ada'));
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit')).toBe('6');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('5');
    for (let i = 0; i < 5; i++) expect((await call(url, 'GET', '/api/v2/presence?users=ada')).status).toBe(200);

    // The budget is per client across every status route: the address's seventh request is refused.
    const over = await call(url, 'POST', '/api/v2/presence/batch', { body: { userIds: ['ada'] } });
    expect(over.status).toBe(429);
    expect(over.body).toEqual({ error: { code: 'rate_limited', message: expect.stringContaining('retry in') } });
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3);
    // Refused credentials count against the address too (and are not even checked once it is over).
    expect((await call(url, 'GET', p('ada'), { headers: { authorization: 'Bearer not-a-jwt' } })).status).toBe(429);

    // A token's sub and the API key holder are clients of their own, whatever their address.
    const ada = await bearer('ada');
    const put = await call(url, 'PUT', p('ada'), { body: { status: 'busy', message: 'first' }, headers: ada });
    expect([put.status, put.headers.get('x-ratelimit-remaining')]).toEqual([200, '5']);
    for (let i = 0; i < 5; i++) expect((await call(url, 'GET', p('ada'), { headers: ada })).status).toBe(200);
    const limitedWrite = await call(url, 'PUT', p('ada'), { body: { status: 'away', message: 'refused' }, headers: ada });
    expect([limitedWrite.status, limitedWrite.body.error.code]).toEqual([429, 'rate_limited']);
    expect((await call(url, 'GET', p('bob'), { headers: await bearer('bob') })).status).toBe(200);
    expect((await call(url, 'GET', p('ada'), { headers: { 'x-api-key': API_KEY } })).body).toMatchObject({ message: 'first' }); // the refused PUT changed nothing

    // The OpenAPI document and the docs page are not limited.
    expect((await call(url, 'GET', '/api/v2/openapi.json')).status).toBe(200);

    await new Promise((r) => setTimeout(r, retryAfter * 1_000 + 50));
    expect((await call(url, 'GET', p('ada'))).status).toBe(200);
  });

  it('STATUS_RATE_LIMIT=0 turns the limit off; the defaults and bad values', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', STATUS_RATE_LIMIT: '0' });
    const answers = await Promise.all(Array.from({ length: 300 }, () => call(url, 'GET', p('ada'))));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(answers[0]!.headers.get('x-ratelimit-limit')).toBe(null);

    expect(loadConfig({}).statusRateLimit).toEqual({ perSecond: 100, burst: 200 });
    expect(loadConfig({ STATUS_RATE_LIMIT: '0' }).statusRateLimit).toBe(false);
    expect(() => loadConfig({ STATUS_RATE_LIMIT: '-1' })).toThrow(/STATUS_RATE_LIMIT must be an integer >= 0/);
    expect(() => loadConfig({ STATUS_RATE_LIMIT_BURST: '0' })).toThrow(/STATUS_RATE_LIMIT_BURST must be an integer >= 1/);
  });

  it('memory is bounded: beyond maxClients the least recently seen client is forgotten (and starts afresh)', async () => {
    const service = new StatusService({ store: new MemoryStatusStore() });
    const app = createHttpApp({
      health: [],
      engine: 'memory',
      metrics: new PresenceMetrics(),
      demoDir: undefined,
      status: { service, verifyToken: createJwtVerifier({ secret: SECRET }), rateLimit: { perSecond: 1, burst: 1, maxClients: 2 } },
    });
    onTestFinished(async () => {
      await app.close();
      await service.dispose();
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(bearer));
    const get = async (headers: Record<string, string>) => (await call(url, 'GET', p('ada'), { headers })).status;
    expect([await get(a!), await get(a!)]).toEqual([200, 429]);
    expect([await get(b!), await get(b!)]).toEqual([200, 429]);
    // A third client pushes the first out of the table of two...
    expect(await get(c!)).toBe(200);
    // ...so the first is counted from zero again, while the second is still held.
    expect(await get(a!)).toBe(200);
    expect(await get(c!)).toBe(429);
  });
});

describe('CORS on /api/v2', () => {
  const APP = 'https://app.example.com';
  const EVIL = 'https://evil.example.com';

  it('follows ALLOWED_ORIGINS: an allowed origin is echoed (Vary: Origin) and its preflight answered; another gets no CORS headers and its preflight is refused', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', ALLOWED_ORIGINS: `${APP},http://localhost:5173` });
    const ok = await call(url, 'GET', p('ada'), { headers: { origin: APP } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    expect(ok.headers.get('vary')).toMatch(/origin/i);
    expect(ok.headers.get('access-control-expose-headers')).toEqual(expect.stringContaining('status-stale'));
    expect(ok.headers.get('access-control-expose-headers')).toEqual(expect.stringContaining('retry-after'));
    expect(ok.headers.get('access-control-allow-credentials')).toBe(null);

    const preflight = await call(url, 'OPTIONS', p('ada'), { headers: { origin: APP, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization,content-type' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(APP);
    expect(preflight.headers.get('access-control-allow-methods')?.split(/,\s*/)).toEqual(['GET', 'PUT', 'DELETE', 'POST']);
    expect(preflight.headers.get('access-control-allow-headers')?.split(/,\s*/)).toEqual(['Authorization', 'Content-Type', 'X-API-Key']);
    expect(preflight.headers.get('access-control-max-age')).toBe('600');

    const other = await call(url, 'GET', p('ada'), { headers: { origin: EVIL } });
    expect(other.status).toBe(200); // served (a non-browser client may send any Origin), but a browser hides it
    expect(other.headers.get('access-control-allow-origin')).toBe(null);
    expect(other.headers.get('vary')).toMatch(/origin/i);
    // A server's request (no Origin): no CORS headers and no Vary (nothing stores the answer: no-store).
    for (const path of [p('ada'), '/api/v2/presence?users=ada']) {
      const server = await call(url, 'GET', path);
      expect([server.status, server.headers.get('access-control-allow-origin'), server.headers.get('vary'), server.headers.get('cache-control')]).toEqual([200, null, null, 'no-store']);
    }
    const refused = await call(url, 'OPTIONS', p('ada'), { headers: { origin: EVIL, 'access-control-request-method': 'PUT' } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    expect(refused.headers.get('access-control-allow-origin')).toBe(null);
    expect(refused.headers.get('access-control-allow-methods')).toBe(null);

    // Only /api/v2 speaks CORS.
    expect((await call(url, 'GET', '/health', { headers: { origin: APP } })).headers.get('access-control-allow-origin')).toBe(null);
  });

  it('every answer carries its CORS and cache headers: the hot read (a hit, 401, 429), the other routes, 404 and malformed URLs', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', ALLOWED_ORIGINS: APP, AUTH_JWT_SECRET: SECRET, STATUS_READS: 'token', STATUS_RATE_LIMIT: '1', STATUS_RATE_LIMIT_BURST: '3' });
    const edge = (a: Answer) => [a.headers.get('access-control-allow-origin'), a.headers.get('vary'), a.headers.get('cache-control')];
    const headers = { origin: APP, ...(await bearer('ada')) };
    const hit = await call(url, 'GET', p('ada'), { headers });
    expect([hit.status, ...edge(hit), hit.headers.get('x-ratelimit-remaining')]).toEqual([200, APP, 'Origin', 'no-store', '2']);
    const refused = await call(url, 'GET', p('ada'), { headers: { origin: APP } });
    expect([refused.status, refused.body.error.code, ...edge(refused)]).toEqual([401, 'unauthorized', APP, 'Origin', 'no-store']);
    expect((await call(url, 'GET', '/api/v2/presence?users=ada', { headers })).headers.get('cache-control')).toBe('no-store');
    expect((await call(url, 'POST', '/api/v2/presence/batch', { body: { userIds: ['ada'] }, headers })).headers.get('x-ratelimit-remaining')).toBe('0');
    const limited = await call(url, 'GET', p('ada'), { headers });
    expect([limited.status, ...edge(limited), limited.headers.get('x-ratelimit-remaining'), limited.headers.get('retry-after')]).toEqual([429, APP, 'Origin', 'no-store', '0', '3']);
    const bad = await call(url, 'GET', '/api/v2/presence/%zz', { headers });
    expect([bad.status, bad.body.error.code, bad.headers.get('cache-control')]).toEqual([400, 'invalid_payload', 'no-store']);
    const missing = await call(url, 'GET', '/api/v2/nope', { headers });
    expect([missing.status, missing.headers.get('cache-control')]).toEqual([404, 'no-store']);
    const docs = await call(url, 'GET', '/api/v2/openapi.json', { headers });
    expect([docs.status, ...edge(docs)]).toEqual([200, APP, 'Origin', 'no-store']);
  });

  it('without ALLOWED_ORIGINS every origin is allowed, as for Socket.IO', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off' });
    const res = await call(url, 'GET', p('ada'), { headers: { origin: EVIL } });
    expect(res.headers.get('access-control-allow-origin')).toBe(EVIL);
    const preflight = await call(url, 'OPTIONS', '/api/v2/presence/batch', { headers: { origin: EVIL, 'access-control-request-method': 'POST' } });
    expect([preflight.status, preflight.headers.get('access-control-allow-origin')]).toEqual([204, EVIL]);
  });
});

describe('API docs page', () => {
  it('/api/v2/docs answers HTML whose assets are served locally (no CDN) and that loads our OpenAPI document', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off' });
    for (const path of ['/api/v2/docs', '/api/v2/docs/']) {
      const page = await fetch(`${url}${path}`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain('id="swagger-ui"');
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      expect(assets.length).toBeGreaterThanOrEqual(4);
      for (const asset of assets) {
        expect(asset, 'no remote asset').not.toMatch(/^(https?:)?\/\//);
        const res = await fetch(new URL(asset, `${url}${path}`));
        expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
        await res.arrayBuffer();
      }
    }
    const init = await (await fetch(`${url}/api/v2/docs/static/swagger-initializer.js`)).text();
    expect(init).toContain("resolveUrl('./json')");
    const served = await (await fetch(`${url}/api/v2/docs/json`)).json();
    const doc = await (await fetch(`${url}/api/v2/openapi.json`)).json();
    expect(served).toEqual(doc);
  });

  it('the OpenAPI document has the 429 answers, the stale mark and the rate-limit headers, and no docs routes', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off' });
    const doc = (await call(url, 'GET', '/api/v2/openapi.json')).body;
    const one = doc.paths['/api/v2/presence/{userId}'];
    for (const method of ['get', 'put', 'delete']) {
      expect(one[method].responses['429'], method).toBeDefined();
      expect(one[method].responses['429'].headers, method).toHaveProperty('retry-after');
      expect(one[method].responses['503'], method).toBeDefined();
    }
    for (const op of [one.get, doc.paths['/api/v2/presence'].get, doc.paths['/api/v2/presence/batch'].post]) {
      expect(op.responses['200'].headers).toHaveProperty('status-stale');
      expect(op.responses['200'].headers).toHaveProperty('x-ratelimit-remaining');
      expect(op.responses['429']).toBeDefined();
    }
    expect(Object.keys(doc.paths).filter((path) => path.includes('docs') || path.includes('openapi'))).toEqual([]);
  });
});
