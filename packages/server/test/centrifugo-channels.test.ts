import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { JoinContext, LeaveContext, SubscribedContext } from 'centrifuge';
import { connect, listen, request, waitFor } from 'realtime-message-testing';
import { centrifugoServer, channel, channelsConfig, client, dropConnection, publications, token, waitLength } from './centrifugo-fixtures.js';

const backends = [
  ['memory', () => ({})],
  ['redis', () => ({ REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `cfc${randomUUID().slice(0, 6)}:` })],
] as const;

describe.each(backends)('Centrifugo channels on %s (centrifuge-js)', (_name, env) => {
  it('history: newest first, forward from a position, the position alone with limit 0', async () => {
    const { ws } = await centrifugoServer(env());
    const c = client(ws);
    c.connect();
    const ch = channel();
    const sub = c.newSubscription(ch);
    sub.subscribe();
    await sub.ready(3_000);
    for (let i = 1; i <= 5; i++) await sub.publish({ i });
    const top = await sub.history({ limit: 0 });
    expect(top).toMatchObject({ publications: [], offset: 5, epoch: expect.any(String) });
    const newest = await sub.history({ limit: 2, reverse: true });
    expect(newest.publications.map((p) => p.data)).toEqual([{ i: 5 }, { i: 4 }]);
    const fwd = await sub.history({ limit: 10, since: { offset: 3, epoch: top.epoch } });
    expect(fwd.publications.map((p) => p.offset)).toEqual([4, 5]);
    // Another epoch: 112 unrecoverable position.
    await expect(sub.history({ limit: 10, since: { offset: 1, epoch: 'otherepo' } })).rejects.toMatchObject({ code: 112 });
  });

  it('recovery after a dropped connection: recovered, the missed publications once each, in order, then live ones', async () => {
    const { ws, server } = await centrifugoServer(env());
    const reader = client(ws);
    const writer = client(ws);
    const ch = channel();
    const events: SubscribedContext[] = [];
    const sub = reader.newSubscription(ch, { recoverable: true });
    sub.on('subscribed', (e) => events.push(e));
    const seen = publications(sub);
    const pub = writer.newSubscription(ch);
    reader.connect();
    writer.connect();
    sub.subscribe();
    pub.subscribe();
    await Promise.all([sub.ready(3_000), pub.ready(3_000)]);
    for (let i = 1; i <= 3; i++) await pub.publish({ i });
    await waitLength(seen, 3);
    const clientId = await waitFor(() => (reader as unknown as { _client: string | null })._client);
    const reconnecting = new Promise((resolve) => reader.once('connecting', resolve));
    dropConnection(server, clientId);
    await reconnecting;
    for (let i = 4; i <= 6; i++) await pub.publish({ i });
    await waitFor(() => (events.length === 2 ? true : undefined), { what: 'the resubscribe' });
    expect(events[1]).toMatchObject({ wasRecovering: true, recovered: true, recoverable: true, positioned: true });
    await pub.publish({ i: 7 });
    await waitLength(seen, 7);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((p) => p.data)).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => ({ i })));
    expect(seen.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('an unrecoverable position: recovered false, nothing partial, live delivery continues', async () => {
    const config = channelsConfig({
      channel: {
        without_namespace: {},
        namespaces: [{ name: 'small', history_size: 2, history_ttl: '300s', allow_recovery: true, allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, allow_publish_for_client: true, allow_publish_for_anonymous: true }],
      },
    });
    const { ws, server } = await centrifugoServer({ ...env(), CHANNELS_CONFIG: config });
    // The reader's reconnect (50-100 ms after the drop) waits until the five publications are made: on a busy Redis they
    // once took longer, the reader resubscribed among them and got the later ones live (a test race, not a product bug).
    let gate: Promise<void> = Promise.resolve();
    const reader = client(ws, { getData: () => gate.then(() => null) });
    const writer = client(ws);
    const ch = channel('small');
    const events: SubscribedContext[] = [];
    const sub = reader.newSubscription(ch, { recoverable: true });
    sub.on('subscribed', (e) => events.push(e));
    const seen = publications(sub);
    reader.connect();
    writer.connect();
    sub.subscribe();
    await sub.ready(3_000);
    await writer.ready(3_000);
    await writer.publish(ch, { i: 1 });
    await waitLength(seen, 1);
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const reconnecting = new Promise((resolve) => reader.once('connecting', resolve));
    dropConnection(server, (reader as unknown as { _client: string })._client);
    await reconnecting;
    for (let i = 2; i <= 6; i++) await writer.publish(ch, { i });
    expect(events).toHaveLength(1);
    open();
    await waitFor(() => (events.length === 2 ? true : undefined), { what: 'the resubscribe' });
    expect(events[1]).toMatchObject({ wasRecovering: true, recovered: false });
    expect(seen.map((p) => p.data)).toEqual([{ i: 1 }]);
    await writer.publish(ch, { i: 7 });
    await waitLength(seen, 2);
    expect(seen.map((p) => p.data)).toEqual([{ i: 1 }, { i: 7 }]);
  });

  it('presence, presence stats and join/leave pushes of users (tokens)', async () => {
    const { ws } = await centrifugoServer(env(), { auth: true });
    const ch = channel();
    const ada = client(ws, { token: await token({ sub: 'ada', info: { name: 'Ada' } }) });
    const bob = client(ws, { token: await token({ sub: 'bob' }) });
    const joins: JoinContext[] = [];
    const leaves: LeaveContext[] = [];
    const subA = ada.newSubscription(ch, { joinLeave: true });
    subA.on('join', (j) => joins.push(j));
    subA.on('leave', (l) => leaves.push(l));
    ada.connect();
    subA.subscribe();
    await subA.ready(3_000);
    bob.connect();
    const subB = bob.newSubscription(ch);
    subB.subscribe();
    await subB.ready(3_000);
    await waitFor(() => joins.find((j) => j.info.user === 'bob'), { what: "bob's join" });
    const presence = await subA.presence();
    expect(Object.values(presence.clients).map((c) => c.user).sort()).toEqual(['ada', 'bob']);
    expect(await subB.presenceStats()).toEqual({ numClients: 2, numUsers: 2 });
    subB.unsubscribe();
    await waitFor(() => leaves.find((l) => l.info.user === 'bob'), { what: "bob's leave" });
    expect(await subA.presenceStats()).toEqual({ numClients: 1, numUsers: 1 });
    // Ada's own join carries her conn_info (the presence state Socket.IO members see too).
    expect(joins.find((j) => j.info.user === 'ada')?.info.connInfo).toEqual({ name: 'Ada' });
  });
});

