import { describe, expect, it } from 'vitest';
import type { DisconnectedContext } from 'centrifuge';
import WebSocket from 'ws';
import { waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, channelsConfig, client, raw, type RawSocket } from './centrifugo-fixtures.js';

const BAD_REQUEST = { code: 3501, reason: 'bad request' };

/** A raw connection that has connected (anonymous, open mode). */
async function connected(ws: string): Promise<RawSocket> {
  const s = await raw(ws);
  s.send(JSON.stringify({ id: 1, connect: {} }));
  expect(JSON.parse(await s.next(0))).toMatchObject({ id: 1, connect: { client: expect.any(String) } });
  return s;
}

/** Every reply and push received so far, parsed. */
const messages = (s: RawSocket): Array<Record<string, any>> => s.frames.flatMap((f) => f.split('\n')).map((l) => JSON.parse(l) as Record<string, any>);

const reply = (s: RawSocket, id: number): Promise<Record<string, any>> => waitFor(() => messages(s).find((m) => m['id'] === id), { what: `reply ${id}` });

describe('Centrifugo endpoint: bad input gets Centrifugo\'s reaction, never a crash or a hang', () => {
  it.each([
    ['malformed JSON', ['{"connect":']],
    ['a JSON array', ['[1,2]']],
    ['an empty frame', ['']],
    ['an empty line between commands', ['{"id":1,"connect":{}}', '', '{"id":2,"connect":{}}']],
    ['a command before connect', ['{"id":1,"subscribe":{"channel":"chat:1"}}']],
    ['an unknown method', ['{"id":7,"unknown_method":{}}']],
    ['a ping command', ['{"id":1,"connect":{}}', '{"id":2,"ping":{}}']],
    ['a pong with no ping outstanding', ['{}']],
    ['an id out of range', ['{"id":4294967296,"connect":{}}']],
    ['a negative id', ['{"id":-1,"connect":{}}']],
    ['a fractional id', ['{"id":1.5,"connect":{}}']],
    ['a field of the wrong type', ['{"id":1,"connect":{"token":5}}']],
    ['a second connect', ['{"id":1,"connect":{}}', '{"id":2,"connect":{}}']],
    ['an empty channel', ['{"id":1,"connect":{}}', '{"id":2,"subscribe":{"channel":""}}']],
    ['a refresh without a token', ['{"id":1,"connect":{}}', '{"id":2,"refresh":{}}']],
  ])('%s closes with 3501 "bad request"', async (_what, lines) => {
    const { ws } = await centrifugoServer();
    const s = await raw(ws);
    s.send(...lines);
    expect(await s.closed).toEqual(BAD_REQUEST);
  });

  it('the largest id is accepted; commands after a failed connect close with 3501', async () => {
    const { ws } = await centrifugoServer({}, { auth: true });
    const s = await raw(ws);
    s.send(JSON.stringify({ id: 4294967295, connect: { token: 'not.a.jwt' } }));
    expect(await s.closed).toEqual({ code: 3500, reason: 'invalid token' });
    const t = await raw(ws);
    const expired = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEiLCJleHAiOjF9.x';
    t.send(JSON.stringify({ id: 4294967295, connect: { token: expired } }));
    expect(await t.closed).toEqual({ code: 3500, reason: 'invalid token' }); // a bad signature is invalid before it is expired
  });

  it('a frame above the message size limit closes with 1009 (the client reports 3 "message size limit exceeded" and stops)', async () => {
    const { ws } = await centrifugoServer({ CENTRIFUGO_WEBSOCKET_MESSAGE_SIZE_LIMIT: '4096' });
    const s = await connected(ws);
    s.send(JSON.stringify({ id: 2, publish: { channel: 'chat:1', data: 'x'.repeat(5_000) } }));
    expect((await s.closed).code).toBe(1009);
  });

  it('errors of commands: 105 already subscribed, 106 channel limit, 102 unknown namespace, 103 permission, 107 bad name, 108 rpc and history off; send closes 3508', async () => {
    const config = channelsConfig({
      channel: {
        without_namespace: { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true },
        namespaces: [{ name: 'chat', presence: true, allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, allow_presence_for_subscriber: true, allow_presence_for_anonymous: true, allow_history_for_client: true, allow_history_for_anonymous: true }],
      },
    });
    const { ws } = await centrifugoServer({ CHANNELS_CONFIG: config, CENTRIFUGO_CLIENT_CHANNEL_LIMIT: '2' });
    const s = await connected(ws);
    const ch = channel();
    s.send(
      JSON.stringify({ id: 2, subscribe: { channel: ch } }),
      JSON.stringify({ id: 3, subscribe: { channel: ch } }),
      JSON.stringify({ id: 4, subscribe: { channel: 'news:1' } }),
      JSON.stringify({ id: 5, publish: { channel: ch, data: {} } }),
      JSON.stringify({ id: 6, subscribe: { channel: 'a{b}' } }),
      JSON.stringify({ id: 7, rpc: { method: 'm', data: {} } }),
      JSON.stringify({ id: 8, history: { channel: ch, limit: 10 } }),
      JSON.stringify({ id: 9, presence_stats: { channel: ch } }),
      JSON.stringify({ id: 10, subscribe: { channel: 'plain' } }),
      JSON.stringify({ id: 11, subscribe: { channel: 'plain2' } }),
      JSON.stringify({ id: 12, unsubscribe: { channel: 'never-subscribed' } }),
      JSON.stringify({ id: 13, subscribe: { channel: `$${ch}` } }),
    );
    expect((await reply(s, 2))['subscribe']).toEqual({});
    expect((await reply(s, 3))['error']).toMatchObject({ code: 105 });
    expect((await reply(s, 4))['error']).toMatchObject({ code: 102 });
    expect((await reply(s, 5))['error']).toMatchObject({ code: 103 });
    expect((await reply(s, 6))['error']).toMatchObject({ code: 107 });
    expect((await reply(s, 7))['error']).toMatchObject({ code: 108 });
    expect((await reply(s, 8))['error']).toMatchObject({ code: 108 });
    // The anonymous subscriber is in presence (as Centrifugo counts it); both counts are always present.
    expect((await reply(s, 9))['presence_stats']).toEqual({ num_clients: 1, num_users: 1 });
    expect((await reply(s, 10))['subscribe']).toEqual({});
    expect((await reply(s, 11))['error']).toMatchObject({ code: 106 });
    expect((await reply(s, 12))['unsubscribe']).toEqual({});
    expect((await reply(s, 13))['error']).toMatchObject({ code: 106 });
    s.send(JSON.stringify({ send: { data: {} } }));
    expect(await s.closed).toEqual({ code: 3508, reason: 'not available' });
  });

  it('pings every interval; a client that does not answer is closed with 3012, one that never connects with 3502', async () => {
    const { ws } = await centrifugoServer({ CENTRIFUGO_CLIENT_PING_INTERVAL: '200ms', CENTRIFUGO_CLIENT_PONG_TIMEOUT: '200ms', CENTRIFUGO_CLIENT_STALE_CLOSE_DELAY: '300ms' });
    const s = await connected(ws);
    await waitFor(() => s.frames.find((f) => f === '{}'), { what: 'a ping' });
    expect(await s.closed).toEqual({ code: 3012, reason: 'no pong' });
    const idle = await raw(ws);
    expect(await idle.closed).toEqual({ code: 3502, reason: 'stale' });
    // The official client answers pings: still connected after several intervals.
    const c = client(ws);
    const gone: DisconnectedContext[] = [];
    c.on('disconnected', (d) => gone.push(d));
    c.connect();
    await c.ready(3_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(c.state).toBe('connected');
    expect(gone).toEqual([]);
  });

  it('refuses Protobuf (3506) and upgrades from origins outside ALLOWED_ORIGINS (403); other paths get 404', async () => {
    const { ws } = await centrifugoServer({ ALLOWED_ORIGINS: 'https://app.example.com' });
    const pb = await raw(ws, { protocols: ['centrifuge-protobuf'] });
    expect((await pb.closed).code).toBe(3506);
    const json = await raw(ws, { protocols: ['centrifuge-json'], origin: 'https://app.example.com' });
    expect(json.ws.protocol).toBe('centrifuge-json');
    const status = (url: string, origin?: string): Promise<number> =>
      new Promise((resolve) => {
        const w = new WebSocket(url, origin ? { origin } : {});
        w.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        w.on('open', () => {
          resolve(101);
          w.close();
        });
        w.on('error', () => undefined);
      });
    expect(await status(ws, 'https://evil.example.com')).toBe(403);
    expect(await status(ws.replace('/connection/websocket', '/connection/other'))).toBe(404);
  });

  it('a connection that does not read is closed with 3008 "slow" once its outbound buffer passes the cap', async () => {
    const { ws, server } = await centrifugoServer({ CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE: '65536' });
    const ch = channel();
    const reader = await connected(ws);
    reader.send(JSON.stringify({ id: 2, subscribe: { channel: ch } }));
    await reply(reader, 2);
    const readerId = messages(reader)[0]!['connect'].client as string;
    (reader.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const writer = await connected(ws);
    writer.send(JSON.stringify({ id: 2, subscribe: { channel: ch } }));
    await reply(writer, 2);
    const big = 'x'.repeat(60_000);
    const open = (): boolean => [...server.centrifugo!.connections].some((c) => c.client === readerId);
    // Publish in batches until the server has closed the reader (its socket is paused, so it cannot see the close yet).
    for (let batch = 0; batch < 40 && open(); batch++) {
      const ids = Array.from({ length: 10 }, (_, i) => 10 + batch * 10 + i);
      for (const id of ids) writer.send(JSON.stringify({ id, publish: { channel: ch, data: big } })); // one frame each: a frame is at most 64 KiB
      await reply(writer, ids.at(-1)!);
    }
    expect(open()).toBe(false);
    (reader.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await reader.closed).toEqual({ code: 3008, reason: 'slow' });
  });
});
