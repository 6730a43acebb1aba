import { SignJWT } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import { StatusRecordSchema } from 'realtime-message-protocol';
import { freePort, startServer } from 'realtime-message-testing';

const SECRET = 'status-rest-test-secret-0123456789abcdef';
const API_KEY = 'status-rest-api-key-0123456789';
const enc = new TextEncoder().encode(SECRET);

function token(sub: string): Promise<string> {
  return new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(enc);
}

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(url: string, method: string, path: string, opts: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

const p = (id: string) => `/api/v2/presence/${encodeURIComponent(id)}`;
const uid = (name: string) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

const engines = [
  ['memory', () => ({})],
  ['redis', () => ({ REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `srest${Date.now()}${Math.floor(Math.random() * 1e6)}:` })],
] as const;

describe.each(engines)('user status REST API (%s)', (_engine, env) => {
  it('every route: GET one, GET ?users=, POST /batch, PUT, DELETE, and the OpenAPI document', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', ...env() });
    const ada = uid('ada');
    const bob = uid('bob');

    const unknown = await call(url, 'GET', p(ada));
    expect(unknown.status).toBe(200);
    expect(unknown.body).toMatchObject({ userId: ada, status: 'offline', lastSeen: null, message: null, manual: false });
    StatusRecordSchema.parse(unknown.body);

    const put = await call(url, 'PUT', p(ada), { body: { status: 'busy', message: 'in a meeting', ttlSeconds: 3600, messageTtlSeconds: 600, extra: 'ignored' } });
    expect(put.status).toBe(200);
    StatusRecordSchema.parse(put.body);
    expect(put.body).toMatchObject({ userId: ada, status: 'offline', message: 'in a meeting' });
    expect(put.body.messageExpiresAt).toBeGreaterThan(Date.now());

    // online with ttlSeconds keeps a socket-less user connected: the manual status then shows
    const alive = await call(url, 'PUT', p(bob), { body: { status: 'online', ttlSeconds: 60 } });
    expect(alive.body).toMatchObject({ userId: bob, status: 'online', manual: false });
    const busyBob = await call(url, 'PUT', p(bob), { body: { status: 'busy', message: 'focus' } });
    expect(busyBob.body).toMatchObject({ status: 'busy', manual: true, message: 'focus' });

    const one = await call(url, 'GET', p(ada));
    expect(one.body).toMatchObject({ userId: ada, message: 'in a meeting' });

    const many = await call(url, 'GET', `/api/v2/presence?users=${encodeURIComponent(bob)},${encodeURIComponent(ada)},nobody`);
    expect(many.status).toBe(200);
    expect(many.body.users.map((r: { userId: string }) => r.userId)).toEqual([bob, ada, 'nobody']);
    expect(many.body.users[0]).toMatchObject({ status: 'busy', message: 'focus' });
    for (const r of many.body.users) StatusRecordSchema.parse(r);

    const batch = await call(url, 'POST', '/api/v2/presence/batch', { body: { userIds: [ada, 'nobody', bob] } });
    expect(batch.status).toBe(200);
    expect(batch.body.users.map((r: { userId: string }) => r.userId)).toEqual([ada, 'nobody', bob]);

    const ids = Array.from({ length: 1_000 }, (_, i) => `u${i}`);
    const big = await call(url, 'POST', '/api/v2/presence/batch', { body: { userIds: ids } });
    expect(big.status).toBe(200);
    expect(big.body.users).toHaveLength(1_000);

    const cleared = await call(url, 'DELETE', p(bob));
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ userId: bob, status: 'online', manual: false, message: null });
    expect((await call(url, 'GET', p(bob))).body).toMatchObject({ status: 'online', message: null });

    const doc = await call(url, 'GET', '/api/v2/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/v2/presence/{userId}', '/api/v2/presence', '/api/v2/presence/batch']));
    expect(Object.keys(doc.body.paths['/api/v2/presence/{userId}'])).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
    expect(doc.body.components.securitySchemes).toHaveProperty('bearer');
    // the old location still answers
    expect((await call(url, 'GET', '/openapi.json')).body.paths).toHaveProperty(['/api/v2/presence/batch']);
  });

  it('bad input: each gets its status and stable code, never a 500, and the record is unchanged', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', ...env() });
    const ada = uid('ada');
    const before = (await call(url, 'PUT', p(ada), { body: { status: 'away', message: 'brb' } })).body;
    const json = { 'content-type': 'application/json' };
    const cases: Array<[string, string, string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number, string]> = [
      ['status unknown', 'PUT', p(ada), { body: { status: 'sleeping' } }, 400, 'invalid_payload'],
      ['status missing', 'PUT', p(ada), { body: { message: 'x' } }, 400, 'invalid_payload'],
      ['message too long', 'PUT', p(ada), { body: { status: 'busy', message: 'x'.repeat(101) } }, 400, 'invalid_payload'],
      ['message with a control character', 'PUT', p(ada), { body: { status: 'busy', message: 'a\nb' } }, 400, 'invalid_payload'],
      ['message not a string', 'PUT', p(ada), { body: { status: 'busy', message: 7 } }, 400, 'invalid_payload'],
      ['ttl negative', 'PUT', p(ada), { body: { status: 'busy', ttlSeconds: -1 } }, 400, 'invalid_payload'],
      ['ttl zero', 'PUT', p(ada), { body: { status: 'busy', ttlSeconds: 0 } }, 400, 'invalid_payload'],
      ['ttl not an integer', 'PUT', p(ada), { body: { status: 'busy', ttlSeconds: 1.5 } }, 400, 'invalid_payload'],
      ['ttl above 7 days', 'PUT', p(ada), { body: { status: 'busy', ttlSeconds: 604_801 } }, 400, 'invalid_payload'],
      ['ttl a string', 'PUT', p(ada), { body: { status: 'busy', ttlSeconds: '60' } }, 400, 'invalid_payload'],
      ['messageTtl without message', 'PUT', p(ada), { body: { status: 'busy', messageTtlSeconds: 60 } }, 400, 'invalid_payload'],
      ['body an array', 'PUT', p(ada), { body: ['busy'] }, 400, 'invalid_payload'],
      ['body not JSON', 'PUT', p(ada), { raw: '{"status":', headers: json }, 400, 'invalid_payload'],
      ['no body', 'PUT', p(ada), {}, 400, 'invalid_payload'],
      ['wrong content type', 'PUT', p(ada), { raw: 'status=busy', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'invalid_payload'],
      ['text/plain JSON', 'PUT', p(ada), { raw: '{"status":"busy"}', headers: { 'content-type': 'text/plain' } }, 415, 'invalid_payload'],
      ['body too large', 'PUT', p(ada), { body: { status: 'busy', pad: 'x'.repeat(20_000) } }, 413, 'payload_too_large'],
      ['id too long (PUT)', 'PUT', p('x'.repeat(129)), { body: { status: 'busy' } }, 400, 'invalid_payload'],
      ['id with a control character (PUT)', 'PUT', p('a\u0001b'), { body: { status: 'busy' } }, 400, 'invalid_payload'],
      ['id with braces (DELETE)', 'DELETE', p('{ada}'), {}, 400, 'invalid_payload'],
      ['id too long (GET)', 'GET', p('x'.repeat(129)), {}, 400, 'invalid_payload'],
      ['id lone surrogate (GET)', 'GET', '/api/v2/presence/%ED%A0%80', {}, 400, 'invalid_payload'],
      ['users missing', 'GET', '/api/v2/presence', {}, 400, 'invalid_payload'],
      ['users empty', 'GET', '/api/v2/presence?users=', {}, 400, 'invalid_payload'],
      ['users with an empty id', 'GET', '/api/v2/presence?users=a,,b', {}, 400, 'invalid_payload'],
      ['users duplicated', 'GET', '/api/v2/presence?users=a,b,a', {}, 400, 'invalid_payload'],
      ['users given twice', 'GET', '/api/v2/presence?users=a&users=b', {}, 400, 'invalid_payload'],
      ['users over 100', 'GET', `/api/v2/presence?users=${Array.from({ length: 101 }, (_, i) => `u${i}`).join(',')}`, {}, 400, 'invalid_payload'],
      ['batch empty', 'POST', '/api/v2/presence/batch', { body: { userIds: [] } }, 400, 'invalid_payload'],
      ['batch missing userIds', 'POST', '/api/v2/presence/batch', { body: {} }, 400, 'invalid_payload'],
      ['batch not a list', 'POST', '/api/v2/presence/batch', { body: { userIds: 'a,b' } }, 400, 'invalid_payload'],
      ['batch duplicates', 'POST', '/api/v2/presence/batch', { body: { userIds: ['a', 'a'] } }, 400, 'invalid_payload'],
      ['batch over 1000', 'POST', '/api/v2/presence/batch', { body: { userIds: Array.from({ length: 1_001 }, (_, i) => `u${i}`) } }, 400, 'invalid_payload'],
      ['batch bad id', 'POST', '/api/v2/presence/batch', { body: { userIds: ['a', 7] } }, 400, 'invalid_payload'],
      ['batch not JSON', 'POST', '/api/v2/presence/batch', { raw: 'nope', headers: json }, 400, 'invalid_payload'],
      ['batch wrong content type', 'POST', '/api/v2/presence/batch', { raw: 'a,b', headers: { 'content-type': 'text/csv' } }, 415, 'invalid_payload'],
      ['batch too large', 'POST', '/api/v2/presence/batch', { body: { userIds: ['a'], pad: 'x'.repeat(1_100_000) } }, 413, 'payload_too_large'],
    ];
    for (const [name, method, path, opts, status, code] of cases) {
      const res = await call(url, method, path, opts);
      expect({ name, status: res.status, code: res.body?.error?.code }).toEqual({ name, status, code });
      expect(typeof res.body.error.message, name).toBe('string');
      expect(res.body.error.message.length, name).toBeGreaterThan(5);
    }
    expect((await call(url, 'GET', p(ada))).body).toEqual(before);
    expect((await call(url, 'GET', p(ada))).body).toMatchObject({ status: before.status, message: 'brb', seq: before.seq, updatedAt: before.updatedAt });
  });
});

