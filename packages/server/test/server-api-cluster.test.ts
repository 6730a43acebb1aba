import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { DisconnectedContext, UnsubscribedContext } from 'centrifuge';
import { NodeProcess, connect, redisClient, request, startRedis, startServer, waitFor, type Client } from 'realtime-message-testing';
import { globMatcher } from '../src/core/shared/control.js';
import { SECRET, client, token, wsUrl } from './centrifugo-fixtures.js';

/**
 * The server API's node-wide operations act on the whole cluster (issue 14,
 * item 6): /api/info lists every live node, /api/channels surveys every node,
 * /api/disconnect and /api/unsubscribe reach the user's connections on every
 * node, over Socket.IO and the Centrifugo endpoint. Real Redis (single and a
 * 3-master Cluster), real clients on node B, the API call on node A.
 */

const KEY = 'server-api-cluster-key-0123456789';
const channel = (ns = 'chat'): string => `${ns}:${randomUUID().slice(0, 8)}`;

async function api(url: string, method: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

async function ok(url: string, method: string, body: unknown): Promise<any> {
  const res = await api(url, method, body);
  expect(res.status).toBe(200);
  expect(res.body.error, `${method}: ${JSON.stringify(res.body.error)}`).toBeUndefined();
  return res.body.result;
}

/** `p`, or a failure naming `what` after `ms`. */
function within<T>(p: Promise<T>, what: string, ms = 8_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A Socket.IO client of `user` (the token's sub). */
async function socketOf(url: string, user: string): Promise<Client> {
  return connect(url, { auth: { token: await token({ sub: user }) } });
}

const targets = [
  ['redis', (): Record<string, string> => ({ REDIS_URL: inject('redisUrl') })],
  ['redis-cluster', (): Record<string, string> => ({ REDIS_CLUSTER_NODES: inject('clusterNodes').map((n) => `${n.host}:${n.port}`).join(',') })],
] as const;

describe.each(targets)('cluster-wide server API (%s)', (_name, target) => {
  const env = (name: string, prefix: string): Record<string, string> => ({ API_KEY: KEY, AUTH_JWT_SECRET: SECRET, DEMO_DIR: 'off', NODE_ID: name, REDIS_KEY_PREFIX: prefix, ...target() });

  it('info lists both nodes; channels sums both; unsubscribe and disconnect sent to A reach Socket.IO and centrifuge clients on B', async () => {
    const prefix = `sapic:${randomUUID().slice(0, 8)}:`;
    const a = await startServer(env('node-a', prefix));
    const b = await startServer(env('node-b', prefix));
    const ch = channel();
    const other = channel('news');

    // On B: ada over Socket.IO (two sockets) and over Centrifugo; bob over Socket.IO. On A: bob.
    const [ada1, ada2, bobB] = [await socketOf(b.url, 'ada'), await socketOf(b.url, 'ada'), await socketOf(b.url, 'bob')];
    const bobA = await socketOf(a.url, 'bob');
    for (const s of [ada1, ada2, bobB, bobA]) expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    expect((await request(bobB, 'channel:subscribe', { channel: other })).ok).toBe(true);
    const cf = client(wsUrl(b.url), { token: await token({ sub: 'ada' }) });
    const cfSub = cf.newSubscription(ch);
    cf.connect();
    cfSub.subscribe();
    await cfSub.ready(3_000);

    // info: both nodes, each with its own counts (B's as it last published them).
    const nodesOf = async (url: string): Promise<any[]> => (await ok(url, 'info', {})).nodes;
    let seen: unknown;
    await waitFor(
      async () => {
        seen = await nodesOf(a.url);
        return (seen as any[]).find((n) => n.name === 'node-b')?.num_clients === 4 ? true : undefined;
      },
      { what: "node B's info on A", timeoutMs: 10_000, intervalMs: 100 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${JSON.stringify(seen)}`);
    });
    const info = await nodesOf(a.url);
    expect(info.map((n) => n.name)).toEqual(['node-a', 'node-b']);
    expect(info[0]).toMatchObject({ num_clients: 1, num_users: 1, num_channels: 1, num_subs: 1 });
    expect(info[1]).toMatchObject({ num_clients: 4, num_users: 2, num_channels: 2, num_subs: 5, version: info[0].version });
    expect(info[1].uid).not.toBe(info[0].uid);
    expect((await nodesOf(b.url)).map((n) => n.name)).toEqual(['node-b', 'node-a']);

    // channels: the survey sums both nodes (4 on B, 1 on A); the pattern is applied on every node.
    expect(await ok(a.url, 'channels', {})).toEqual({ channels: { [ch]: { num_clients: 5 }, [other]: { num_clients: 1 } } });
    expect(await ok(a.url, 'channels', { pattern: 'news:*' })).toEqual({ channels: { [other]: { num_clients: 1 } } });
    expect(await ok(a.url, 'channels', { pattern: `${ch.slice(0, -1)}?` })).toEqual({ channels: { [ch]: { num_clients: 5 } } });

    // unsubscribe one client (by socket id) of ada on B, through A: only that socket is told.
    const notices = new Map<Client, unknown[]>([[ada1, []], [ada2, []], [bobB, []]]);
    for (const [s, list] of notices) s.on('channel:unsubscribed', (n) => list.push(n));
    const cfUnsubscribed: UnsubscribedContext[] = [];
    cfSub.on('unsubscribed', (u) => cfUnsubscribed.push(u));
    expect(await ok(a.url, 'unsubscribe', { user: 'ada', channel: ch, client: ada1.id })).toEqual({});
    await waitFor(() => (notices.get(ada1)!.length === 1 ? true : undefined), { what: 'the unsubscribe of one socket on B' });
    expect(notices.get(ada1)).toEqual([{ channel: ch, reason: 'server' }]);
    // then every remaining subscription of ada, both transports.
    expect(await ok(a.url, 'unsubscribe', { user: 'ada', channel: ch })).toEqual({});
    await waitFor(() => (notices.get(ada2)!.length === 1 && cfUnsubscribed.length === 1 ? true : undefined), { what: "ada's subscriptions on B ended" });
    expect(notices.get(ada2)).toEqual([{ channel: ch, reason: 'server' }]);
    expect(cfUnsubscribed[0]).toMatchObject({ code: 2000, reason: 'server unsubscribe' });
    expect(cfSub.state).toBe('unsubscribed');
    expect(notices.get(bobB)).toEqual([]);
    await waitFor(async () => ((await ok(a.url, 'channels', { pattern: ch })).channels[ch]?.num_clients === 2 ? true : undefined), { what: 'two subscribers left (bob on A and B)' });

    // disconnect ada everywhere but the whitelisted socket, with Centrifugo's code and reason.
    const closed = new Map<Client, string>();
    for (const s of [ada1, ada2, bobB, bobA]) s.on('disconnect', (reason) => closed.set(s, reason));
    const cfGone = new Promise<DisconnectedContext>((resolve) => cf.once('disconnected', resolve));
    expect(await ok(a.url, 'disconnect', { user: 'ada', whitelist: [ada2.id], disconnect: { code: 4503, reason: 'banned' } })).toEqual({});
    expect(await within(cfGone, 'the centrifuge client on B disconnected')).toMatchObject({ code: 4503, reason: 'banned' });
    await waitFor(() => closed.get(ada1), { what: 'the Socket.IO socket of ada on B closed' });
    expect(closed.get(ada1)).toBe('io server disconnect');
    // Without a disconnect object: 3503 force disconnect (Socket.IO cannot carry it, it just closes).
    expect(await ok(a.url, 'disconnect', { user: 'ada' })).toEqual({});
    await waitFor(() => closed.get(ada2), { what: 'the whitelisted socket closed by the second call' });
    await new Promise((r) => setTimeout(r, 200));
    expect(closed.has(bobB)).toBe(false);
    expect(closed.has(bobA)).toBe(false);
    // An unknown user is no error, on either method.
    expect(await ok(a.url, 'disconnect', { user: 'nobody' })).toEqual({});
    expect(await ok(a.url, 'unsubscribe', { user: 'nobody', channel: ch })).toEqual({});
  });

  it('a centrifuge client of B disconnected by client id through A gets 3503; bad input gives 107; garbage on the control bus is ignored', async () => {
    const prefix = `sapic:${randomUUID().slice(0, 8)}:`;
    const a = await startServer(env('node-a', prefix));
    const b = await startServer(env('node-b', prefix));
    const [one, two] = [client(wsUrl(b.url), { token: await token({ sub: 'eve' }) }), client(wsUrl(b.url), { token: await token({ sub: 'eve' }) })];
    const ids = await within(Promise.all(
      [one, two].map(
        (c) =>
          new Promise<string>((resolve) => {
            c.once('connected', (ctx) => resolve(ctx.client));
            c.connect();
          }),
      ),
    ), 'two centrifuge clients connected');
    // Garbage published on the control channel by a foreign writer: no node crashes.
    const raw = redisClient('REDIS_CLUSTER_NODES' in target() ? { clusterNodes: inject('clusterNodes') } : { url: inject('redisUrl') });
    for (const m of ['not json', '{}', '{"t":"disconnect","from":"x","user":5}', '{"t":"answer","from":"x","id":"y","channels":[["a",-1]]}', '{"t":"info","from":"x","node":{}}']) await raw.spublish(`${prefix}{control}:all`, m);
    raw.disconnect();

    const gone = new Promise<DisconnectedContext>((resolve) => one.once('disconnected', resolve));
    expect(await ok(a.url, 'disconnect', { user: 'eve', session: ids[0] })).toEqual({});
    expect(await within(gone, 'the first centrifuge client on B disconnected')).toMatchObject({ code: 3503, reason: 'force disconnect' });
    expect(two.state).toBe('connected');

    const refused: Array<[string, unknown, RegExp]> = [
      ['channels', { pattern: 5 }, /pattern must be a string/],
      ['channels', { pattern: 'a{b,c}' }, /'\{' and '\}'/],
      ['channels', { pattern: 'x'.repeat(257) }, /at most 256/],
      ['channels', { pattern: 'a\u0001' }, /control characters/],
      ['disconnect', { user: 'eve', whitelist: Array.from({ length: 1_001 }, (_, i) => `c${i}`) }, /whitelist/],
      ['disconnect', { user: 'eve', disconnect: { code: 4000, reason: 'é'.repeat(62) } }, /123 bytes/],
      ['disconnect', { user: 7 }, /user must be a string/],
      ['unsubscribe', { user: 'eve' }, /channel is required/],
    ];
    for (const [method, body, message] of refused) {
      const res = await api(a.url, method, body);
      expect(res.body.error?.code, `${method} ${JSON.stringify(body).slice(0, 60)}`).toBe(107);
      expect(res.body.error.message).toMatch(message);
    }
    // A pattern of many stars is answered at once (linear matching, no backtracking blow-up).
    const t0 = Date.now();
    expect(await ok(a.url, 'channels', { pattern: `${'*a'.repeat(100)}b` })).toEqual({ channels: {} });
    expect(Date.now() - t0).toBeLessThan(2_000);
    // The nodes still work after the garbage.
    expect((await ok(a.url, 'info', {})).nodes.map((n: { name: string }) => n.name)).toEqual(['node-a', 'node-b']);
  });
});

describe('cluster-wide server API: nodes that stop', () => {
  it('a node that shuts down leaves /api/info at once; a killed node is left out of a survey after the timeout and vanishes from /api/info within 7 s', async () => {
    const prefix = `sapic:${randomUUID().slice(0, 8)}:`;
    const env = { API_KEY: KEY, DEMO_DIR: 'off', REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: prefix };
    const a = await startServer({ ...env, NODE_ID: 'node-a' });
    const c = await startServer({ ...env, NODE_ID: 'node-c' });
    const b = await NodeProcess.start({ ...env, NODE_ID: 'node-b' });
    const ch = channel();
    const s = await connect(b.url);
    expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    const names = async (): Promise<string[]> => (await ok(a.url, 'info', {})).nodes.map((n: { name: string }) => n.name);
    await waitFor(async () => ((await names()).length === 3 ? true : undefined), { what: 'three nodes', timeoutMs: 10_000, intervalMs: 100 });
    expect(await names()).toEqual(['node-a', 'node-b', 'node-c']);
    expect(await ok(a.url, 'channels', { pattern: ch })).toEqual({ channels: { [ch]: { num_clients: 1 } } });

    // A graceful stop says goodbye.
    await c.server.close();
    await waitFor(async () => ((await names()).includes('node-c') ? undefined : true), { what: 'node C gone', timeoutMs: 1_500 });

    // A crash: B is still listed until its info expires (at least 4 s more); surveys meanwhile wait at most
    // their timeout and name B; at most 8 run at once, a 9th is refused at once with 108.
    await b.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await names()).toEqual(['node-a', 'node-b']);
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 9 }, () => api(a.url, 'channels', {}).then((r) => ({ ...r, took: Date.now() - t0 }))));
    const refused = answers.filter((r) => r.body.error);
    const partial = answers.filter((r) => r.body.result);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.body.error).toMatchObject({ code: 108, message: expect.stringMatching(/surveys are in flight/) });
    expect(refused[0]!.took).toBeLessThan(2_000);
    expect(partial).toHaveLength(8);
    for (const r of partial) {
      expect(r.body.result).toEqual({ channels: {}, missing_nodes: ['node-b'] });
      expect(r.took).toBeGreaterThanOrEqual(2_500);
      expect(r.took).toBeLessThan(5_000);
    }
    await waitFor(async () => ((await names()).includes('node-b') ? undefined : true), { what: 'node B gone from /api/info', timeoutMs: 9_000, intervalMs: 200 });
    expect(Date.now() - killedAt).toBeLessThan(9_000);
    expect(await names()).toEqual(['node-a']);
    // With B gone, a survey has nobody to wait for.
    const t1 = Date.now();
    expect(await ok(a.url, 'channels', {})).toEqual({ channels: {} });
    expect(Date.now() - t1).toBeLessThan(1_000);
  });

  it('nodes started while Redis is down find each other once it is up, and commands still cross after a Redis restart', async () => {
    const redis = await startRedis();
    await redis.kill();
    const env = { API_KEY: KEY, AUTH_JWT_SECRET: SECRET, DEMO_DIR: 'off', REDIS_URL: redis.url, REDIS_KEY_PREFIX: `sapic:${randomUUID().slice(0, 8)}:` };
    const [a, b] = await Promise.all([startServer({ ...env, NODE_ID: 'node-a' }), startServer({ ...env, NODE_ID: 'node-b' })]);
    await redis.restart();
    const sees = async (url: string, name: string): Promise<boolean> => (await ok(url, 'info', {})).nodes.some((n: { name: string }) => n.name === name);
    const together = async (): Promise<true | undefined> => ((await sees(a.url, 'node-b')) && (await sees(b.url, 'node-a')) ? true : undefined);
    await waitFor(together, { what: 'the nodes see each other once Redis is up', timeoutMs: 15_000, intervalMs: 200 });

    // Redis restarts (its pub/sub state is gone): the subscriptions come back, commands cross again.
    await redis.restart();
    const ch = channel();
    const s = await socketOf(b.url, 'ada');
    await waitFor(async () => ((await request(s, 'channel:subscribe', { channel: ch })).ok ? true : undefined), { what: 'a subscription on B after the restart', timeoutMs: 10_000, intervalMs: 200 });
    // A survey from B that A answers: both ways of the bus work again (info entries alone could be stale).
    await waitFor(
      async () => {
        const r = (await api(b.url, 'channels', {})).body.result;
        return r !== undefined && r.missing_nodes === undefined && r.channels[ch]?.num_clients === 1 ? together() : undefined;
      },
      { what: 'a survey from B answered by A, each node listing the other', timeoutMs: 12_000, intervalMs: 200 },
    );
    const notices: unknown[] = [];
    s.on('channel:unsubscribed', (n) => notices.push(n));
    expect(await ok(a.url, 'unsubscribe', { user: 'ada', channel: ch })).toEqual({});
    await waitFor(() => (notices.length > 0 ? true : undefined), { what: 'the unsubscribe sent to A reaching B after the restart' });
    expect(notices).toEqual([{ channel: ch, reason: 'server' }]);
  });

  it('memory engine: one node, everything local', async () => {
    const { url } = await startServer({ API_KEY: KEY, DEMO_DIR: 'off' });
    const s = await connect(url);
    const ch = channel();
    expect((await request(s, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    const info = (await ok(url, 'info', {})).nodes;
    expect(info).toHaveLength(1);
    expect(info[0]).toMatchObject({ num_clients: 1, num_channels: 1, num_subs: 1 });
    expect(await ok(url, 'channels', { pattern: 'chat:*' })).toEqual({ channels: { [ch]: { num_clients: 1 } } });
  });
});

describe('channels pattern', () => {
  it('* any characters, ? one code point, the rest literal; many stars stay linear', () => {
    const cases: Array<[string, string, boolean]> = [
      ['chat:*', 'chat:a', true],
      ['chat:*', 'chat:', true],
      ['chat:*', 'news:a', false],
      ['*:room?', 'x:room1', true],
      ['*:room?', 'x:room12', false],
      ['a?c', 'a😀c', true],
      ['a.c', 'abc', false],
      ['a[b]c', 'a[b]c', true],
      ['*a*b*c*', 'xxaxxbxxcxx', true],
      ['*a*b*c*', 'xxaxxcxxbxx', false],
      ['exact', 'exact', true],
      ['exact', 'exactly', false],
    ];
    for (const [pattern, name, expected] of cases) expect(globMatcher(pattern)(name), `${pattern} ~ ${name}`).toBe(expected);
    const t0 = performance.now();
    expect(globMatcher(`${'*a'.repeat(128)}b`)('a'.repeat(128))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});
