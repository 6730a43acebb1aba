import { describe, expect, it, onTestFinished } from 'vitest';
import { StatusRecordSchema } from 'realtime-message-protocol';
import { RedisServer, connect, redisCli, request, startServer, waitFor } from 'realtime-message-testing';

/**
 * Reads while the status store is unreachable (SPEC §7, issue 13): cached
 * users answer from the node-local cache marked `X-Status-Stale`, anything
 * else is 503 `unavailable`, and after recovery no stale entry is served.
 * A real redis-server is killed and restarted; it keeps its data across the
 * restart (AOF, fsync always), as a production Redis would.
 */

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(url: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

const p = (id: string) => `/api/v2/presence/${encodeURIComponent(id)}`;
const uid = (name: string) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

async function durableRedis(): Promise<RedisServer> {
  const redis = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
  onTestFinished(() => redis.stop());
  return redis;
}

/** A node on `url`, its status feed subscribed (so its cache answers). */
async function node(url: string) {
  const n = await startServer({ DEMO_DIR: 'off', REDIS_URL: url, STATUS_RATE_LIMIT: '0' });
  await n.server.presence.status!.start();
  return n;
}

const stale = (a: Answer) => a.headers.get('status-stale');

/** The ACL user node A logs in as (not kept across a Redis restart: ACL rules are not in the AOF). */
const NODE_A_ACL = ['ACL', 'SETUSER', 'node-a', 'on', '>node-a-password', '~*', '&*', '+@all'];

/**
 * Node A logs in to `redis` as the ACL user `node-a` (created here), node B
 * as the default user; a socket on A watches a user whom B set busy with
 * the message 'before'. The test then cuts A off by way of its user.
 */
async function watcherOnNodeA(redis: RedisServer) {
  await redisCli(redis.port, ...NODE_A_ACL);
  const a = await node(`redis://node-a:node-a-password@127.0.0.1:${redis.port}`);
  const b = await node(redis.url);
  const ada = uid('ada');
  expect((await call(b.url, 'PUT', p(ada), { status: 'busy', message: 'before' })).status).toBe(200);
  const watcher = await connect(a.url);
  const events: Array<{ message: string | null; seq: number }> = [];
  watcher.on('status:event', (e) => events.push(e));
  expect((await request(watcher, 'status:subscribe', { userIds: [ada] })).users[0]).toMatchObject({ message: 'before' });
  return { b, ada, events };
}

describe('status reads while the store is unreachable', () => {
  it('cached users answer marked stale, an uncached user and every write are 503, and after the restart answers are fresh and nothing is lost', async () => {
    const redis = await durableRedis();
    const { url } = await node(redis.url);
    const ada = uid('ada');
    const bob = uid('bob');
    const carol = uid('carol');

    const put = await call(url, 'PUT', p(ada), { status: 'busy', message: 'in a meeting' });
    expect(put.status).toBe(200);
    const fresh = await call(url, 'GET', p(ada));
    expect(fresh.body).toEqual(put.body);
    expect(stale(fresh)).toBe(null);
    expect((await call(url, 'GET', p(bob))).body).toMatchObject({ status: 'offline', lastSeen: null }); // bob: cached as never seen

    const before = Date.now();
    await redis.kill();
    const down = await waitFor(async () => {
      const r = await call(url, 'GET', p(ada));
      return stale(r) === '1' ? r : undefined;
    }, { timeoutMs: 5_000, what: 'a stale answer for ada' });
    expect(down.status).toBe(200);
    expect(down.body).toEqual({ ...put.body, stale: true }); // the record as it was, marked (SPEC §10: a field and a header)
    StatusRecordSchema.parse(down.body);
    const since = Number(down.headers.get('status-stale-since'));
    expect(since).toBeGreaterThanOrEqual(before - 1_000);
    expect(since).toBeLessThanOrEqual(Date.now());

    const many = await call(url, 'GET', `/api/v2/presence?users=${bob},${ada}`);
    expect(many.status).toBe(200);
    expect(stale(many)).toBe('1');
    expect(many.body.users.map((r: { userId: string; message: string | null; stale?: boolean }) => [r.userId, r.message, r.stale])).toEqual([[bob, null, true], [ada, 'in a meeting', true]]);
    const batch = await call(url, 'POST', '/api/v2/presence/batch', { userIds: [ada, bob] });
    expect([batch.status, stale(batch)]).toEqual([200, '1']);

    // Anything that needs the store: 503 unavailable, never a 500, and no stale mark.
    for (const [method, path, body] of [
      ['GET', p(carol), undefined],
      ['GET', `/api/v2/presence?users=${ada},${carol}`, undefined],
      ['POST', '/api/v2/presence/batch', { userIds: [ada, carol] }],
      ['PUT', p(ada), { status: 'away', message: 'lost?' }],
      ['DELETE', p(ada), undefined],
    ] as const) {
      const res = await call(url, method, path, body);
      expect({ method, path, status: res.status, code: res.body?.error?.code, stale: stale(res) }).toEqual({ method, path, status: 503, code: 'unavailable', stale: null });
    }
    // The refused writes changed nothing, here either.
    expect((await call(url, 'GET', p(ada))).body).toEqual({ ...put.body, stale: true });

    await redis.launch();
    const back = await waitFor(async () => {
      const r = await call(url, 'GET', p(ada));
      return r.status === 200 && stale(r) === null ? r : undefined;
    }, { timeoutMs: 10_000, what: 'a fresh answer after the restart' });
    expect(back.body).toMatchObject({ userId: ada, message: 'in a meeting', seq: put.body.seq, updatedAt: put.body.updatedAt });
    const write = await call(url, 'PUT', p(ada), { status: 'away', message: 'back' });
    expect(write.status).toBe(200);
    expect((await call(url, 'GET', p(ada))).body).toMatchObject({ status: 'offline', message: 'back', seq: put.body.seq + 1 });
    expect(stale(await call(url, 'GET', p(carol)))).toBe(null);
  });

  it("a write made on another node while this node's feed was down is visible after recovery: no stale value is served", async () => {
    const redis = await durableRedis();
    // Node A logs in as an ACL user; after the restart the user does not exist
    // until the test creates it again, so A stays cut off (its feed too) while
    // node B, on the default user, writes.
    await redisCli(redis.port, ...NODE_A_ACL);
    const a = await node(`redis://node-a:node-a-password@127.0.0.1:${redis.port}`);
    const b = await node(redis.url);
    const ada = uid('ada');
    const old = await call(b.url, 'PUT', p(ada), { status: 'busy', message: 'before' });
    expect(old.status).toBe(200);
    // A reads (and caches) the record until it shows B's write.
    await waitFor(async () => (await call(a.url, 'GET', p(ada))).body.message === 'before', { timeoutMs: 2_000, what: 'A sees the first write' });

    await redis.kill();
    await redis.launch();
    const written = await waitFor(async () => {
      const r = await call(b.url, 'PUT', p(ada), { status: 'busy', message: 'while A was away' });
      return r.status === 200 ? r : undefined;
    }, { timeoutMs: 10_000, what: 'B writes after the restart' });
    expect(written.body.message).toBe('while A was away');

    // A cannot reach Redis yet: its cached record answers, marked stale.
    const cut = await call(a.url, 'GET', p(ada));
    expect([cut.status, stale(cut), cut.body.message]).toEqual([200, '1', 'before']);

    await redisCli(redis.port, ...NODE_A_ACL);
    // The answers while A recovers: 200 (fresh, or marked stale) or, when the feed resumed (the cache emptied)
    // before A's command connection did, 503 unavailable: an answer without a value, which is allowed.
    const seen: Array<[string | null, string]> = [];
    const refused: unknown[] = [];
    const answer = async (): Promise<boolean> => {
      const r = await call(a.url, 'GET', p(ada));
      if (r.status === 200) seen.push([stale(r), r.body.message]);
      else refused.push([r.status, r.body?.error?.code]);
      return r.status === 200 && stale(r) === null;
    };
    await waitFor(answer, { timeoutMs: 10_000, what: 'A answers fresh again' });
    for (let i = 0; i < 20; i++) await answer();
    expect(refused.filter((x) => JSON.stringify(x) !== '[503,"unavailable"]')).toEqual([]);
    // Every unmarked answer after recovery has B's write; the old one only ever came marked stale.
    expect(seen.filter(([mark]) => mark === null).length).toBeGreaterThanOrEqual(21);
    expect(seen.filter(([mark]) => mark === null).map(([, message]) => message)).toEqual(seen.filter(([mark]) => mark === null).map(() => 'while A was away'));
    expect(seen.filter(([, message]) => message === 'before').every(([mark]) => mark === '1')).toBe(true);
  });

  it('a socket watcher on a node whose feed was cut gets the change it missed once the feed resumes', { timeout: 45_000 }, async () => {
    const redis = await durableRedis();
    const { b, ada, events } = await watcherOnNodeA(redis);

    await redis.kill();
    await redis.launch();
    // B writes while A is cut off: the event is published while A's subscriber is not there.
    const written = await waitFor(async () => {
      const r = await call(b.url, 'PUT', p(ada), { status: 'busy', message: 'missed by the feed' });
      return r.status === 200 ? r : undefined;
    }, { timeoutMs: 10_000, what: 'B writes after the restart' });
    expect(events).toEqual([]);
    await redisCli(redis.port, ...NODE_A_ACL);
    // A's feed resumes: the watched user is read again and pushed.
    // A's client reconnects with its own backoff (it failed auth meanwhile): generous under a loaded CI.
    const got = await waitFor(() => events.find((e) => e.message === 'missed by the feed'), { timeoutMs: 20_000, what: 'the missed change pushed after the resume' });
    expect(got.seq).toBe(written.body.seq);
  });

  it('a re-push that fails when the feed resumes (the reads refused) is retried until it works: the watcher still gets the change it missed', { timeout: 45_000 }, async () => {
    const redis = await RedisServer.start();
    onTestFinished(() => redis.stop());
    const { b, ada, events } = await watcherOnNodeA(redis);
    const nodeA = (...rules: string[]) => redisCli(redis.port, 'ACL', 'SETUSER', 'node-a', ...rules);

    // A is cut off (its user refused, its connections closed); B writes meanwhile.
    await nodeA('off');
    await redisCli(redis.port, 'CLIENT', 'KILL', 'USER', 'node-a');
    const written = await call(b.url, 'PUT', p(ada), { status: 'busy', message: 'missed by the feed' });
    expect(written.status).toBe(200);
    // A may connect again but not read users: its feed resumes, and the re-push's read is refused.
    await nodeA('on', '-hgetall');
    const subscribedAgain = async () => (await redisCli(redis.port, 'CLIENT', 'LIST')).split('\n').some((c) => c.includes(' user=node-a ') && /\bsub=[1-9]/.test(c));
    await waitFor(subscribedAgain, { timeoutMs: 15_000, what: "A's subscriber back" });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(events).toEqual([]);
    // Reads allowed again: the re-push is retried and the missed change reaches the watcher.
    await nodeA('+hgetall');
    const got = await waitFor(() => events.find((e) => e.message === 'missed by the feed'), { timeoutMs: 10_000, what: 'the missed change pushed by a retried re-push' });
    expect(got.seq).toBe(written.body.seq);
  });
});
