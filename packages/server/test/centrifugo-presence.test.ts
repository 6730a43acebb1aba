import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { JoinContext, LeaveContext } from 'centrifuge';
import WebSocket from 'ws';
import { connect, listen, request, waitFor } from 'realtime-message-testing';
import { ANONYMOUS_USER_ID } from '../src/index.js';
import { centrifugoServer, channel, channelsConfig, client, raw, token } from './centrifugo-fixtures.js';
import { callbackService, v5Config } from './centrifugo-proxy-fixtures.js';

/**
 * Presence of Centrifugo subscribers with the official client: anonymous
 * connections are present (all of them one user, as Centrifugo counts
 * them), and presence replies, join and leave pushes carry `conn_info` and
 * `chan_info`, on memory and on two Redis nodes, with Socket.IO members of
 * the same room seeing the same members.
 */

const KEY = 'presence-info-test-key-0123456789';

function joinsAndLeaves(sub: ReturnType<ReturnType<typeof client>['newSubscription']>) {
  const joins: JoinContext[] = [];
  const leaves: LeaveContext[] = [];
  sub.on('join', (j) => joins.push(j));
  sub.on('leave', (l) => leaves.push(l));
  return { joins, leaves };
}

const engines = [
  ['memory', (): Record<string, string> => ({})],
  ['redis', (): Record<string, string> => ({ REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `cfp${randomUUID().slice(0, 6)}:` })],
] as const;

