import { describe, expect, it } from 'vitest';
import { LIMITS, RoomIdSchema, createPayloadSchemas, parsePayload } from '../src/index.js';

const schemas = createPayloadSchemas();

describe('ids', () => {
  const good = ['a', 'room-1', 'doc:42/section', 'Zimmer ü 🚀', 'x'.repeat(LIMITS.maxIdLength)];
  const bad: unknown[] = ['', 'x'.repeat(LIMITS.maxIdLength + 1), 'a{b', 'a}b', '{room:x}', 'a\nb', 'a\u0000', 'a\u007f', 'a\u0085', 'a\ud800', 42, null, undefined, {}, ['a']];
  it.each(good)('accepts %j', (id) => expect(RoomIdSchema.safeParse(id).success).toBe(true));
  it.each(bad.map((b) => [b]))('rejects %j', (id) => expect(RoomIdSchema.safeParse(id).success).toBe(false));
});

describe('join payload', () => {
  it('accepts the original shape and strips unknown fields', () => {
    const res = parsePayload(schemas.join, { roomId: 'r', userId: 'u', state: { a: 1 }, extra: true });
    expect(res).toEqual({ ok: true, value: { roomId: 'r', userId: 'u', state: { a: 1 } } });
  });

  it.each([
    [undefined, 'payload must be a JSON object'],
    ['str', 'payload must be a JSON object'],
    [{ userId: 'u' }, 'roomId'],
    [{ roomId: 'r', userId: 'u', state: null }, 'state must be a JSON object'],
    [{ roomId: 'r', userId: 'u', state: [1] }, 'state must be a JSON object'],
    [{ roomId: 'r', userId: 'u', state: { d: new Date() } }, 'plain JSON'],
    [{ roomId: 'r', userId: 'u', state: { n: Infinity } }, 'finite'],
    [{ roomId: 'r', userId: 'u', state: { u: undefined } }, 'must be JSON'],
    [{ roomId: 'r', userId: 'u', state: { b: 1n } }, 'must be JSON'],
    [{ roomId: 'r', userId: 'u', state: JSON.parse('{"a":{"constructor":{}}}') }, "forbidden key 'constructor'"],
    [{ roomId: 'r', userId: 'u', state: { '': 1 } }, 'keys must be'],
    [{ roomId: 'r', userId: 'u', connId: 'a}' }, 'connId'],
  ])('rejects case %# with a message naming the problem', (input, fragment) => {
    const res = parsePayload(schemas.join, input);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.error.code).toBe('invalid_payload');
      expect(res.error.message).toContain(fragment);
    }
  });

  it("takes the updates form and knownSeq (issue 12)", () => {
    const res = parsePayload(schemas.join, { roomId: 'r', userId: 'u', connId: 'c', updates: 'patch', knownSeq: 0 });
    expect(res).toEqual({ ok: true, value: { roomId: 'r', userId: 'u', connId: 'c', updates: 'patch', knownSeq: 0 } });
    expect(parsePayload(schemas.join, { roomId: 'r', userId: 'u', updates: 'state' }).ok).toBe(true);
    for (const [bad, fragment] of [
      [{ updates: 'diff' }, "updates must be 'state' or 'patch'"],
      [{ updates: true }, "updates must be 'state' or 'patch'"],
      [{ knownSeq: -1 }, 'knownSeq must be at least 0'],
      [{ knownSeq: 1.5 }, 'knownSeq must be an integer'],
      [{ knownSeq: '3' }, 'knownSeq must be a number'],
      [{ knownSeq: 2 ** 53 }, 'knownSeq'],
    ] as const) {
      const r = parsePayload(schemas.join, { roomId: 'r', userId: 'u', connId: 'c', ...bad });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.message).toContain(fragment);
    }
  });

  it('rejects states past the depth and key limits', () => {
    let deep: unknown = 1;
    for (let i = 0; i < LIMITS.maxStateDepth + 1; i++) deep = { d: deep };
    expect(parsePayload(schemas.join, { roomId: 'r', userId: 'u', state: deep }).ok).toBe(false);
    const many = Object.fromEntries(Array.from({ length: LIMITS.maxStateKeys + 1 }, (_, i) => [`k${i}`, i]));
    expect(parsePayload(schemas.join, { roomId: 'r', userId: 'u', state: many }).ok).toBe(false);
  });

  it('reports an oversized state as payload_too_large, counting UTF-8 bytes', () => {
    const small = createPayloadSchemas({ maxStateBytes: 20 });
    expect(parsePayload(small.join, { roomId: 'r', userId: 'u', state: { a: 'é'.repeat(6) } }).ok).toBe(true); // 20 bytes
    const res = parsePayload(small.join, { roomId: 'r', userId: 'u', state: { a: 'é'.repeat(7) } });
    expect(res.ok || res.error.code).toBe('payload_too_large');
  });
});

describe('heartbeat and leave payloads', () => {
  it('accept no payload at all (original protocol)', () => {
    expect(parsePayload(schemas.heartbeat, undefined)).toEqual({ ok: true, value: {} });
    expect(parsePayload(schemas.leave, null)).toEqual({ ok: true, value: {} });
  });
  it.each([{ epoch: 0 }, { epoch: -1 }, { epoch: 1.5 }, { epoch: '2' }, { epoch: 2 ** 53 }, { roomId: '' }, { patchState: [] }, { patchState: 'x' }, 7, 'x'])(
    'heartbeat rejects %j',
    (input) => expect(parsePayload(schemas.heartbeat, input).ok).toBe(false),
  );
  it('patch values may be null (delete)', () => {
    expect(parsePayload(schemas.heartbeat, { patchState: { a: null } })).toEqual({ ok: true, value: { patchState: { a: null } } });
  });
});

describe('what the docs promise (docs/protocol.md limits)', () => {
  it('ids are counted in UTF-16 code units: 64 emoji (128 units) pass, 65 (130 units) do not', async () => {
    const { RoomIdSchema } = await import('../src/index.js');
    expect(RoomIdSchema.safeParse('😀'.repeat(64)).success).toBe(true);
    expect(RoomIdSchema.safeParse('😀'.repeat(65)).success).toBe(false);
  });

  it('presence:message data is optional and delivered as null; prototype keys and depth > 16 are refused as documented', async () => {
    const { createPayloadSchemas, parsePayload } = await import('../src/index.js');
    const s = createPayloadSchemas();
    expect(parsePayload(s.message, { event: 'chat:ping' })).toEqual({ ok: true, value: { event: 'chat:ping', data: null } });
    expect(parsePayload(s.message, { event: 'chat:x', data: JSON.parse('{"__proto__":1}') }).ok).toBe(false);
    let deep: unknown = 1;
    for (let i = 0; i < 17; i++) deep = [deep];
    expect(parsePayload(s.message, { event: 'chat:x', data: deep }).ok).toBe(false);
  });
});