describe('Centrifugo channels on two Redis nodes, with Socket.IO members', () => {
  it('publications and join/leave cross nodes, and a Socket.IO member and a Centrifugo subscriber see each other', async () => {
    const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `cf2${randomUUID().slice(0, 6)}:` };
    const [a, b] = [await centrifugoServer(env, { auth: true }), await centrifugoServer(env, { auth: true })];
    const ch = channel();
    const ada = client(a.ws, { token: await token({ sub: 'ada' }) });
    const joins: JoinContext[] = [];
    const leaves: LeaveContext[] = [];
    const subA = ada.newSubscription(ch, { joinLeave: true });
    subA.on('join', (j) => joins.push(j));
    subA.on('leave', (l) => leaves.push(l));
    const seen = publications(subA);
    ada.connect();
    subA.subscribe();
    await subA.ready(3_000);
    // A Centrifugo client on node B publishes; node A's subscriber receives.
    const bob = client(b.ws, { token: await token({ sub: 'bob' }) });
    bob.connect();
    const subB = bob.newSubscription(ch);
    subB.subscribe();
    await subB.ready(3_000);
    await waitFor(() => joins.find((j) => j.info.user === 'bob'), { what: "bob's join from node B" });
    await subB.publish({ from: 'bob' });
    await waitLength(seen, 1);
    expect(seen[0]).toMatchObject({ data: { from: 'bob' }, info: { user: 'bob' } });
    // A Socket.IO member of the room of the same name, on node B.
    const eve = await connect(b.url, { auth: { token: await token({ sub: 'eve' }) } });
    const heard = listen(eve);
    const joined = await request(eve, 'presence:join', { roomId: ch, userId: 'eve' });
    expect(joined.ok).toBe(true);
    expect(joined.snapshot.members.map((m: { userId: string }) => m.userId).sort()).toEqual(['ada', 'bob', 'eve']);
    await waitFor(() => joins.find((j) => j.info.user === 'eve'), { what: "the Socket.IO member's join" });
    expect((await subA.presenceStats()).numUsers).toBe(3);
    // And the Socket.IO member sees a Centrifugo subscriber leave (ada unsubscribes on node A).
    subA.unsubscribe();
    await heard.waitFor((e) => e.type === 'leave' && e.userId === 'ada');
    expect((await request(eve, 'presence:leave', {})).ok).toBe(true);
    await waitFor(() => leaves.length === 0 || undefined); // ada unsubscribed: no pushes to her any more
  });
});
