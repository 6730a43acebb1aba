import { describe, expect, it } from 'vitest';
import { StatusRecordSchema, type StatusRecord, type UserId } from 'realtime-message-protocol';
import { startServer } from 'realtime-message-testing';
import { intJson, recordJson, statusSerializerCompiler, usersJson } from '../src/transports/http/routes/status-serialize.js';
import { recordRead, usersRead } from '../src/transports/http/routes/status-schemas.js';

/**
 * The status routes' own JSON writer must produce exactly what
 * JSON.stringify does for every record it can be given, and the cache
 * counters in /metrics, now read from the cache when scraped, must still
 * count each read once.
 */

const base: StatusRecord = { userId: 'ada' as UserId, status: 'online', message: null, manual: false, expiresAt: null, messageExpiresAt: null, lastSeen: null, updatedAt: null, nodeId: null, seq: 0 };

describe('status answers written by hand', () => {
  it('integers: the same text as JSON.stringify at every edge of the split conversion', () => {
    const edges = [0, -0, 1, 9, 10, 999_999, 1_000_000, 2_147_483_647, 2_147_483_648, -2_147_483_648, -2_147_483_649, 1_796_048_219_098, 1_796_048_000_000, 1_796_047_999_999, 1_796_048_000_001, 1e15 - 1, 1e15, 1e15 + 1, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -1_796_048_219_098, 1.5, 1e21, 1e-7];
    for (const n of edges) expect(intJson(n), String(n)).toBe(JSON.stringify(n));
    // every value of the millions' neighbourhood, where a rounding slip would show
    for (let k = 1; k < 1e9; k = k * 3 + 7) for (const d of [-1, 0, 1]) expect(intJson(k * 1e6 + d)).toBe(JSON.stringify(k * 1e6 + d));
    for (let i = 0; i < 20_000; i++) {
      const n = Math.floor(Math.random() * 1e15);
      expect(intJson(n)).toBe(JSON.stringify(n));
    }
    expect([NaN, Infinity, -Infinity].map(intJson)).toEqual(['null', 'null', 'null']);
  });

  it('records and lists: byte for byte JSON.stringify, for strings that need escaping too', () => {
    const strings = ['plain', 'with "quotes" and \\ backslash', 'tab\tnew\nline\u0001\u001f', 'émoji 🎉 ok', 'lone \ud800 high', 'lone \udfff low', '', '</script>'];
    const records: StatusRecord[] = [base, { ...base, status: 'busy', manual: true, expiresAt: 1_796_048_219_098, stale: true }];
    for (const [i, s] of strings.entries()) {
      const t = 1_796_000_000_000 + i * 1_000_001;
      records.push({ userId: (s || 'x') as UserId, status: (['online', 'away', 'busy', 'offline'] as const)[i % 4]!, message: s, manual: i % 2 === 0, expiresAt: t, messageExpiresAt: t + 5, lastSeen: t - 7, updatedAt: t - 9, nodeId: s, seq: i * 1_000_003 });
    }
    for (const r of records) {
      expect(recordJson(r)).toBe(JSON.stringify(r));
      expect(JSON.parse(recordJson(r))).toEqual(r);
    }
    expect(usersJson({ users: records })).toBe(JSON.stringify({ users: records }));
    expect(usersJson({ users: [] })).toBe('{"users":[]}');
  });

  it('picks the writer by the schema: records, lists, and JSON.stringify for error bodies', () => {
    const compile = (schema: unknown) => statusSerializerCompiler({ schema });
    expect(compile(recordRead)).toBe(recordJson);
    expect(compile(usersRead)).toBe(usersJson);
    const error = { error: { code: 'invalid_payload', message: 'bad "id"' } };
    expect(compile({ type: 'object', properties: { error: {} } })(error)).toBe(JSON.stringify(error));
  });
});

describe('status cache counters in /metrics', () => {
  it('count each cached and uncached read once, read from the cache when scraped', async () => {
    const { url } = await startServer({ DEMO_DIR: 'off' });
    const counts = async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const num = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
      return { hits: num('rm_status_cache_hits_total'), misses: num('rm_status_cache_misses_total') };
    };
    const before = await counts();
    expect(before).toEqual({ hits: 0, misses: 0 });
    // Unknown users: the first read of each misses and caches "unknown"; the second hits.
    for (const id of ['m1', 'm2', 'm3']) {
      const res = await fetch(`${url}/api/v2/presence/${id}`);
      const body = await res.text();
      expect(body).toBe(JSON.stringify(JSON.parse(body)));
      expect(StatusRecordSchema.parse(JSON.parse(body)).status).toBe('offline');
    }
    expect(await counts()).toEqual({ hits: 0, misses: 3 });
    await fetch(`${url}/api/v2/presence/m1`).then((r) => r.text());
    await fetch(`${url}/api/v2/presence/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userIds: ['m2', 'm3', 'm4'] }) }).then((r) => r.text());
    // Scraping twice does not count twice.
    expect(await counts()).toEqual({ hits: 3, misses: 4 });
    expect(await counts()).toEqual({ hits: 3, misses: 4 });
  });
});