describe('user status REST API: auth', () => {
  it('JWT mode: a token writes only its own sub (other sub 403, unchanged); no token 401; API key writes anyone; reads public', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', AUTH_JWT_SECRET: SECRET, API_KEY });
    const adaToken = await token('ada');
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });

    const own = await call(url, 'PUT', p('ada'), { body: { status: 'busy', message: 'mine' }, headers: auth(adaToken) });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ userId: 'ada', message: 'mine' });

    const bobBefore = (await call(url, 'PUT', p('bob'), { body: { status: 'away', message: 'bob here' }, headers: auth(await token('bob')) })).body;
    const other = await call(url, 'PUT', p('bob'), { body: { status: 'busy', message: 'hijacked' }, headers: auth(adaToken) });
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('forbidden');
    const otherDelete = await call(url, 'DELETE', p('bob'), { headers: auth(adaToken) });
    expect(otherDelete.status).toBe(403);
    expect((await call(url, 'GET', p('bob'))).body).toMatchObject({ message: 'bob here', seq: bobBefore.seq, updatedAt: bobBefore.updatedAt });

    const refused: Array<Record<string, string>> = [{}, auth('not-a-jwt'), auth(await new SignJWT({ sub: 'ada' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(40)))), { authorization: 'Basic abc' }, { 'x-api-key': 'wrong-key-0123456789' }];
    for (const headers of refused) {
      const res = await call(url, 'PUT', p('ada'), { body: { status: 'away' }, headers });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
    }
    expect((await call(url, 'DELETE', p('ada'))).status).toBe(401);
    expect((await call(url, 'GET', p('ada'))).body).toMatchObject({ message: 'mine' });

    const byKey = await call(url, 'PUT', p('bob'), { body: { status: 'busy', message: 'set by backend' }, headers: { 'x-api-key': API_KEY } });
    expect(byKey.status).toBe(200);
    expect(byKey.body.message).toBe('set by backend');
    expect((await call(url, 'DELETE', p('ada'), { headers: { 'x-api-key': API_KEY } })).body).toMatchObject({ message: null, manual: false });
    expect((await call(url, 'DELETE', p('ada'), { headers: auth(adaToken) })).status).toBe(200);

    // reads are public by default
    expect((await call(url, 'GET', p('bob'))).status).toBe(200);
    expect((await call(url, 'POST', '/api/v2/presence/batch', { body: { userIds: ['bob'] } })).status).toBe(200);
  });

  it('STATUS_READS=token: reads need a valid token or the API key', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off', AUTH_JWT_SECRET: SECRET, API_KEY, STATUS_READS: 'token' });
    for (const path of [p('ada'), '/api/v2/presence?users=ada']) {
      expect((await call(url, 'GET', path)).status).toBe(401);
      expect((await call(url, 'GET', path, { headers: { authorization: 'Bearer bad' } })).status).toBe(401);
      expect((await call(url, 'GET', path, { headers: { authorization: `Bearer ${await token('zed')}` } })).status).toBe(200);
      expect((await call(url, 'GET', path, { headers: { 'x-api-key': API_KEY } })).status).toBe(200);
    }
    expect((await call(url, 'POST', '/api/v2/presence/batch', { body: { userIds: ['ada'] } })).body.error.code).toBe('unauthorized');
  });

  it('open mode: writes are open; API_KEY alone makes writes need the key', async () => {
    const open = await startServer({ DEMO_DIR: 'off' });
    expect((await call(open.url, 'PUT', p('ada'), { body: { status: 'busy' } })).status).toBe(200);
    expect((await call(open.url, 'DELETE', p('ada'))).status).toBe(200);

    const keyed = await startServer({ DEMO_DIR: 'off', API_KEY });
    expect((await call(keyed.url, 'PUT', p('ada'), { body: { status: 'busy' } })).status).toBe(401);
    expect((await call(keyed.url, 'PUT', p('ada'), { body: { status: 'busy' }, headers: { 'x-api-key': API_KEY } })).status).toBe(200);
  });

  it('config: API_KEY and STATUS_READS are validated', async () => {
    const { loadConfig } = await import('../src/index.js');
    expect(() => loadConfig({ API_KEY: 'short' })).toThrow(/API_KEY must be 16-256 printable ASCII/);
    expect(() => loadConfig({ API_KEY: 'has spaces in it 0123456789' })).toThrow(/API_KEY/);
    expect(() => loadConfig({ STATUS_READS: 'private' })).toThrow(/STATUS_READS must be 'public' or 'token'/);
    expect(() => loadConfig({ STATUS_READS: 'token' })).toThrow(/STATUS_READS=token needs/);
    expect(loadConfig({}).statusReads).toBe('public');
    expect(loadConfig({ STATUS_READS: 'token', API_KEY }).apiKey).toBe(API_KEY);
    expect(() => loadConfig({ STATUS_AWAY_AFTER_MS: '-1' })).toThrow(/STATUS_AWAY_AFTER_MS must be an integer >= 0/);
    expect(() => loadConfig({ MAX_WATCHED_USERS_PER_SOCKET: '0' })).toThrow(/MAX_WATCHED_USERS_PER_SOCKET must be an integer >= 1/);
    expect([loadConfig({}).statusAwayAfterMs, loadConfig({}).maxWatchedUsersPerSocket]).toEqual([0, 1_000]);
  });

  it('STATUS_AWAY_AFTER_MS: a connected user without activity turns away; MAX_WATCHED_USERS_PER_SOCKET caps watches', async () => {
    const { connect, request, waitFor } = await import('realtime-message-testing');
    const { url } = await startServer({ DEMO_DIR: 'off', STATUS_AWAY_AFTER_MS: '300', MAX_WATCHED_USERS_PER_SOCKET: '2' });
    const s = await connect(url);
    expect((await request(s, 'presence:join', { roomId: 'away-room', userId: 'ada' })).ok).toBe(true);
    expect((await call(url, 'GET', '/api/v2/presence/ada')).body.status).toBe('online');
    await waitFor(async () => ((await call(url, 'GET', '/api/v2/presence/ada')).body.status === 'away' ? true : undefined), { what: 'automatic away' });
    expect(await request(s, 'status:activity')).toEqual({ ok: true });
    expect((await call(url, 'GET', '/api/v2/presence/ada')).body.status).toBe('online');
    expect((await request(s, 'status:subscribe', { userIds: ['a', 'b', 'c'] })).error.code).toBe('forbidden');
  });
});

