import { SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PresenceError, createJwtVerifier } from '../src/index.js';
import { expireAt } from '../src/transports/socketio/middleware.js';
import type { SocketSession } from '../src/transports/socketio/session.js';

const secret = 'k'.repeat(40);
const key = new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

function sign(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('ada').sign(key);
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PresenceError);
  expect((err as PresenceError).code).toBe('unauthorized');
  return (err as PresenceError).message;
}

describe('token rules', () => {
  it('refuses a token issued in the future beyond the clock tolerance, accepts one within it', async () => {
    const verify = createJwtVerifier({ secret });
    expect(await refusal(verify(await sign({ iat: now() + 3_600, exp: now() + 7_200 })))).toContain('issued in the future');
    await expect(verify(await sign({ iat: now() + 2, exp: now() + 60 }))).resolves.toEqual(expect.objectContaining({ userId: 'ada' }));
  });

  it('requireExp refuses a token without exp', async () => {
    expect(await refusal(createJwtVerifier({ secret, requireExp: true })(await sign({ iat: now() })))).toContain('exp');
    await expect(createJwtVerifier({ secret })(await sign({ iat: now() }))).resolves.toEqual(expect.objectContaining({ userId: 'ada', expiresAt: undefined }));
  });

  it('maxLifetimeSec refuses a token that lives longer, accepts one that does not', async () => {
    const verify = createJwtVerifier({ secret, maxLifetimeSec: 3_600 });
    expect(await refusal(verify(await sign({ iat: now(), exp: now() + 2 * 86_400 })))).toContain('longer than the allowed 3600 s');
    await expect(verify(await sign({ iat: now(), exp: now() + 600 }))).resolves.toEqual(expect.objectContaining({ userId: 'ada' }));
  });
});

describe('connection expiry', () => {
  afterEach(() => void vi.useRealTimers());

  it('a token that lives longer than setTimeout can wait (24.8 days) still ends the connection when it expires, not before', () => {
    vi.useFakeTimers({ now: 0 });
    const calls: string[] = [];
    const session = {
      socket: { emit: (event: string) => calls.push(`emit:${event}`), disconnect: () => calls.push('disconnect') },
      expiryTimer: undefined,
    } as unknown as SocketSession;
    const day = 86_400_000;
    expireAt(session, 40 * day);
    vi.advanceTimersByTime(39 * day);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(day - 1);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual(['emit:presence:error', 'disconnect']);
  });
});
