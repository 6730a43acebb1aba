import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createJwtVerifier } from '../src/index.js';
import { connect, request, room, startGateway, testKeyPair } from 'realtime-message-testing';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
const key = new TextEncoder().encode(SECRET);

function hs256(claims: Record<string, unknown>, { alg = 'HS256', exp = '1h', secret = key }: { alg?: string; exp?: string | number; secret?: Uint8Array } = {}) {
  return new SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt().setExpirationTime(exp).sign(secret);
}

function unsecured(claims: Record<string, unknown>): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, exp: Math.floor(Date.now() / 1000) + 3600 })}.`;
}

async function refused(url: string, token: unknown): Promise<{ message: string; data?: { code: string } }> {
  const err = await connect(url, { auth: { token } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'connection should be refused').toBeDefined();
  return err as { message: string; data?: { code: string } };
}

describe('JWT auth (HS256)', () => {
  it('accepts a valid token and acts as its subject only', async () => {
    const g = await startGateway({ verifyToken: createJwtVerifier({ secret: SECRET }) });
    const s = await connect(g.url, { auth: { token: await hs256({ sub: 'ada' }) } });
    const r = room();
    expect((await request(s, 'presence:join', { roomId: r, userId: 'ada' })).ok).toBe(true);
    const other = await request(s, 'presence:join', { roomId: room(), userId: 'bob' });
    expect(other.error).toEqual({ code: 'forbidden', message: expect.stringContaining('subject') });
  });

  it.each([
    ['no token', async () => undefined],
    ['empty token', async () => ''],
    ['not a JWT', async () => 'hello'],
    ['forged (other secret)', () => hs256({ sub: 'ada' }, { secret: new TextEncoder().encode('x'.repeat(40)) })],
    ['expired', () => hs256({ sub: 'ada' }, { exp: Math.floor(Date.now() / 1000) - 60 })],
    ['wrong algorithm (HS512)', () => hs256({ sub: 'ada' }, { alg: 'HS512' })],
    ['alg none', async () => unsecured({ sub: 'ada' })],
    ['no subject', () => hs256({})],
    ['token is an object', async () => ({ sub: 'ada' })],
  ])('refuses %s with unauthorized', async (_label, make) => {
    const g = await startGateway({ verifyToken: createJwtVerifier({ secret: SECRET }) });
    const err = await refused(g.url, await make());
    expect(err.data?.code).toBe('unauthorized');
    expect(err.message.length).toBeGreaterThan(3);
  });

  it('disconnects a socket when its token expires, with a notice', async () => {
    const g = await startGateway({ verifyToken: createJwtVerifier({ secret: SECRET }) });
    const s = await connect(g.url, { auth: { token: await hs256({ sub: 'ada' }, { exp: Math.floor(Date.now() / 1000) + 1 }) } });
    const notices: unknown[] = [];
    s.on('presence:error', (n) => notices.push(n));
    const reason = await new Promise((resolve) => s.once('disconnect', resolve));
    expect(reason).toBe('io server disconnect');
    expect(notices).toEqual([{ code: 'unauthorized', message: expect.stringContaining('expired') }]);
  });
});

describe('JWT auth (public keys)', () => {
  it('RS256 public key: accepts tokens of that key, refuses other keys and other algorithms', async () => {
    const { publicKey, privateKey } = testKeyPair({ type: 'rsa', modulusLength: 2048 });
    const other = testKeyPair({ type: 'ec', namedCurve: 'P-256' });
    const g = await startGateway({ verifyToken: createJwtVerifier({ publicKey: await exportSPKI(publicKey) }) });
    const good = await new SignJWT({ sub: 'ada' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('1h').sign(privateKey);
    const s = await connect(g.url, { auth: { token: good } });
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    const wrongKey = await new SignJWT({ sub: 'ada' }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime('1h').sign(other.privateKey);
    expect((await refused(g.url, wrongKey)).data?.code).toBe('unauthorized');
    // Algorithm confusion: an HS256 token keyed with the public key text must not pass.
    const pem = await exportSPKI(publicKey);
    const confused = await new SignJWT({ sub: 'ada' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(pem));
    expect((await refused(g.url, confused)).data?.code).toBe('unauthorized');
  });

  it('ES256 public key is detected from the key type', async () => {
    const { publicKey, privateKey } = testKeyPair({ type: 'ec', namedCurve: 'P-256' });
    const g = await startGateway({ verifyToken: createJwtVerifier({ publicKey: await exportSPKI(publicKey) }) });
    const token = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime('1h').sign(privateKey);
    const s = await connect(g.url, { auth: { token } });
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'bob' })).ok).toBe(true);
  });

  it('JWKS URL: accepts tokens signed by a key of the set (by kid), refuses others', async () => {
    const { publicKey, privateKey } = testKeyPair({ type: 'ec', namedCurve: 'P-256' });
    const stranger = testKeyPair({ type: 'ec', namedCurve: 'P-256' });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    let fetches = 0;
    const jwks = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => jwks.close(() => resolve())));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    const g = await startGateway({ verifyToken: createJwtVerifier({ jwksUrl, issuer: 'https://issuer.test', audience: 'presence' }) });
    const sign = (key: Parameters<SignJWT['sign']>[0], claims: Record<string, unknown> = {}, kid = 'k1') =>
      new SignJWT({ sub: 'ada', ...claims }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('https://issuer.test').setAudience('presence').setExpirationTime('1h').sign(key);
    const s = await connect(g.url, { auth: { token: await sign(privateKey) } });
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    expect(fetches).toBeGreaterThanOrEqual(1);
    expect((await refused(g.url, await sign(stranger.privateKey))).data?.code).toBe('unauthorized');
    expect((await refused(g.url, await new SignJWT({ sub: 'ada' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://other').setAudience('presence').setExpirationTime('1h').sign(privateKey))).data?.code).toBe('unauthorized');
  });

  it('refuses weak secrets and unsupported key types at start', () => {
    expect(() => createJwtVerifier({ secret: 'short' })).toThrow(/32 bytes/);
    const ed = testKeyPair({ type: 'ed25519' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => createJwtVerifier({ publicKey: ed })).toThrow(/RSA or P-256/);
  });
});