describe.each(engines)('Centrifugo presence on %s (centrifuge-js)', (_name, env) => {
  it('anonymous connections are in presence and presence_stats, all of them one user; Socket.IO members see them as one member', async () => {
    const { url, ws } = await centrifugoServer({ ...env(), API_KEY: KEY, PRESENCE_DISCONNECT_GRACE_MS: '0' });
    const ch = channel();
    const [a, b] = [client(ws), client(ws)];
    const subA = a.newSubscription(ch, { joinLeave: true });
    const seenA = joinsAndLeaves(subA);
    a.connect();
    subA.subscribe();
    await subA.ready(3_000);
    b.connect();
    const subB = b.newSubscription(ch);
    subB.subscribe();
    await subB.ready(3_000);
    // a's own join comes first (it joined first), then b's.
    const bJoin = await waitFor(() => seenA.joins.filter((j) => j.info.user === '')[1], { what: "b's join" });
    expect(bJoin.info).toEqual({ user: '', client: expect.any(String) });

    // A Socket.IO member of the same room, with a state.
    const eve = await connect(url);
    const heard = listen(eve);
    const joined = await request(eve, 'presence:join', { roomId: ch, userId: 'eve', state: { name: 'Eve' } });
    expect(joined.ok).toBe(true);
    // It sees the anonymous connections as one member with two connections.
    expect(joined.snapshot.members).toEqual(expect.arrayContaining([{ userId: ANONYMOUS_USER_ID, connIds: expect.any(Array) }]));
    expect(joined.snapshot.members.find((m: { userId: string }) => m.userId === ANONYMOUS_USER_ID).connIds).toHaveLength(2);
    await waitFor(() => seenA.joins.find((j) => j.info.user === 'eve'), { what: "eve's join" });
    expect(seenA.joins.find((j) => j.info.user === 'eve')!.info.connInfo).toEqual({ name: 'Eve' });

    const presence = await subB.presence();
    const users = Object.values(presence.clients).map((c) => c.user).sort();
    expect(users).toEqual(['', '', 'eve']);
    expect(Object.values(presence.clients).find((c) => c.user === 'eve')).toMatchObject({ connInfo: { name: 'Eve' } });
    expect(await subA.presenceStats()).toEqual({ numClients: 3, numUsers: 2 });
    // The server API answers the same (anonymous users as "").
    const api = await fetch(`${url}/api/presence_stats`, { method: 'POST', headers: { 'x-api-key': KEY }, body: JSON.stringify({ channel: ch }) });
    expect(await api.json()).toEqual({ result: { num_clients: 3, num_users: 2 } });

    // Nobody can join as the anonymous user, and it has no user status.
    expect(await request(eve, 'presence:join', { roomId: channel(), userId: ANONYMOUS_USER_ID })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const status = await fetch(`${url}/api/v2/presence/${encodeURIComponent(ANONYMOUS_USER_ID)}`);
    expect(await status.json()).toMatchObject({ status: 'offline', lastSeen: null });

    // b leaves: a gets the leave push, the Socket.IO member the leave event of one anonymous connection.
    subB.unsubscribe();
    await waitFor(() => seenA.leaves.find((l) => l.info.client === bJoin.info.client), { what: "b's leave" });
    await heard.waitFor((e) => e.type === 'leave' && e.userId === ANONYMOUS_USER_ID);
    expect(await subA.presenceStats()).toEqual({ numClients: 2, numUsers: 2 });
  });

  it('presence, join and leave carry conn_info (connection token info) and chan_info (subscription token info)', async () => {
    const { url, ws } = await centrifugoServer({ ...env(), API_KEY: KEY }, { auth: true });
    const ch = channel();
    const bob = client(ws, { token: await token({ sub: 'bob', info: 'just a string' }) });
    const subB = bob.newSubscription(ch, { joinLeave: true });
    const seen = joinsAndLeaves(subB);
    bob.connect();
    subB.subscribe();
    await subB.ready(3_000);
    const ada = client(ws, { token: await token({ sub: 'ada', info: { name: 'Ada' } }) });
    const subA = ada.newSubscription(ch, { token: await token({ sub: 'ada', channel: ch, info: { role: 'admin' } }) });
    ada.connect();
    subA.subscribe();
    await subA.ready(3_000);
    const adaJoin = await waitFor(() => seen.joins.find((j) => j.info.user === 'ada'), { what: "ada's join" });
    expect(adaJoin.info).toEqual({ user: 'ada', client: expect.any(String), connInfo: { name: 'Ada' }, chanInfo: { role: 'admin' } });

    const presence = Object.values((await subB.presence()).clients);
    expect(presence.find((c) => c.user === 'ada')).toMatchObject({ connInfo: { name: 'Ada' }, chanInfo: { role: 'admin' } });
    // A conn_info that is not an object comes back as it was.
    expect(presence.find((c) => c.user === 'bob')).toMatchObject({ connInfo: 'just a string' });
    expect(presence.find((c) => c.user === 'bob')!.chanInfo).toBeUndefined();
    const api = await fetch(`${url}/api/presence`, { method: 'POST', headers: { 'x-api-key': KEY }, body: JSON.stringify({ channel: ch }) });
    const apiPresence = Object.values(((await api.json()) as { result: { presence: Record<string, unknown> } }).result.presence);
    expect(apiPresence).toContainEqual({ client: adaJoin.info.client, user: 'ada', conn_info: { name: 'Ada' }, chan_info: { role: 'admin' } });

    // A Socket.IO member sees ada's conn_info as her state, with her chan_info beside it.
    const eve = await connect(url, { auth: { token: await token({ sub: 'eve' }) } });
    const joined = await request(eve, 'presence:join', { roomId: ch, userId: 'eve' });
    expect(joined.snapshot.connections.find((c: { userId: string }) => c.userId === 'ada').state).toEqual({ name: 'Ada', chan_info: { role: 'admin' } });
    expect(joined.snapshot.connections.find((c: { userId: string }) => c.userId === 'bob').state).toEqual({ conn_info: 'just a string' });

    // The leave carries what the join did.
    subA.unsubscribe();
    const adaLeave = await waitFor(() => seen.leaves.find((l) => l.info.user === 'ada'), { what: "ada's leave" });
    expect(adaLeave.info).toEqual(adaJoin.info);
  });
});

describe('Centrifugo presence on two Redis nodes', () => {
  it('a subscriber that came later learns the others from the join snapshot: their leave pushes carry conn_info and chan_info', async () => {
    const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: `cfp2${randomUUID().slice(0, 6)}:` };
    const [a, b] = [await centrifugoServer(env, { auth: true }), await centrifugoServer(env, { auth: true })];
    const ch = channel();
    const ada = client(a.ws, { token: await token({ sub: 'ada', info: { name: 'Ada' } }) });
    const subA = ada.newSubscription(ch, { token: await token({ sub: 'ada', channel: ch, info: { seat: 1 } }) });
    ada.connect();
    subA.subscribe();
    await subA.ready(3_000);
    // Bob subscribes on node B after ada: no join push of hers, but the snapshot of his join.
    const bob = client(b.ws, { token: await token({ sub: 'bob' }) });
    const subB = bob.newSubscription(ch, { joinLeave: true });
    const seen = joinsAndLeaves(subB);
    bob.connect();
    subB.subscribe();
    await subB.ready(3_000);
    const presence = Object.values((await subB.presence()).clients);
    expect(presence.find((c) => c.user === 'ada')).toMatchObject({ connInfo: { name: 'Ada' }, chanInfo: { seat: 1 } });
    subA.unsubscribe();
    const leave = await waitFor(() => seen.leaves.find((l) => l.info.user === 'ada'), { what: "ada's leave on node B" });
    expect(leave.info).toMatchObject({ user: 'ada', connInfo: { name: 'Ada' }, chanInfo: { seat: 1 } });
    expect(seen.joins.filter((j) => j.info.user === 'ada')).toEqual([]);
  });
});

