import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connect, freePort, listen, request, startRedis, startServer, waitFor } from 'realtime-message-testing';

/**
 * Runs the examples of docs/migration.md that are marked `<!-- run: name -->`,
 * as a user would: the block is compiled from TypeScript and run by Node in a
 * child process against the built packages, a real redis-server and real
 * Socket.IO clients. The docs-examples test type-checks the same blocks.
 */
const root = fileURLToPath(new URL('../../../', import.meta.url));
const guide = readFileSync(join(root, 'docs/migration.md'), 'utf8');

function block(name: string): string {
  const m = new RegExp(`<!-- run: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)^\`\`\``, 'm').exec(guide);
  if (!m) throw new Error(`docs/migration.md has no ts block marked "run: ${name}"`);
  return m[1]!;
}

interface Example {
  child: ChildProcess;
  /** Everything the example printed so far (stdout and stderr). */
  output(): string;
  /** Waits until the output contains `text`. */
  prints(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

function run(name: string, env: Record<string, string>, replace: Array<[string, string]> = []): Example {
  let code = ts.transpileModule(block(name), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  for (const [from, to] of replace) {
    expect(code, `the "${name}" example contains ${from}`).toContain(from);
    code = code.replaceAll(from, to);
  }
  // Inside the repository, so that the packages resolve as in a user's project (node_modules, built dist).
  const dir = mkdtempSync(join(root, 'packages/server/test/.examples-migration-'));
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code);
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += String(d)));
  child.stderr!.on('data', (d: Buffer) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    child,
    exited,
    output: () => out,
    prints: async (text, timeoutMs = 10_000) => {
      await waitFor(() => out.includes(text), { timeoutMs, what: `"${text}" from the ${name} example (output so far: ${out})` });
    },
  };
}

async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function admin(url: string): Redis {
  const r = new Redis(url);
  onTestFinished(() => r.disconnect());
  return r;
}

/** Every key with its type and content, to see that nothing changed it. */
async function dump(redis: Redis, pattern: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of (await redis.keys(pattern)).sort()) {
    const type = await redis.type(key);
    out[key] =
      type === 'hash' ? await redis.hgetall(key) : type === 'set' ? (await redis.smembers(key)).sort() : type === 'zset' ? await redis.zrange(key, 0, -1, 'WITHSCORES') : await redis.get(key);
  }
  return out;
}

/** What an original deployment leaves in Redis for one member of `roomId` (its key layout). */
async function seedOriginal(redis: Redis, roomId: string): Promise<void> {
  const now = Date.now();
  await redis
    .multi()
    .sadd('prs:active_rooms', roomId)
    .sadd(`prs:{room:${roomId}}:members`, 'old-user')
    .sadd(`prs:{room:${roomId}}:conns`, 'old-conn')
    .hset(`prs:{room:${roomId}}:conn_meta`, 'old-conn', JSON.stringify({ userId: 'old-user', epoch: now }))
    .zadd(`prs:{room:${roomId}}:last_seen`, now, 'old-conn')
    .hset('prs:conn:old-conn', { conn_id: 'old-conn', user_id: 'old-user', room_id: roomId, last_seen_ms: String(now), epoch: String(now), state: '{}' })
    .sadd('prs:user:old-user:conns', 'old-conn')
    .exec();
}

