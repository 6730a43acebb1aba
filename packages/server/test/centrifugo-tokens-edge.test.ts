import type { KeyObject } from 'node:crypto';
import { testKeyPair } from 'realtime-message-testing';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SignJWT, exportJWK, type JWTPayload } from 'jose';
import { TokenError, connectionCredentials, createCentrifugoTokenVerifier } from '../src/transports/centrifugo/tokens.js';
import { SECRET, token } from './centrifugo-fixtures.js';

const now = (): number => Math.floor(Date.now() / 1_000);
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');

/** The refusal of a promise: its kind and message (a TokenError is expected). */
async function refusal(p: Promise<unknown>): Promise<{ kind: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TokenError);
    return { kind: (err as TokenError).kind, message: (err as TokenError).message };
  }
  throw new Error('not refused');
}

const sign = (claims: JWTPayload, key: KeyObject | Uint8Array, alg: string, kid?: string): Promise<string> =>
  new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).setIssuedAt().setExpirationTime('1h').sign(key);

describe('Centrifugo token keys: the algorithm follows the public key', () => {
  it.each([
    ['P-256', 'ES256', 'ES384'],
    ['P-384', 'ES384', 'ES256'],
    ['P-521', 'ES512', 'ES256'],
  ])('an EC %s key verifies %s only', async (namedCurve, alg, other) => {
    const { publicKey, privateKey } = testKeyPair({ type: 'ec', namedCurve });
    const v = createCentrifugoTokenVerifier({ publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    expect((await v.connection(await sign({ sub: 'ada' }, privateKey, alg))).user).toBe('ada');
    // The same key cannot sign another curve's algorithm; a token claiming it is refused by its header.
    const forged = (await sign({ sub: 'ada' }, privateKey, alg)).replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: other })).toString('base64url'));
    expect(await refusal(v.connection(forged))).toEqual({ kind: 'invalid', message: 'token algorithm not allowed' });
  });

  it('Ed25519 keys verify EdDSA; RSA keys RS384 and RS512 as well; other key types are refused at start', async () => {
    const ed = testKeyPair({ type: 'ed25519' });
    const v = createCentrifugoTokenVerifier({ publicKey: ed.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    expect((await v.subscription(await sign({ sub: 'ada', channel: '$c' }, ed.privateKey, 'EdDSA'))).channel).toBe('$c');
    const rsa = testKeyPair({ type: 'rsa', modulusLength: 2048 });
    // A PEM with literal \n (as environment variables carry it).
    const r = createCentrifugoTokenVerifier({ publicKey: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString().replace(/\n/g, '\\n') });
    expect((await r.connection(await sign({ sub: 'bob' }, rsa.privateKey, 'RS512'))).user).toBe('bob');
    const x = testKeyPair({ type: 'x25519' });
    expect(() => createCentrifugoTokenVerifier({ publicKey: x.publicKey.export({ type: 'spki', format: 'pem' }).toString() })).toThrow('the token public key must be RSA, EC P-256/P-384/P-521 or Ed25519 (got x25519)');
    const k1 = testKeyPair({ type: 'ec', namedCurve: 'secp256k1' });
    expect(() => createCentrifugoTokenVerifier({ publicKey: k1.publicKey.export({ type: 'spki', format: 'pem' }).toString() })).toThrow('(got ec)');
    expect(() => createCentrifugoTokenVerifier({})).toThrow('createCentrifugoTokenVerifier needs a secret, a public key or a JWKS URL');
  });

  it('a JWKS URL: keys are fetched by kid (RSA and EC); an unknown kid is refused as invalid', async () => {
    const rsa = testKeyPair({ type: 'rsa', modulusLength: 2048 });
    const ec = testKeyPair({ type: 'ec', namedCurve: 'P-256' });
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: 'r1', alg: 'RS256' },
      { ...(await exportJWK(ec.publicKey)), kid: 'e1', alg: 'ES256' },
    ];
    let fetches = 0;
    const http = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const v = createCentrifugoTokenVerifier({ jwksUrl: `http://127.0.0.1:${(http.address() as AddressInfo).port}/jwks` });
    expect((await v.connection(await sign({ sub: 'ada' }, rsa.privateKey, 'RS256', 'r1'))).user).toBe('ada');
    expect((await v.connection(await sign({ sub: 'eve' }, ec.privateKey, 'ES256', 'e1'))).user).toBe('eve');
    expect(fetches).toBeGreaterThanOrEqual(1);
    expect(await refusal(v.connection(await sign({ sub: 'ada' }, rsa.privateKey, 'RS256', 'unknown')))).toEqual({ kind: 'invalid', message: 'token invalid' });
    // HMAC is not a JWKS algorithm here.
    expect(await refusal(v.connection(await token({ sub: 'ada' })))).toEqual({ kind: 'invalid', message: 'token algorithm not allowed' });
  });
});

