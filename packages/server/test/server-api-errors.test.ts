import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, createRealtimeServer, loadConfig } from 'realtime-message';
import { NodeProcess, connect, request, startServer } from 'realtime-message-testing';

/** The server HTTP API's refusals, and the standalone server's channel settings (CHANNELS_CONFIG, MAX_CHANNELS_PER_SOCKET, CHANNEL_MAX_DATA_BYTES). */

const KEY = 'server-api-test-key-0123456789';
const channel = (ns = 'chat'): string => `${ns}:${randomUUID().slice(0, 8)}`;

async function api(url: string, method: string, body: unknown, headers: Record<string, string> = { 'x-api-key': KEY }): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/api/${method}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

function configFile(json: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'rm-channels-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, typeof json === 'string' ? json : JSON.stringify(json));
  return path;
}

/** A Centrifugo v6 config: `live` keeps no history and has no presence; `chat` has both; one unsupported option. */
const CENTRIFUGO_CONFIG = {
  channel: {
    without_namespace: { presence: true, history_size: 10, history_ttl: '60s', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true },
    namespaces: [
      { name: 'live', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true },
      { name: 'chat', presence: true, history_size: 10, history_ttl: '60s', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, delta_publish: true },
    ],
  },
};

describe('server HTTP API: auth and bad input', () => {
  it('is off (404) without API_KEY', async () => {
    const { url } = await startServer();
    for (const method of ['publish', 'info', 'whatever']) {
      const res = await api(url, method, { channel: 'a', data: 1 });
      expect(res.status).toBe(404);
      expect(res.body.error.message).toContain('API_KEY');
    }
    // Not in the OpenAPI document either.
    const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => /^\/api\/[a-z_]+$/.test(p))).toEqual([]);
  });

  it('a missing or bad key is 401, whatever the method', async () => {
    const { url } = await startServer({ API_KEY: KEY });
    const keys: Array<Record<string, string>> = [{}, { 'x-api-key': 'wrong-key-wrong-key' }, { authorization: `Bearer ${KEY}` }, { authorization: 'apikey wrong' }, { 'x-api-key': `${KEY}x` }, { 'x-api-key': 'nope', authorization: `apikey ${KEY}` }];
    for (const headers of keys) {
      for (const method of ['publish', 'info', 'nope']) {
        const res = await api(url, method, { channel: 'a', data: 1 }, headers);
        expect(res.status, `${method} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.body.error.code).toBe(101);
      }
    }
    // Nothing was published.
    expect((await api(url, 'history', { channel: 'a', limit: 10 })).body.result.offset).toBe(0);
  });

  it('answers bad requests with Centrifugo codes and stores nothing', async () => {
    const { url } = await startServer({ API_KEY: KEY, CHANNEL_MAX_DATA_BYTES: '1024' });
    const ch = channel();
    const refused: Array<[string, unknown, number, RegExp]> = [
      ['publish', { channel: ch }, 107, /data is required/],
      ['publish', { data: 1 }, 107, /channel is required/],
      ['publish', { channel: 'a{b}', data: 1 }, 107, /channel/],
      ['publish', { channel: ch, data: 'x'.repeat(2_000) }, 107, /1024/],
      ['publish', { channel: ch, data: 1, b64data: 'AA==' }, 107, /b64data/],
      ['publish', { channel: ch, data: 1, skip_history: 'yes' }, 107, /skip_history/],
      ['publish', { channel: ch, data: 1, version: 3 }, 107, /version/],
      ['publish', { channel: ch, data: 1, tags: { a: 1 } }, 107, /tags/],
      ['broadcast', { data: 1 }, 107, /channels is required/],
      ['broadcast', { channels: [], data: 1 }, 107, /channels/],
      ['broadcast', { channels: Array.from({ length: 1_001 }, (_, i) => `c${i}`), data: 1 }, 107, /at most 1000/],
      ['history', { channel: ch, limit: 301 }, 107, /limit/],
      ['history', { channel: ch, limit: 1, since: { offset: -1, epoch: 'x' } }, 107, /offset/],
      ['presence', {}, 107, /channel is required/],
      ['disconnect', {}, 107, /user is required/],
      ['disconnect', { user: 'a', whitelist: 'b' }, 107, /whitelist/],
      ['disconnect', { user: 'a', disconnect: { code: 200 } }, 107, /disconnect.code/],
      ['unsubscribe', { channel: ch }, 107, /user is required/],
    ];
    for (const [method, body, code, message] of refused) {
      const res = await api(url, method, body);
      expect(res.status, `${method} ${JSON.stringify(body).slice(0, 80)}`).toBe(200);
      expect(res.body.error?.code, `${method} ${JSON.stringify(body).slice(0, 80)}`).toBe(code);
      expect(res.body.error.message).toMatch(message);
      expect(res.body.result).toBeUndefined();
    }
    // Transport error mode: HTTP statuses instead of 200.
    expect((await api(url, 'publish', { channel: ch }, { 'x-api-key': KEY, 'x-centrifugo-error-mode': 'transport' })).status).toBe(400);
    // Not JSON, not an object, too large, unknown method.
    for (const body of ['{bad', '[1]', '"x"']) {
      const res = await api(url, 'publish', body);
      expect(res.status, body).toBe(400);
      expect(res.body.error.code).toBe(107);
    }
    const huge = await api(url, 'publish', { channel: ch, data: 'x'.repeat(2_000_000) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe(107);
    const unknown = await api(url, 'batch', { commands: [] });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 104, message: expect.stringContaining('publish, broadcast') });
    // None of the refused publishes was stored.
    expect((await api(url, 'history', { channel: ch, limit: 10 })).body.result).toMatchObject({ offset: 0, publications: [] });
    // An empty body is {} (info takes nothing).
    expect((await api(url, 'info', '')).body.result.nodes).toHaveLength(1);
  });

  it('is in the OpenAPI document with tag server-api and the apiKey security', async () => {
    const { url } = await startServer({ API_KEY: KEY });
    const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, { post?: { tags?: string[]; security?: unknown; requestBody?: unknown } }> };
    for (const m of ['publish', 'broadcast', 'history', 'history_remove', 'presence', 'presence_stats', 'channels', 'info', 'disconnect', 'unsubscribe']) {
      const op = doc.paths[`/api/${m}`]?.post;
      expect(op, m).toBeDefined();
      expect(op!.tags).toEqual(['server-api']);
      expect(op!.security).toEqual([{ apiKey: [] }]);
    }
    expect(doc.paths['/api/{method}']).toBeUndefined();
  });

  it('the curl example of docs/channels.md works (no Content-Type, as Centrifugo accepts)', async (ctx) => {
    const { url } = await startServer({ API_KEY: KEY });
    const args = ['-sS', '--header', `X-API-Key: ${KEY}`, '--request', 'POST', '--data', '{"channel": "chat:index", "data": {"text": "hello"}}', `${url}/api/publish`];
    const out = await new Promise<string | undefined>((resolve) => execFile('curl', args, (err, stdout) => resolve(err ? undefined : stdout)));
    if (out === undefined) return ctx.skip();
    expect(JSON.parse(out)).toEqual({ result: { offset: 1, epoch: expect.any(String) } });
  });
});

describe('standalone server channel settings', () => {
  it('CHANNELS_CONFIG: namespaces with history or presence off answer 108, unknown ones 102; warnings at start', async () => {
    const path = configFile(CENTRIFUGO_CONFIG);
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }));
    const server = createRealtimeServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', API_KEY: KEY, CHANNELS_CONFIG: path }), { logger });
    const port = await server.listen();
    onTestFinished(() => server.close());
    const url = `http://127.0.0.1:${port}`;
    expect(lines.join('')).toContain('namespaces[1].delta_publish is not supported and is ignored');
    expect(lines.join('')).toContain('CHANNELS_CONFIG');

    const live = channel('live');
    // No history: Centrifugo's publish answers {} (no offset and epoch).
    expect((await api(url, 'publish', { channel: live, data: 1 })).body).toEqual({ result: {} });
    expect((await api(url, 'history', { channel: live, limit: 1 })).body.error).toMatchObject({ code: 108, message: expect.stringContaining('history') });
    expect((await api(url, 'presence', { channel: live })).body.error.code).toBe(108);
    expect((await api(url, 'presence_stats', { channel: live })).body.error.code).toBe(108);
    expect((await api(url, 'history', { channel: live }, { 'x-api-key': KEY, 'x-centrifugo-error-mode': 'transport' })).status).toBe(400);
    for (const method of ['publish', 'history', 'presence', 'history_remove']) {
      const res = await api(url, method, { channel: 'news:1', data: 1 });
      expect(res.body.error, method).toMatchObject({ code: 102, message: expect.stringContaining("namespace 'news'") });
    }
    expect((await api(url, 'publish', { channel: 'news:1', data: 1 }, { 'x-api-key': KEY, 'x-centrifugo-error-mode': 'transport' })).status).toBe(404);
    const broadcast = (await api(url, 'broadcast', { channels: ['news:1', channel('chat')], data: 1 })).body.result.responses;
    expect(broadcast[0].error.code).toBe(102);
    expect(broadcast[1].result).toMatchObject({ offset: 1 });
    // Over Socket.IO the same config applies.
    const s = await connect(url);
    expect((await request(s, 'channel:subscribe', { channel: 'news:1' })).error).toMatchObject({ code: 'invalid_payload', message: expect.stringContaining('not configured') });
    expect((await request(s, 'channel:subscribe', { channel: live })).ok).toBe(true);
  });

  it('a missing, invalid or wrong CHANNELS_CONFIG stops the start, naming the setting and the problem', async () => {
    const base = { PORT: '0' };
    const cases: Array<[string, RegExp]> = [
      [join(tmpdir(), `missing-${randomUUID()}.json`), /CHANNELS_CONFIG=.*missing-.*cannot be read: no such file/],
      [tmpdir(), /CHANNELS_CONFIG=.* cannot be read: it is a directory/],
      [configFile('{ "channel": '), /CHANNELS_CONFIG=.* is not valid JSON/],
      [configFile([1, 2]), /CHANNELS_CONFIG=.*: the channels config must be a JSON object/],
      [configFile({ channel: { namespaces: [{ name: 'chat', history_size: 10 }] } }), /CHANNELS_CONFIG=.*: namespaces\[0\]: history_size and history_ttl must be set together/],
      [configFile({ channel: { namespaces: [{ name: 'x' }] } }), /CHANNELS_CONFIG=.*namespaces\[0\]\.name/],
    ];
    for (const [path, message] of cases) {
      expect(() => loadConfig({ ...base, CHANNELS_CONFIG: path }), path).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, CHANNELS_CONFIG: path })).toThrow(message);
    }
    // The CLI exits with code 2 and the message.
    const node = await NodeProcess.start({ CHANNELS_CONFIG: cases[2]![0] }, { waitReady: false });
    expect(await node.waitExit()).toBe(2);
    expect(node.logs.join('\n')).toMatch(/CHANNELS_CONFIG=.* is not valid JSON/);
  });

  it('MAX_CHANNELS_PER_SOCKET and CHANNEL_MAX_DATA_BYTES are validated and applied', async () => {
    expect(loadConfig({}).channels).toMatchObject({ maxChannelsPerSocket: 128, maxDataBytes: 65_536, configPath: undefined, namespaces: undefined });
    for (const [env, message] of [
      [{ MAX_CHANNELS_PER_SOCKET: '0' }, /MAX_CHANNELS_PER_SOCKET must be an integer >= 1/],
      [{ MAX_CHANNELS_PER_SOCKET: 'many' }, /MAX_CHANNELS_PER_SOCKET must be an integer >= 1/],
      [{ CHANNEL_MAX_DATA_BYTES: '-5' }, /CHANNEL_MAX_DATA_BYTES must be an integer >= 1/],
      [{ CHANNEL_MAX_DATA_BYTES: '2000000' }, /MAX_FRAME_BYTES must be at least CHANNEL_MAX_DATA_BYTES \+ 1024/],
    ] as const) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(message);
    }
    const { url } = await startServer({ MAX_CHANNELS_PER_SOCKET: '2', CHANNEL_MAX_DATA_BYTES: '100' });
    const s = await connect(url);
    const [a, b] = [channel(), channel()];
    for (const ch of [a, b]) expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    expect((await request(s, 'channel:subscribe', { channel: channel() })).error).toMatchObject({ code: 'forbidden', message: expect.stringContaining('at most 2 channels') });
    expect((await request(s, 'channel:publish', { channel: a, data: 'x'.repeat(200) })).error.code).toBe('payload_too_large');
    expect((await request(s, 'channel:publish', { channel: a, data: 'x'.repeat(50) })).ok).toBe(true);
  });
});
