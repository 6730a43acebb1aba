import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connect, request, startServer, waitFor, type Client } from 'realtime-message-testing';
import { countUsers, initPresence } from '../src/app/init-presence.js';
import { SECRET, token } from './centrifugo-fixtures.js';

/**
 * A node's user count (`/api/info`'s `num_users`, issue 18) is kept up to
 * date at connect, join, leave and disconnect instead of walking every socket
 * each time: after random connects, joins of several rooms as several users,
 * leaves, re-joins as another user and abrupt disconnects, it must equal a
 * full recount over the sockets and the distinct users the clients expect,
 * and come back to nothing when everyone left. Real server, real sockets.
 */

const KEY = 'node-user-count-key-0123456789';
const ROOMS = ['r1', 'r2', 'r3', 'r4'];
const USERS = ['ann', 'bob', 'cy', 'dee', 'eve'];

/** A small seeded PRNG (mulberry32): a failure names its seed and can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Room {
  roomId: string;
  userId: string;
}

/**
 * What the test expects of one client: its token's user and its rooms, in the
 * order the session keeps them (a SmallMap: insertion order, except that a room
 * added while the first slot is free takes it). The first room's user is its
 * primary user.
 */
class Model {
  private first: Room | undefined;
  private more: Room[] = [];
  constructor(
    readonly socket: Client,
    readonly auth: string | undefined,
  ) {}
  get rooms(): Room[] {
    return this.first ? [this.first, ...this.more] : [...this.more];
  }
  add(r: Room): void {
    if (this.rooms.some((m) => m.roomId === r.roomId)) return;
    if (!this.first) this.first = r;
    else this.more.push(r);
  }
  remove(roomId: string): void {
    if (this.first?.roomId === roomId) this.first = undefined;
    else this.more = this.more.filter((m) => m.roomId !== roomId);
  }
}

const primaryOf = (c: Model): string => c.rooms[0]?.userId ?? c.auth ?? '';

async function info(url: string): Promise<{ num_clients: number; num_users: number }> {
  const res = await fetch(`${url}/api/info`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: '{}' });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { result: { nodes: Array<{ num_clients: number; num_users: number }> } };
  expect(body.result.nodes).toHaveLength(1);
  return body.result.nodes[0]!;
}

describe.each([
  ['open mode (sockets without a user until they join)', false],
  ['token mode (every socket acts as its token user)', true],
] as const)('node user count, %s', (_name, auth) => {
  it.each([11, 29, 4242])('random connects, joins, leaves, re-joins and disconnects keep the count equal to a recount (seed %i)', async (seed) => {
    const { server, url } = await startServer({ API_KEY: KEY, DEMO_DIR: 'off', ...(auth ? { AUTH_JWT_SECRET: SECRET } : {}) });
    const nsp = server.io.of('/');
    const rnd = prng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
    const clients: Model[] = [];
    let step = 0;

    const open = async (): Promise<void> => {
      const user = auth ? pick(USERS) : undefined;
      const socket = await connect(url, user ? { auth: { token: await token({ sub: user }) } } : {});
      clients.push(new Model(socket, user));
    };
    const join = async (c: Model, roomId: string, userId: string): Promise<void> => {
      const res = await request(c.socket, 'presence:join', { roomId, userId });
      expect(res, `join ${roomId} as ${userId}`).toMatchObject({ ok: true });
      c.add({ roomId, userId });
    };
    const leave = async (c: Model, roomId: string): Promise<void> => {
      expect(await request(c.socket, 'presence:leave', { roomId })).toEqual({ ok: true });
      c.remove(roomId);
    };
    const gone = (c: Model): void => {
      clients.splice(clients.indexOf(c), 1);
    };

    /** The settle point: every socket the server still has is one the test expects, and the three counts agree. */
    const check = async (): Promise<void> => {
      step++;
      await waitFor(() => nsp.sockets.size === clients.length, { what: `the server to see ${clients.length} sockets (seed ${seed}, step ${step})` });
      const expected = new Set(clients.map(primaryOf));
      const recount = countUsers(nsp);
      const kept = server.presence.local.clients();
      const where = `seed ${seed}, step ${step}`;
      expect([...recount].sort(), where).toEqual([...expected].sort());
      expect(kept.numClients, where).toBe(clients.length);
      expect(kept.numUsers, where).toBe(expected.size);
      expect(kept.users.size, where).toBe(expected.size);
      for (const u of expected) expect(kept.users.has(u), `${where}: has ${JSON.stringify(u)}`).toBe(true);
      expect(await info(url), where).toMatchObject({ num_clients: clients.length, num_users: expected.size });
    };

    for (let i = 0; i < 4; i++) await open();
    await check();
    for (let round = 0; round < 8; round++) {
      for (let op = 0; op < 10; op++) {
        const r = rnd();
        const c = clients.length > 0 ? pick(clients) : undefined;
        if (!c || r < 0.15) {
          await open();
        } else if (r < 0.45) {
          // A join: of a room it is in (the same user again), or of another one as some user.
          const roomId = pick(ROOMS);
          const inRoom = c.rooms.find((m) => m.roomId === roomId);
          await join(c, roomId, inRoom?.userId ?? c.auth ?? pick(USERS));
        } else if (r < 0.6 && c.rooms.length > 0) {
          await leave(c, pick(c.rooms).roomId);
        } else if (r < 0.72 && c.rooms.length > 0 && !c.auth) {
          // A re-join as another user: leave, then join the same room as someone else.
          const m = pick(c.rooms);
          await leave(c, m.roomId);
          await join(c, m.roomId, pick(USERS.filter((u) => u !== m.userId)));
        } else if (r < 0.8) {
          c.socket.disconnect();
          gone(c);
        } else if (r < 0.88) {
          // Abrupt: the connection drops without Socket.IO's disconnect packet.
          (c.socket.io.engine as unknown as { close(): void }).close();
          gone(c);
        } else if (r < 0.94) {
          // A disconnect while a join is in flight.
          c.socket.emit('presence:join', { roomId: pick(ROOMS), userId: c.auth ?? pick(USERS) }, () => undefined);
          c.socket.disconnect();
          gone(c);
        } else {
          await join(c, pick(ROOMS), c.auth ?? pick(USERS)).catch(() => undefined);
          await check();
        }
      }
      await check();
    }
    // A socket that never joins in open mode is the anonymous user '': with everyone else gone it is the only one.
    if (!auth) {
      for (const c of [...clients]) {
        c.socket.disconnect();
        gone(c);
      }
      await open();
      await check();
      expect(server.presence.local.clients().users.has('')).toBe(true);
    }
    for (const c of [...clients]) {
      c.socket.disconnect();
      gone(c);
    }
    await check();
    expect(server.presence.local.clients()).toMatchObject({ numClients: 0, numUsers: 0 });
    expect(await info(url)).toMatchObject({ num_clients: 0, num_users: 0 });
  });
});