describe('Centrifugo tokens: what is refused, and as what', () => {
  const key = new TextEncoder().encode(SECRET);

  it('too long, not yet valid (nbf: expired, so the client gets a new one), another issuer or audience, without exp when required, living too long', async () => {
    const v = createCentrifugoTokenVerifier({ secret: SECRET, issuer: 'auth', audience: 'app', requireExp: true, maxLifetimeSec: 600 });
    const ok = { sub: 'ada', iss: 'auth', aud: 'app' };
    expect((await v.connection(await token({ ...ok }, { ttlSec: 600 }))).user).toBe('ada');
    expect(await refusal(v.connection('x'.repeat(16_385)))).toEqual({ kind: 'invalid', message: 'token longer than 16384 characters' });
    expect(await refusal(v.connection(await token({ ...ok, nbf: now() + 60 }, { ttlSec: 300 })))).toEqual({ kind: 'expired', message: 'token not valid yet (nbf)' });
    expect(await refusal(v.connection(await token({ ...ok, iss: 'other' }, { ttlSec: 300 })))).toEqual({ kind: 'invalid', message: 'token claim invalid (iss)' });
    expect(await refusal(v.connection(await token({ ...ok, aud: 'other' }, { ttlSec: 300 })))).toEqual({ kind: 'invalid', message: 'token claim invalid (aud)' });
    const noExp = await new SignJWT(ok).setProtectedHeader({ alg: 'HS256' }).sign(key);
    expect(await refusal(v.connection(noExp))).toEqual({ kind: 'invalid', message: 'token claim invalid (exp)' });
    expect(await refusal(v.connection(await token({ ...ok }, { ttlSec: 601 })))).toEqual({ kind: 'invalid', message: 'token lives longer than the allowed 600 s' });
    // Without iat the lifetime counts from now.
    const noIat = await new SignJWT(ok).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now() + 3_600).sign(key);
    expect(await refusal(v.connection(noIat))).toEqual({ kind: 'invalid', message: 'token lives longer than the allowed 600 s' });
    const shortNoIat = await new SignJWT(ok).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(now() + 60).sign(key);
    expect((await v.connection(shortNoIat)).user).toBe('ada');
    // HS384 and HS512 with the secret.
    for (const alg of ['HS384', 'HS512']) expect((await createCentrifugoTokenVerifier({ secret: SECRET }).connection(await token({ sub: 'x' }, { alg }))).user).toBe('x');
  });

  it('connection claims: b64info and b64data are JSON; expire_at wins over exp (0: never); subs with their options; bad shapes are named', async () => {
    const v = createCentrifugoTokenVerifier({ secret: SECRET });
    const c = await v.connection(await token({ sub: 'ada', b64info: b64({ name: 'Ada' }), b64data: b64([1]), expire_at: 0, meta: { plan: 'pro' }, subs: { 'news:1': { b64info: b64({ r: 1 }), b64data: b64({ d: 1 }), expire_at: now() + 60, override: { presence: { value: false } } }, 'news:2': {} } }));
    expect(c).toMatchObject({ user: 'ada', expiresAt: undefined, info: { name: 'Ada' }, data: [1], meta: { plan: 'pro' } });
    expect(c.subs.get('news:1')).toEqual({ info: { r: 1 }, data: { d: 1 }, override: { presence: { value: false } }, expiresAt: expect.any(Number) });
    expect(c.subs.get('news:2')).toEqual({ info: undefined, data: undefined, override: undefined, expiresAt: undefined });
    const at = now() + 120;
    expect((await v.connection(await token({ sub: 'ada', expire_at: at }))).expiresAt).toBe(at * 1_000);
    // No exp at all: never expires.
    expect(connectionCredentials({ sub: 'ada' }).expiresAt).toBeUndefined();
    expect(connectionCredentials({}).user).toBe('');
    // A b64data that is not a string is not read.
    expect(connectionCredentials({ sub: 'ada', b64data: 5 }).data).toBeUndefined();
    const invalid = (claims: Record<string, unknown>): Promise<{ kind: string; message: string }> => refusal(Promise.resolve().then(() => connectionCredentials(claims)));
    expect(await invalid({ b64info: '!!!' })).toEqual({ kind: 'invalid', message: 'b64info is not base64 of JSON (the JSON protocol carries JSON only)' });
    expect(await invalid({ b64data: b64('x').slice(0, 3) })).toMatchObject({ message: 'b64data is not base64 of JSON (the JSON protocol carries JSON only)' });
    expect(await invalid({ subs: { ch: { b64data: 'not json' } } })).toMatchObject({ message: 'subs.ch.b64data is not base64 of JSON (the JSON protocol carries JSON only)' });
    expect(await invalid({ sub: 5 })).toMatchObject({ message: expect.stringMatching(/^connection token claim invalid \(sub: /) });
    expect(await invalid({ channels: 'chat' })).toMatchObject({ message: expect.stringMatching(/^connection token claim invalid \(channels: /) });
    expect(await invalid({ subs: { ch: { override: { presence: true } } } })).toMatchObject({ message: expect.stringMatching(/^connection token claim invalid \(subs\.ch\.override\.presence: /) });
    expect(await invalid({ expire_at: -1 })).toMatchObject({ message: expect.stringMatching(/^connection token claim invalid \(expire_at: /) });
  });

  it('subscription claims: a channel is required; b64 fields; client; expire_at; a bad override is named', async () => {
    const v = createCentrifugoTokenVerifier({ secret: SECRET });
    expect(await refusal(v.subscription(await token({ sub: 'ada' })))).toEqual({ kind: 'invalid', message: 'subscription token claim invalid (channel: Invalid input: expected string, received undefined)' });
    expect(await refusal(v.subscription(await token({ sub: 'ada', channel: '' })))).toEqual({ kind: 'invalid', message: 'subscription token claim invalid (channel: a subscription token needs a channel claim)' });
    expect(await refusal(v.subscription(await token({ sub: 'ada', channel: 'c', override: { join_leave: { value: 'yes' } } })))).toMatchObject({ message: expect.stringMatching(/^subscription token claim invalid \(override\.join_leave\.value: /) });
    expect(await refusal(v.subscription(await token({ sub: 'ada', channel: 'c', b64info: '%%' })))).toMatchObject({ message: 'b64info is not base64 of JSON (the JSON protocol carries JSON only)' });
    const at = now() + 30;
    expect(await v.subscription(await token({ sub: 'ada', channel: 'c', client: 'cid', b64info: b64({ role: 'x' }), b64data: b64('hi'), expire_at: at }))).toEqual({
      user: 'ada',
      channel: 'c',
      client: 'cid',
      info: { role: 'x' },
      data: 'hi',
      override: undefined,
      expiresAt: at * 1_000,
    });
    expect((await v.subscription(await token({ sub: 'ada', channel: 'c', expire_at: 0 }))).expiresAt).toBeUndefined();
    expect(await refusal(v.subscription(await token({ sub: 'ada', channel: 'c', exp: now() - 5 })))).toEqual({ kind: 'expired', message: 'token expired' });
  });
});