describe('docs/migration.md examples, run', () => {
  it('library form: new PresenceService(redis, options), subscribe(listener) sees every event, and after stop() the process exits by itself', async () => {
    const redis = await startRedis();
    const ex = run('library', { REDIS_URL: redis.url });
    // stop() released the reaper and the subscriber connection, the example disconnected its own client: nothing keeps Node alive.
    expect(await withDeadline(ex.exited, 10_000, 'the library example to exit on its own')).toBe(0);
    const out = ex.output();
    expect(out).toContain('members u-42');
    expect(out).toContain('presence event 1 join u-42');
    expect(out).toContain('presence event 2 update u-42');
    expect(out).toContain('presence event 3 leave u-42 leave');
    const keys = await admin(redis.url).keys('*');
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !k.startsWith('rm:'))).toEqual([]);
  });

  it('initPresence beside an original deployment on one Redis: its own prefix, no state carried over, the old keys untouched; SIGTERM disposes and exits', async () => {
    const redis = await startRedis();
    const r = admin(redis.url);
    await seedOriginal(r, 'room-1');
    const before = await dump(r, 'prs:*');
    const port = await freePort();
    const ex = run('init-presence', { REDIS_URL: redis.url, PORT: String(port) });
    await ex.prints('listening');
    const url = `http://127.0.0.1:${port}`;

    const ada = await connect(url);
    const adaEvents = listen(ada);
    const joined = await request(ada, 'presence:join', { roomId: 'room-1', userId: 'ada', state: { mic: true } });
    expect(joined).toMatchObject({ ok: true, self: { epoch: 1, resumed: false, ttlMs: 30_000 }, snapshot: { roomId: 'room-1', seq: 1 } });
    // The member the original deployment knows is not seen here: presence state does not carry over.
    expect(joined.snapshot.members.map((m: { userId: string }) => m.userId)).toEqual(['ada']);

    const bob = await connect(url);
    expect((await request(bob, 'presence:join', { roomId: 'room-1', userId: 'bob' })).ok).toBe(true);
    expect(await request(bob, 'presence:heartbeat', { patchState: { typing: true } })).toEqual({ ok: true, epoch: 1 });
    expect(await request(bob, 'presence:leave')).toEqual({ ok: true });
    await adaEvents.waitFor((e) => e.type === 'leave' && e.userId === 'bob', 'bob leaves');
    expect(adaEvents.events.filter((e) => e.userId === 'bob').map((e) => `${e.seq}:${e.type}${e.type === 'leave' ? `:${e.reason}` : ''}`)).toEqual(['2:join', '3:update', '4:leave:leave']);

    // Errors are { code, message } now.
    expect(await request(ada, 'presence:heartbeat', { epoch: 7 })).toMatchObject({ ok: false, error: { code: 'stale_epoch' } });

    ex.child.kill('SIGTERM');
    expect(await withDeadline(ex.exited, 10_000, 'the example to exit after SIGTERM')).toBe(0);
    // dispose() made ada leave at once, and nothing of the original deployment was read or changed.
    expect(await dump(r, 'prs:*')).toEqual(before);
    expect((await r.keys('*')).filter((k) => !k.startsWith('rm:') && !k.startsWith('prs:'))).toEqual([]);
    const rm = await r.keys('rm:{room:room-1}:c:*');
    for (const key of rm) expect(await r.hget(key, '.g'), `${key} ended`).not.toBeNull();
  });

  it('the raw Socket.IO client: new join ack and error shapes, heartbeats with the epoch every TTL/3 keep it present', async () => {
    const { url } = await startServer({ PRESENCE_TTL_MS: '900', PRESENCE_DISCONNECT_GRACE_MS: '0', PRESENCE_REAPER_INTERVAL_MS: '50' });
    const ex = run('raw-client', {}, [['http://localhost:3000', url]]);
    await ex.prints('members u-42 seq 1');
    // Three TTLs later it is still present: its heartbeats (epoch included) were accepted.
    await new Promise((r) => setTimeout(r, 2_700));
    const bob = await connect(url);
    const ack = await request(bob, 'presence:join', { roomId: 'room-1', userId: 'bob' });
    expect(ack.snapshot.members.map((m: { userId: string }) => m.userId)).toEqual(['bob', 'u-42']);
    await ex.prints('event 2 join bob');
    expect(await request(bob, 'presence:leave', {})).toEqual({ ok: true });
    await ex.prints('event 3 leave bob leave');
    expect(ex.output()).not.toContain('leave u-42');
  });

  it('the SDK: joinRoom(roomId, { userId, state }), join/update/leave listeners, custom events relayed by the server', async () => {
    const { url } = await startServer({});
    const bob = await connect(url);
    const bobSees = listen(bob);
    expect((await request(bob, 'presence:join', { roomId: 'room-42', userId: 'bob' })).ok).toBe(true);
    const ex = run('sdk', {}, [['http://localhost:3000', url]]);
    await ex.prints('members bob,user-123');
    await bobSees.waitFor((e) => e.type === 'update' && e.userId === 'user-123' && e.state.typing === true, 'the example’s state update');
    await waitFor(() => bobSees.messages.find((m) => m.event === 'chat:message' && m.userId === 'user-123'), { what: 'the example’s chat message' });
    expect(bobSees.messages[0]).toMatchObject({ roomId: 'room-42', event: 'chat:message', data: { text: 'hello' }, userId: 'user-123' });
    expect(await request(bob, 'presence:message', { event: 'chat:message', data: { text: 'hi' } })).toEqual({ ok: true });
    await ex.prints('chat bob {"text":"hi"}');
    expect(await request(bob, 'presence:heartbeat', { patchState: { away: true } })).toMatchObject({ ok: true });
    await ex.prints('update bob {"away":true}');
    expect(await request(bob, 'presence:leave')).toEqual({ ok: true });
    await ex.prints('leave bob leave');
  });

  it('the module-based chat module rewritten on initPresence: members reach the room on every node through broadcast, others are refused', async () => {
    const redis = await startRedis();
    const port = await freePort();
    const ex = run('module', { REDIS_URL: redis.url, PORT: String(port) });
    await ex.prints('listening');
    const url = `http://127.0.0.1:${port}`;
    const ada = await connect(url);
    const bob = await connect(url);
    const carol = await connect(url);
    const bobSees = listen(bob);
    expect((await request(ada, 'presence:join', { roomId: 'room-m', userId: 'ada' })).ok).toBe(true);
    expect((await request(bob, 'presence:join', { roomId: 'room-m', userId: 'bob' })).ok).toBe(true);
    expect(await request(ada, 'chat:send', { roomId: 'room-m', text: 'hi' })).toEqual({ ok: true });
    await waitFor(() => bobSees.messages.length > 0, { what: 'the relayed chat message' });
    expect(bobSees.messages[0]).toMatchObject({ roomId: 'room-m', event: 'chat:message', data: { userId: 'ada', text: 'hi' } });
    // Not a member, or not a chat payload: refused, and the server keeps running.
    expect(await request(carol, 'chat:send', { roomId: 'room-m', text: 'let me in' })).toEqual({ ok: false });
    expect(await request(carol, 'chat:send', null)).toEqual({ ok: false });
    expect(await request(ada, 'chat:send', { roomId: 'room-m', text: 42 })).toEqual({ ok: false });
    expect(bobSees.messages).toHaveLength(1);
    ex.child.kill('SIGTERM');
    expect(await withDeadline(ex.exited, 10_000, 'the example to exit after SIGTERM')).toBe(0);
  });
});