describe('node user count around dispose and sockets connected before presence', () => {
  it('dispose takes every session out of the count; afterwards the number is a recount of the sockets still connected', async () => {
    const { server, url } = await startServer({ API_KEY: KEY, DEMO_DIR: 'off' });
    const nsp = server.io.of('/');
    const [a, b, c] = [await connect(url), await connect(url), await connect(url)];
    expect((await request(a, 'presence:join', { roomId: 'x', userId: 'ann' })).ok).toBe(true);
    expect((await request(a, 'presence:join', { roomId: 'y', userId: 'bob' })).ok).toBe(true);
    expect((await request(b, 'presence:join', { roomId: 'x', userId: 'cy' })).ok).toBe(true);
    void c;
    const kept = server.presence.local.clients();
    expect(kept).toMatchObject({ numClients: 3, numUsers: 3 });
    expect(['ann', 'cy', ''].every((u) => kept.users.has(u))).toBe(true);
    const live = kept.users;
    await server.presence.dispose({ leave: false });
    // Every session was detached: the count it kept is empty (no increment without its decrement).
    expect(live.size).toBe(0);
    // The sockets are still connected: the number is what a walk over them gives, as before.
    expect(nsp.sockets.size).toBe(3);
    const after = server.presence.local.clients();
    expect(after.numUsers).toBe(countUsers(nsp).size);
    expect(after.numUsers).toBe(3);
  });

  it('sockets connected before initPresence count as they are until they disconnect', async () => {
    const http = createServer();
    const io = new Server(http, { transports: ['websocket'] });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    onTestFinished(async () => {
      await io.close();
    });
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const early = await connect(url);
    await waitFor(() => io.of('/').sockets.size === 1, { what: 'the early socket' });
    const runtime = initPresence({ io, status: false, channels: false, startReaper: false });
    onTestFinished(() => runtime.dispose({ leave: false }));
    expect(runtime.local.clients()).toMatchObject({ numClients: 1, numUsers: 1 });
    const later = await connect(url);
    expect((await request(later, 'presence:join', { roomId: 'x', userId: 'ann' })).ok).toBe(true);
    expect(runtime.local.clients()).toMatchObject({ numClients: 2, numUsers: 2 });
    early.disconnect();
    await waitFor(() => io.of('/').sockets.size === 1, { what: 'the early socket gone' });
    const now = runtime.local.clients();
    expect(now).toMatchObject({ numClients: 1, numUsers: 1 });
    expect(now.users.has('ann') && !now.users.has('')).toBe(true);
    expect(now.numUsers).toBe(countUsers(io.of('/')).size);
  });
});
