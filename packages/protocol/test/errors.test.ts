import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  ERROR_CODE_LIST,
  ERROR_REGISTRY,
  PresenceError,
  centrifugoCodeOf,
  httpStatusOf,
  isErrorCode,
  type ErrorCode,
} from '../src/index.js';

describe('error registry', () => {
  it('holds the codes of SPEC §3 and §8', () => {
    expect([...ERROR_CODE_LIST].sort()).toEqual(
      ['internal', 'invalid_payload', 'not_joined', 'payload_too_large', 'rate_limited', 'stale_epoch', 'unauthorized', 'forbidden', 'unavailable', 'already_subscribed'].sort(),
    );
    expect(isErrorCode('unavailable')).toBe(true);
    expect(isErrorCode('stale_epoch')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });

  it.each(ERROR_CODE_LIST)('%s has a doc text and an HTTP error status', (code) => {
    const spec = ERROR_REGISTRY[code];
    expect(spec.doc.length).toBeGreaterThan(20);
    expect(httpStatusOf(code)).toBe(spec.http);
    expect(spec.http >= 400 && spec.http <= 599).toBe(true);
  });

  it('maps codes to the HTTP statuses a REST client expects', () => {
    const expected: Record<ErrorCode, number> = {
      invalid_payload: 400,
      unauthorized: 401,
      forbidden: 403,
      not_joined: 404,
      stale_epoch: 409,
      already_subscribed: 409,
      payload_too_large: 413,
      rate_limited: 429,
      internal: 500,
      unavailable: 503,
    };
    expect(Object.fromEntries(ERROR_CODE_LIST.map((c) => [c, httpStatusOf(c)]))).toEqual(expected);
    // The literal type follows the code, so a route can declare its statuses.
    const status: 429 = httpStatusOf('rate_limited');
    expect(status).toBe(429);
  });

  it('maps to a Centrifugo client error code only where Centrifugo has one with the same meaning', () => {
    expect(Object.fromEntries(ERROR_CODE_LIST.map((c) => [c, centrifugoCodeOf(c)]))).toEqual({
      invalid_payload: 107,
      unauthorized: 101,
      forbidden: 103,
      rate_limited: 111,
      already_subscribed: 105,
      internal: 100,
      unavailable: 100,
      not_joined: undefined,
      stale_epoch: undefined,
      payload_too_large: undefined,
    });
  });

  it('ERROR_CODES is the registry as code -> doc text', () => {
    expect(ERROR_CODES).toEqual(Object.fromEntries(ERROR_CODE_LIST.map((c) => [c, ERROR_REGISTRY[c].doc])));
  });

  it('is documented in docs/protocol.md, one row each with its HTTP status, and nothing else is', () => {
    const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(ERROR_CODE_LIST.map((c) => [c, httpStatusOf(c)])));
    const anyRow = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(anyRow.sort()).toEqual([...ERROR_CODE_LIST].sort());
  });

  it('PresenceError is an Error with a code and serializes to the ack shape', () => {
    const err = new PresenceError('forbidden', 'nope');
    expect(err).toBeInstanceOf(Error);
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: 'forbidden', message: 'nope' });
  });
});