describe('user status REST API: storage', () => {
  it('a change made over REST on one node is visible on a second node (one Redis) within 100 ms', async () => {
    const env = { DEMO_DIR: 'off', REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `srest2n${Date.now()}:` };
    const a = await startServer(env);
    const b = await startServer(env);
    await Promise.all([a.server.presence.status!.start(), b.server.presence.status!.start()]);
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const id = uid('ada');
      // B reads first, so that its cache holds the old record
      expect((await call(b.url, 'GET', p(id))).body.message).toBe(null);
      expect((await call(b.url, 'GET', p(id))).body.message).toBe(null);
      const put = await call(a.url, 'PUT', p(id), { body: { status: 'busy', message: `m${i}` } });
      expect(put.status).toBe(200);
      const acked = performance.now();
      for (;;) {
        const r = await call(b.url, 'GET', p(id));
        if (r.body.message === `m${i}`) break;
        if (performance.now() - acked > 1_000) throw new Error(`node B still shows ${JSON.stringify(r.body)}`);
      }
      delays.push(performance.now() - acked);
    }
    expect(Math.max(...delays)).toBeLessThan(100);
  });

  it('store unreachable: 503 unavailable, not 500', async () => {
    const port = await freePort();
    const { url } = await startServer({ DEMO_DIR: 'off', REDIS_URL: `redis://127.0.0.1:${port}` });
    for (const [method, path, body] of [
      ['GET', p('ada'), undefined],
      ['POST', '/api/v2/presence/batch', { userIds: ['ada'] }],
      ['PUT', p('ada'), { status: 'busy' }],
      ['DELETE', p('ada'), undefined],
    ] as const) {
      const res = await call(url, method, path, { body });
      expect({ path, method, status: res.status, code: res.body?.error?.code }).toEqual({ path, method, status: 503, code: 'unavailable' });
    }
  });
});
