import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import { StatusRecordSchema, type StatusRecord } from 'realtime-message-protocol';
import { connect, request, room, startGateway, waitFor, type Client } from 'realtime-message-testing';
import { createJwtVerifier } from '../src/index.js';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
const token = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
const user = (): string => `u-${randomUUID().slice(0, 8)}`;

/** Collects the status events a socket receives, each checked against the protocol's strict schema. */
function watch(socket: Client) {
  const events: StatusRecord[] = [];
  socket.on('status:event', (e) => events.push(StatusRecordSchema.parse(e) as StatusRecord));
  return {
    events,
    /** The events of `userId` before a settle marker: a message change of `marker` that every watcher sees after them. */
    async settle(writer: Client, markerUser: string, userId: string): Promise<StatusRecord[]> {
      const msg = `m-${randomUUID().slice(0, 6)}`;
      const ack = await request(writer, 'status:set', { userId: markerUser, status: 'online', message: msg });
      expect(ack.ok).toBe(true);
      await waitFor(() => events.find((e) => e.userId === markerUser && e.message === msg), { what: 'the settle marker' });
      const i = events.findIndex((e) => e.userId === markerUser && e.message === msg);
      return events.slice(0, i).filter((e) => e.userId === userId);
    },
  };
}

describe('status over sockets (SPEC §7), two nodes on one Redis', () => {
  it('a watcher on one node gets exactly one event per change made on the other, in order', async () => {
    const keyPrefix = `ss:${randomUUID().slice(0, 8)}:`;
    const opts = { redisUrl: inject('redisUrl'), keyPrefix, disconnectGraceMs: 0 };
    const [a, b] = [await startGateway(opts), await startGateway(opts)];
    const ada = user();
    const marker = user();
    const watcher = await connect(b.url);
    const w = watch(watcher);
    const sub = await request(watcher, 'status:subscribe', { userIds: [ada, marker] });
    expect(sub).toMatchObject({ ok: true, users: [{ userId: ada, status: 'offline', lastSeen: null, seq: 0 }, { userId: marker }] });

    const s = await connect(a.url);
    expect((await request(s, 'presence:join', { roomId: room(), userId: ada })).ok).toBe(true);
    // Open mode: status:set acts for the user the socket joined as.
    const set = await request(s, 'status:set', { status: 'busy', message: 'in a meeting', ttlSeconds: 600 });
    expect(set).toMatchObject({ ok: true, user: { userId: ada, status: 'busy', message: 'in a meeting', manual: true } });
    expect((await request(s, 'status:set', { status: 'online', message: null })).ok).toBe(true);
    s.disconnect();
    await waitFor(() => w.events.find((e) => e.userId === ada && e.status === 'offline'), { what: 'ada offline' });
    const markerSocket = await connect(a.url);
    const seen = await w.settle(markerSocket, marker, ada);
    expect(seen.map((e) => [e.status, e.message])).toEqual([
      ['online', null],
      ['busy', 'in a meeting'],
      ['online', null],
      ['offline', null],
    ]);
    // seq rises by one per event: a client can tell a missed event.
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(seen.every((e) => e.nodeId !== null)).toBe(true);
  });

  it('unsubscribe and disconnect stop the events of that socket; other watchers keep theirs', async () => {
    const g = await startGateway();
    const ada = user();
    const marker = user();
    const [x, y] = [await connect(g.url), await connect(g.url)];
    const [wx, wy] = [watch(x), watch(y)];
    for (const s of [x, y]) expect((await request(s, 'status:subscribe', { userIds: [ada, marker] })).ok).toBe(true);
    expect(await request(x, 'status:unsubscribe', { userIds: [ada] })).toEqual({ ok: true });
    // Unsubscribing a user not watched is fine (idempotent).
    expect(await request(x, 'status:unsubscribe', { userIds: [user()] })).toEqual({ ok: true });
    const writer = await connect(g.url);
    // ada is not connected: away stays offline (no event), the message is a change (one event).
    expect((await request(writer, 'status:set', { userId: ada, status: 'away' })).ok).toBe(true);
    expect((await request(writer, 'status:set', { userId: ada, status: 'away', message: 'brb' })).ok).toBe(true);
    const [seenX, seenY] = [await wx.settle(writer, marker, ada), await wy.settle(writer, marker, ada)];
    expect(seenX).toEqual([]);
    expect(seenY.map((e) => [e.status, e.message])).toEqual([['offline', 'brb']]);
    // Watches held: x watches marker, y watches ada and marker. A disconnected watcher is forgotten.
    const watches = async () => (await g.runtime.metrics.statusWatches.get()).values[0]!.value;
    expect(await watches()).toBe(3);
    y.disconnect();
    await waitFor(async () => ((await watches()) === 1 ? true : undefined), { what: 'y forgotten' });
    x.disconnect();
    await waitFor(async () => ((await watches()) === 0 ? true : undefined), { what: 'x forgotten' });
  });

  it('refuses bad watch requests with invalid_payload and caps watched users per socket', async () => {
    const g = await startGateway({ maxWatchedUsersPerSocket: 3 });
    const s = await connect(g.url);
    const bad: unknown[] = [undefined, 'ada', { userIds: [] }, { userIds: 'ada' }, { userIds: ['a', 'a'] }, { userIds: [''] }, { userIds: ['a{b'] }, { userIds: Array.from({ length: 1_001 }, (_, i) => `u${i}`) }];
    for (const payload of bad) {
      const res = await request(s, 'status:subscribe', payload);
      expect(res, JSON.stringify(payload)?.slice(0, 60)).toEqual({ ok: false, error: { code: 'invalid_payload', message: expect.any(String) } });
    }
    expect((await request(s, 'status:subscribe', { userIds: ['a', 'b'] })).ok).toBe(true);
    // Re-watching the same users costs nothing.
    expect((await request(s, 'status:subscribe', { userIds: ['a', 'b', 'c'] })).ok).toBe(true);
    const over = await request(s, 'status:subscribe', { userIds: ['d'] });
    expect(over.error).toEqual({ code: 'forbidden', message: expect.stringContaining('at most 3') });
    expect((await request(s, 'status:unsubscribe', { userIds: ['a'] })).ok).toBe(true);
    expect((await request(s, 'status:subscribe', { userIds: ['d'] })).ok).toBe(true);
    const badSet = await request(s, 'status:set', { userId: 'a', status: 'sleeping' });
    expect(badSet.error.code).toBe('invalid_payload');
    const longMsg = await request(s, 'status:set', { userId: 'a', status: 'busy', message: 'x'.repeat(101) });
    expect(longMsg.error.code).toBe('invalid_payload');
    // Open mode, no room joined, no userId: nobody to act for.
    const nobody = await request(s, 'status:set', { status: 'busy' });
    expect(nobody.error).toEqual({ code: 'invalid_payload', message: expect.stringContaining('userId is required') });
  });

  it('with auth, a socket sets only its own status; STATUS_READS=token refuses open-mode watchers', async () => {
    const g = await startGateway({ verifyToken: createJwtVerifier({ secret: SECRET }) });
    const s = await connect(g.url, { auth: { token: await token('ada') } });
    const own = await request(s, 'status:set', { status: 'away', message: 'lunch' });
    expect(own).toMatchObject({ ok: true, user: { userId: 'ada', message: 'lunch' } });
    const other = await request(s, 'status:set', { userId: 'bob', status: 'busy', message: 'hijacked' });
    expect(other.error.code).toBe('forbidden');
    const bob = await request(s, 'status:subscribe', { userIds: ['bob'] });
    expect(bob.users[0]).toMatchObject({ userId: 'bob', message: null, seq: 0 });

    const open = await startGateway({ statusReads: 'token' });
    const anon = await connect(open.url);
    expect((await request(anon, 'status:subscribe', { userIds: ['ada'] })).error.code).toBe('unauthorized');
  });

  it('a socket that joined as one user cannot set another user’s status (open mode)', async () => {
    const g = await startGateway();
    const s = await connect(g.url);
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    expect((await request(s, 'status:set', { userId: 'bob', status: 'busy' })).error.code).toBe('forbidden');
    const bob = await g.runtime.status!.get('bob');
    expect(bob.updatedAt).toBeNull();
  });

  it('status:activity keeps a user online under automatic away; without it the user turns away once', async () => {
    const g = await startGateway({ status: { awayAfterMs: 800, sweepIntervalMs: 50 } });
    const ada = user();
    const s = await connect(g.url);
    // A socket that watches nobody gets no status event.
    const bystander = watch(await connect(g.url));
    const watcherSocket = await connect(g.url);
    const w2 = watch(watcherSocket);
    expect((await request(watcherSocket, 'status:subscribe', { userIds: [ada] })).ok).toBe(true);
    expect((await request(s, 'presence:join', { roomId: room(), userId: ada })).ok).toBe(true);
    await waitFor(() => w2.events.find((e) => e.status === 'online'), { what: 'online' });
    // Activity every 100 ms for 800 ms: never away.
    for (let i = 0; i < 8; i++) {
      expect(await request(s, 'status:activity')).toEqual({ ok: true });
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(w2.events.map((e) => e.status)).toEqual(['online']);
    await waitFor(() => w2.events.find((e) => e.status === 'away'), { what: 'automatic away', timeoutMs: 5_000 });
    expect(await request(s, 'status:activity', { userId: ada })).toEqual({ ok: true });
    await waitFor(() => (w2.events.at(-1)?.status === 'online' ? true : undefined), { what: 'online again' });
    expect(w2.events.map((e) => e.status)).toEqual(['online', 'away', 'online']);
    expect(bystander.events).toEqual([]);
  });

  it('answers forbidden when status is turned off', async () => {
    const g = await startGateway({ status: false });
    const s = await connect(g.url);
    expect((await request(s, 'status:subscribe', { userIds: ['ada'] })).error.code).toBe('forbidden');
    expect((await request(s, 'status:set', { userId: 'ada', status: 'busy' })).error.code).toBe('forbidden');
  });
});
