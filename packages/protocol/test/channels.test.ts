import { describe, expect, it } from 'vitest';
import {
  CHANNEL_LIMITS,
  ChannelError,
  ChannelPublicationSchema,
  ChannelSchema,
  PresenceError,
  PublicationSchema,
  StreamPositionSchema,
  channelParts,
  createChannelSchemas,
  parsePayload,
} from '../src/index.js';

describe('channel names', () => {
  it.each(['chat', 'chat:room-1', 'a:b:c', '$private:x', 'dialog#ada,bob', 'ns:é'])('accepts %s', (name) => {
    expect(ChannelSchema.safeParse(name).success).toBe(true);
  });

  it.each<[unknown, string]>([
    ['', 'empty'],
    ['x'.repeat(CHANNEL_LIMITS.maxChannelLength + 1), 'too long'],
    ['chat:{a}', 'hash tag braces'],
    ['chat:\n', 'control character'],
    ['\ud800', 'lone surrogate'],
    [42, 'not a string'],
  ])('refuses %j (%s) as invalid_payload', (name) => {
    const res = parsePayload(ChannelSchema, name);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.error.code).toBe('invalid_payload');
  });

  it('splits namespace, private prefix and users as Centrifugo does', () => {
    expect(channelParts('chat:room:1')).toEqual({ namespace: 'chat', private: false, users: undefined });
    expect(channelParts('room')).toEqual({ namespace: '', private: false, users: undefined });
    expect(channelParts('$secret:x')).toEqual({ namespace: 'secret', private: true, users: undefined });
    expect(channelParts('dm:talk#ada,bob')).toEqual({ namespace: 'dm', private: false, users: ['ada', 'bob'] });
  });
});

describe('channel payloads', () => {
  const s = createChannelSchemas({ maxDataBytes: 100, historyMaxLimit: 50 });

  it('publish: data is any JSON value, present, within the limit', () => {
    expect(s.publish.parse({ channel: 'c', data: null })).toEqual({ channel: 'c', data: null });
    expect(s.publish.parse({ channel: 'c', data: [1, 'a'], tags: { k: 'v' }, extra: 1 })).toEqual({ channel: 'c', data: [1, 'a'], tags: { k: 'v' } });
    const missing = parsePayload(s.publish, { channel: 'c' });
    expect(!missing.ok && missing.error).toMatchObject({ code: 'invalid_payload', message: expect.stringContaining('data') });
    const big = parsePayload(s.publish, { channel: 'c', data: 'x'.repeat(200) });
    expect(!big.ok && big.error.code).toBe('payload_too_large');
    for (const [what, data] of [['NaN', Number.NaN], ['function', () => 1], ['Date', new Date()], ['constructor key', JSON.parse('{"constructor":1}')], ['bigint', 10n]] as const) {
      const res = parsePayload(s.publish, { channel: 'c', data });
      expect(!res.ok && res.error.code, what).toBe('invalid_payload');
    }
    const tags = parsePayload(s.publish, { channel: 'c', data: 1, tags: { k: 5 } });
    expect(!tags.ok && tags.error.code).toBe('invalid_payload');
    const many = parsePayload(s.publish, { channel: 'c', data: 1, tags: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) });
    expect(!many.ok && many.error.code).toBe('invalid_payload');
  });

  it('history: limit from -1 to the maximum, offsets non-negative integers, epochs bounded; defaults as Centrifugo', () => {
    expect(s.history.parse({ channel: 'c' })).toEqual({ channel: 'c', limit: 0, reverse: false });
    expect(s.history.parse({ channel: 'c', limit: -1, since: { offset: 3, epoch: 'ab' }, reverse: true })).toMatchObject({ limit: -1, since: { offset: 3, epoch: 'ab' } });
    for (const bad of [
      { limit: 51 },
      { limit: -2 },
      { limit: 1.5 },
      { limit: '5' },
      { since: { offset: -1, epoch: 'e' } },
      { since: { offset: 1.5, epoch: 'e' } },
      { since: { offset: 2 ** 53, epoch: 'e' } },
      { since: { offset: 1 } },
      { since: { offset: 1, epoch: 'x'.repeat(65) } },
      { since: { offset: 0, epoch: 'e' }, reverse: true },
      { reverse: 'yes' },
    ]) {
      const res = parsePayload(s.history, { channel: 'c', ...bad });
      expect(!res.ok && res.error.code, JSON.stringify(bad)).toBe('invalid_payload');
    }
    expect(s.historyOptions.parse({})).toEqual({ limit: 0, reverse: false });
  });

  it('positions and publications', () => {
    expect(StreamPositionSchema.parse({ offset: 0, epoch: '' })).toEqual({ offset: 0, epoch: '' });
    expect(PublicationSchema.safeParse({ offset: 1, data: { a: 1 }, info: { user: 'u', client: 'c' }, tags: { t: '1' } }).success).toBe(true);
    expect(PublicationSchema.safeParse({ offset: 0, data: 1 }).success).toBe(false);
    expect(PublicationSchema.safeParse({ offset: 1, data: 1, channel: 'x' }).success).toBe(false);
    expect(ChannelPublicationSchema.safeParse({ channel: 'c', epoch: 'E', offset: 1, data: 'x' }).success).toBe(true);
  });
});

describe('ChannelError', () => {
  it('travels under a registry code, with its reason and Centrifugo code', () => {
    const e = new ChannelError('unknown_channel', "namespace 'x' is not configured");
    expect(e).toBeInstanceOf(PresenceError);
    expect(e.code).toBe('invalid_payload');
    expect(e.centrifugoCode).toBe(102);
    expect(JSON.parse(JSON.stringify(e))).toEqual({ code: 'invalid_payload', reason: 'unknown_channel', message: "namespace 'x' is not configured" });
    expect(new ChannelError('not_available', 'off').code).toBe('forbidden');
    expect(new ChannelError('unrecoverable_position', 'ahead', { code: 'invalid_payload' }).code).toBe('invalid_payload');
  });
});