describe('Centrifugo presence with the callback proxies', () => {
  it("the connect proxy's info is conn_info and the subscribe proxy's info chan_info, in presence and pushes", async () => {
    const service = await callbackService();
    // On the subscribe proxy's path the client's join_leave is not applied (as in Centrifugo): force_push_join_leave.
    const namespaces = [{ name: 'chat', proxy_subscribe: true, presence: true, join_leave: true, force_push_join_leave: true, allow_presence_for_subscriber: true }];
    const { ws } = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(v5Config(service, { namespaces })) });
    const withCookie = (user: string) =>
      class extends WebSocket {
        constructor(u: string, p?: string | string[]) {
          super(u, p ?? [], { headers: { cookie: `session=${user}` } });
        }
      } as typeof WebSocket;
    const ch = channel('chat');
    const ada = client(ws, { websocket: withCookie('ada') });
    const subA = ada.newSubscription(ch);
    const seen = joinsAndLeaves(subA);
    ada.connect();
    subA.subscribe();
    await subA.ready(3_000);
    const bob = client(ws, { websocket: withCookie('bob') });
    const subB = bob.newSubscription(ch);
    bob.connect();
    subB.subscribe();
    await subB.ready(3_000);
    const join = await waitFor(() => seen.joins.find((j) => j.info.user === 'bob'), { what: "bob's join" });
    // The callback service answers connect with info { name: <USER> } and subscribe with info { role: 'member' }.
    expect(join.info).toMatchObject({ connInfo: { name: 'BOB' }, chanInfo: { role: 'member' } });
    const presence = Object.values((await subA.presence()).clients);
    expect(presence.map((c) => [c.user, c.connInfo, c.chanInfo]).sort()).toEqual([
      ['ada', { name: 'ADA' }, { role: 'member' }],
      ['bob', { name: 'BOB' }, { role: 'member' }],
    ]);
  });

  it('a token or a connect proxy naming the reserved anonymous user is refused: Centrifugo 3500, Socket.IO unauthorized', async () => {
    const { ws, url } = await centrifugoServer({}, { auth: true });
    const s = await raw(ws);
    s.send(JSON.stringify({ id: 1, connect: { token: await token({ sub: ANONYMOUS_USER_ID }) } }));
    expect(await s.closed).toMatchObject({ code: 3500, reason: 'invalid token' });
    await expect(connect(url, { auth: { token: await token({ sub: ANONYMOUS_USER_ID }) } })).rejects.toMatchObject({ message: expect.stringMatching(/reserved/) });
    const service = await callbackService();
    service.set('connect', () => ({ result: { user: ANONYMOUS_USER_ID } }));
    const proxied = await centrifugoServer({ CENTRIFUGO_CONFIG: channelsConfig(v5Config(service)) });
    const p = await raw(proxied.ws);
    p.send(JSON.stringify({ id: 1, connect: {} }));
    expect(await p.closed).toMatchObject({ code: 3500 });
  });
});
