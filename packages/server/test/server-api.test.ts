import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { ChannelPublicationSchema, type ChannelPublication } from 'realtime-message-protocol';
import { connect, request, startServer, waitFor, type Client } from 'realtime-message-testing';

/** The server HTTP API (issue 14, item 6) over real HTTP against the standalone server, memory and Redis. */

const KEY = 'server-api-test-key-0123456789';
const channel = (ns = 'chat'): string => `${ns}:${randomUUID().slice(0, 8)}`;

interface Answer {
  status: number;
  body: any;
}

/** `POST /api/<method>` with the API key (or the given headers), as a backend would send it. */
async function api(url: string, method: string, body: unknown, headers: Record<string, string> = { 'x-api-key': KEY }): Promise<Answer> {
  const res = await fetch(`${url}/api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** The `result` of a call that must succeed. */
async function ok(url: string, method: string, body: unknown): Promise<any> {
  const res = await api(url, method, body);
  expect(res, `${method} ${JSON.stringify(body)}`).toMatchObject({ status: 200 });
  expect(res.body.error, `${method}: ${JSON.stringify(res.body.error)}`).toBeUndefined();
  return res.body.result;
}

/** Collects the publications a socket receives, each checked against the protocol's strict schema. */
function publications(socket: Client): ChannelPublication[] {
  const seen: ChannelPublication[] = [];
  socket.on('channel:publication', (p) => seen.push(ChannelPublicationSchema.parse(p) as ChannelPublication));
  return seen;
}

const engines = [
  ['memory', (): Record<string, string> => ({})],
  ['redis', (): Record<string, string> => ({ REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `sapi:${randomUUID().slice(0, 8)}:` })],
] as const;

describe.each(engines)('server HTTP API (%s)', (_name, engineEnv) => {
  it('publish reaches a Socket.IO subscriber; history pages; idempotency_key; broadcast; history_remove', async () => {
    const { url } = await startServer({ API_KEY: KEY, ...engineEnv() });
    const ch = channel();
    const s = await connect(url);
    const seen = publications(s);
    const sub = await request(s, 'channel:subscribe', { channel: ch });
    expect(sub).toMatchObject({ ok: true, offset: 0 });

    const first = await ok(url, 'publish', { channel: ch, data: { n: 1 }, tags: { kind: 'greeting' } });
    expect(first).toEqual({ offset: 1, epoch: sub.epoch });
    await waitFor(() => seen.find((p) => p.offset === 1), { what: 'the publication over Socket.IO' });
    expect(seen[0]).toEqual({ channel: ch, offset: 1, epoch: sub.epoch, data: { n: 1 }, tags: { kind: 'greeting' } });
    // Authorization: apikey works as well as X-API-Key.
    const second = await api(url, 'publish', { channel: ch, data: { n: 2 } }, { authorization: `apikey ${KEY}` });
    expect(second.body).toEqual({ result: { offset: 2, epoch: sub.epoch } });
    expect(await ok(url, 'publish', { channel: ch, data: { n: 3 }, idempotency_key: 'k1' })).toEqual({ offset: 3, epoch: sub.epoch });
    // The same key again: the first result, nothing published.
    expect(await ok(url, 'publish', { channel: ch, data: { n: 3 }, idempotency_key: 'k1' })).toEqual({ offset: 3, epoch: sub.epoch });

    const all = await ok(url, 'history', { channel: ch, limit: 10 });
    expect(all).toEqual({
      publications: [
        { data: { n: 1 }, offset: 1, tags: { kind: 'greeting' } },
        { data: { n: 2 }, offset: 2 },
        { data: { n: 3 }, offset: 3 },
      ],
      offset: 3,
      epoch: sub.epoch,
    });
    expect((await ok(url, 'history', { channel: ch, limit: 2, reverse: true })).publications.map((p: { offset: number }) => p.offset)).toEqual([3, 2]);
    expect((await ok(url, 'history', { channel: ch, limit: -1, since: { offset: 1, epoch: sub.epoch } })).publications.map((p: { offset: number }) => p.offset)).toEqual([2, 3]);
    // No limit: the position only (Centrifugo's default).
    expect(await ok(url, 'history', { channel: ch })).toEqual({ publications: [], offset: 3, epoch: sub.epoch });
    // A position of another epoch: 112, with HTTP 200, or 416 in transport error mode.
    const lost = await api(url, 'history', { channel: ch, limit: 10, since: { offset: 1, epoch: 'another' } });
    expect(lost).toMatchObject({ status: 200, body: { error: { code: 112 } } });
    expect(lost.body.error.message).toContain("epoch 'another'");
    expect((await api(url, 'history', { channel: ch, limit: 10, since: { offset: 1, epoch: 'another' } }, { 'x-api-key': KEY, 'x-centrifugo-error-mode': 'transport' })).status).toBe(416);

    const other = channel();
    const b = await ok(url, 'broadcast', { channels: [ch, other, 'bad{name}'], data: { all: true } });
    expect(b.responses).toHaveLength(3);
    expect(b.responses[0]).toEqual({ result: { offset: 4, epoch: sub.epoch } });
    expect(b.responses[1].result).toMatchObject({ offset: 1 });
    expect(b.responses[2].error).toMatchObject({ code: 107 });
    await waitFor(() => seen.find((p) => p.offset === 4), { what: 'the broadcast publication' });
    expect(seen.map((p) => p.offset)).toEqual([1, 2, 3, 4]);

    expect(await ok(url, 'history_remove', { channel: ch })).toEqual({});
    // The position stays; the publications are gone.
    expect(await ok(url, 'history', { channel: ch, limit: 10 })).toEqual({ publications: [], offset: 4, epoch: sub.epoch });
  });

  it('presence and presence_stats of a room joined over Socket.IO; channels and info of this node', async () => {
    const { url } = await startServer({ API_KEY: KEY, ...engineEnv() });
    const ch = channel();
    const [a, b, c] = [await connect(url), await connect(url), await connect(url)];
    const ja = await request(a, 'presence:join', { roomId: ch, userId: 'ada' });
    const jb = await request(b, 'presence:join', { roomId: ch, userId: 'ada' });
    const jc = await request(c, 'presence:join', { roomId: ch, userId: 'bob' });
    expect([ja.ok, jb.ok, jc.ok]).toEqual([true, true, true]);
    const presence = await ok(url, 'presence', { channel: ch });
    expect(presence).toEqual({
      presence: {
        [ja.self.connId]: { client: ja.self.connId, user: 'ada' },
        [jb.self.connId]: { client: jb.self.connId, user: 'ada' },
        [jc.self.connId]: { client: jc.self.connId, user: 'bob' },
      },
    });
    expect(await ok(url, 'presence_stats', { channel: ch })).toEqual({ num_clients: 3, num_users: 2 });
    expect(await ok(url, 'presence_stats', { channel: channel() })).toEqual({ num_clients: 0, num_users: 0 });

    const other = channel('news');
    for (const s of [a, b]) expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    expect((await request(c, 'channel:subscribe', { channel: other })).ok).toBe(true);
    expect(await ok(url, 'channels', {})).toEqual({ channels: { [ch]: { num_clients: 2 }, [other]: { num_clients: 1 } } });
    expect(await ok(url, 'channels', { pattern: 'news:*' })).toEqual({ channels: { [other]: { num_clients: 1 } } });
    expect(await ok(url, 'channels', { pattern: `${ch.slice(0, -1)}?` })).toEqual({ channels: { [ch]: { num_clients: 2 } } });

    const info = await ok(url, 'info', {});
    expect(info.nodes).toHaveLength(1);
    expect(info.nodes[0]).toMatchObject({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), num_clients: 3, num_users: 2, num_channels: 2, num_subs: 3 });
    expect(info.nodes[0].uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof info.nodes[0].name).toBe('string');
    expect(info.nodes[0].uptime).toBeGreaterThanOrEqual(0);
    // An unsubscribe is seen at once.
    expect((await request(a, 'channel:unsubscribe', { channel: ch })).ok).toBe(true);
    expect((await ok(url, 'channels', { pattern: ch })).channels).toEqual({ [ch]: { num_clients: 1 } });
    // The server API ends ada's remaining subscription (socket b) and tells the client; bob's stays.
    const notices: unknown[] = [];
    b.on('channel:unsubscribed', (n) => notices.push(n));
    expect(await ok(url, 'unsubscribe', { user: 'ada', channel: ch })).toEqual({});
    await expect.poll(() => notices).toEqual([{ channel: ch, reason: 'server' }]);
    expect((await ok(url, 'channels', { pattern: ch })).channels).toEqual({});
    expect((await ok(url, 'channels', { pattern: other })).channels).toEqual({ [other]: { num_clients: 1 } });
    // b may subscribe again on its own.
    expect((await request(b, 'channel:subscribe', { channel: ch })).ok).toBe(true);
  });

  it("disconnect closes the user's sockets on this node (all, one client, or all but the whitelist)", async () => {
    const { url } = await startServer({ API_KEY: KEY, ...engineEnv() });
    const ch = channel();
    const sockets: Client[] = [];
    const closed = new Map<Client, string>();
    const connIds: string[] = [];
    for (const user of ['ada', 'ada', 'ada', 'bob']) {
      const s = await connect(url);
      s.on('disconnect', (reason) => closed.set(s, reason));
      connIds.push((await request(s, 'presence:join', { roomId: ch, userId: user })).self.connId);
      sockets.push(s);
    }
    const [a1, a2, a3, bob] = sockets as [Client, Client, Client, Client];
    // One client by its presence connId.
    expect(await ok(url, 'disconnect', { user: 'ada', client: connIds[0] })).toEqual({});
    await waitFor(() => closed.get(a1), { what: 'the first socket closed' });
    expect(closed.get(a1)).toBe('io server disconnect');
    // All but the whitelist (a socket id works as a client id too).
    expect(await ok(url, 'disconnect', { user: 'ada', whitelist: [a3.id] })).toEqual({});
    await waitFor(() => closed.get(a2), { what: 'the second socket closed' });
    expect(await ok(url, 'disconnect', { user: 'nobody', disconnect: { code: 4503, reason: 'banned' } })).toEqual({});
    await new Promise((r) => setTimeout(r, 100));
    expect(closed.has(a3)).toBe(false);
    expect(closed.has(bob)).toBe(false);
    const stillUp = await request(bob, 'channel:subscribe', { channel: channel() });
    expect(stillUp.ok).toBe(true);
  });
});

describe('server HTTP API with two nodes on one Redis', () => {
  it('a publish through one node reaches a subscriber of the other; history is shared', async () => {
    const env = { API_KEY: KEY, REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `sapi2:${randomUUID().slice(0, 8)}:` };
    const [a, b] = [await startServer(env), await startServer(env)];
    const ch = channel();
    const s = await connect(b.url);
    const seen = publications(s);
    const sub = await request(s, 'channel:subscribe', { channel: ch });
    expect(await ok(a.url, 'publish', { channel: ch, data: 'from a' })).toEqual({ offset: 1, epoch: sub.epoch });
    await waitFor(() => seen.find((p) => p.offset === 1), { what: 'the publication on the other node' });
    expect(seen[0]!.data).toBe('from a');
    expect((await ok(b.url, 'history', { channel: ch, limit: 1 })).publications).toEqual([{ data: 'from a', offset: 1 }]);
    // Cluster-wide: both nodes list the channel of B's subscriber (server-api-cluster.test.ts has the rest).
    expect((await ok(a.url, 'channels', { pattern: ch })).channels).toEqual({ [ch]: { num_clients: 1 } });
    expect((await ok(b.url, 'channels', { pattern: ch })).channels).toEqual({ [ch]: { num_clients: 1 } });
  });
});
