import { describe, expect, it, onTestFinished } from 'vitest';
import type { ConnectionInfo, PresenceEvent, RoomSnapshot } from 'realtime-message-protocol';
import { RedisServer, connect, redisCli, request, room, startGateway, waitFor, type Client } from 'realtime-message-testing';
import type { PresenceRoom } from '../src/index.js';
import { client } from './server.js';

/** One connection as a comparable line: connId, user and state (keys sorted, whatever order storage kept them in). */
const line = (c: Pick<ConnectionInfo, 'connId' | 'userId' | 'state'>): string =>
  `${c.connId} ${c.userId} ${JSON.stringify(Object.fromEntries(Object.entries(c.state).sort(([a], [b]) => (a < b ? -1 : 1))))}`;
const lines = (conns: Iterable<Pick<ConnectionInfo, 'connId' | 'userId' | 'state'>>): string[] => [...conns].map(line).sort();
const sdkView = (r: PresenceRoom): string[] => lines(r.members().flatMap((m) => m.connections));

/**
 * A client without the SDK that follows docs/protocol.md to the letter:
 * buffer events until the join ack, apply only `seq` = last + 1, rejoin with
 * its `connId` on a gap, and on `presence:resync` drop its list and `seq` and
 * join again. It sends no heartbeats (the test ends well within the TTL).
 */
function rawFollower(socket: Client, roomId: string, userId: string) {
  let seq = 0;
  let conns = new Map<string, Pick<ConnectionInfo, 'connId' | 'userId' | 'state'>>();
  let connId: string | undefined;
  let buffer: PresenceEvent[] | undefined = [];
  const apply = (e: PresenceEvent): void => {
    if (e.seq <= seq) return;
    if (e.seq > seq + 1) return void join();
    seq = e.seq;
    if (e.type === 'leave') conns.delete(e.connId);
    else conns.set(e.connId, { connId: e.connId, userId: e.userId, state: e.state });
  };
  const join = async (): Promise<void> => {
    buffer = [];
    const ack = await request<{ ok: true; self: { connId: string }; snapshot: RoomSnapshot }>(socket, 'presence:join', { roomId, userId, ...(connId ? { connId } : {}) });
    if (!ack.ok) throw new Error(`raw join failed: ${JSON.stringify(ack)}`);
    connId = ack.self.connId;
    seq = ack.snapshot.seq;
    conns = new Map(ack.snapshot.connections.map((c) => [c.connId, c]));
    const held = buffer;
    buffer = undefined;
    for (const e of held.sort((a, b) => a.seq - b.seq)) apply(e);
  };
  socket.on('presence:event', (e) => {
    if (e.roomId !== roomId) return;
    if (buffer) buffer.push(e as PresenceEvent);
    else apply(e as PresenceEvent);
  });
  socket.on('presence:resync', (n) => {
    if (n.roomId !== roomId) return;
    seq = 0;
    void join();
  });
  return { join, view: () => lines(conns.values()), seq: () => seq };
}

describe('Redis restored from an older snapshot (issue 12)', () => {
  it('every client converges to the server member list and applies later events', { timeout: 60_000 }, async () => {
    const redis = await RedisServer.start();
    onTestFinished(() => redis.stop());
    const gw = await startGateway({ redisUrl: redis.url, serverOptions: { transports: ['websocket'], cors: { origin: true } } });
    const service = gw.runtime.service;
    const roomId = room();
    const until = <T>(check: () => T | Promise<T>, what: string) => waitFor(check, { what, timeoutMs: 15_000, intervalMs: 50 });

    const [ada, bob, cyd] = await Promise.all(['ada', 'bob', 'cyd'].map((userId) => client(gw.url).joinRoom(roomId, { userId, state: { n: 0 } })));
    const raw = rawFollower(await connect(gw.url), roomId, 'raw');
    await raw.join();
    const sdkRooms = [ada!, bob!, cyd!];
    const converged = async (rooms: PresenceRoom[], what: string): Promise<string[]> => {
      let server: string[] = [];
      const same = (view: string[]): boolean => JSON.stringify(view) === JSON.stringify(server);
      try {
        await until(async () => {
          server = lines((await service.snapshot(roomId)).connections);
          return rooms.every((r) => same(sdkView(r))) && same(raw.view());
        }, what);
      } catch (err) {
        // Say who diverged and how.
        const views = { server, raw: raw.view(), ...Object.fromEntries(rooms.map((r) => [`${r.connId} (${r.state}, seq ${r.seq})`, sdkView(r)])) };
        throw new Error(`${(err as Error).message}\n${JSON.stringify(views, null, 1)}`);
      }
      return server;
    };
    await converged(sdkRooms, 'the first four members everywhere');

    // The snapshot Redis will come back with.
    expect(await redisCli(redis.port, 'SAVE')).toBe('OK');

    // Changes after it: a join, a leave, state patches; seq moves on.
    const dan = await client(gw.url).joinRoom(roomId, { userId: 'dan' });
    await bob!.leave();
    await ada!.updateState({ n: 1, typing: true });
    await cyd!.updateState({ n: 2 });
    const live = [ada!, cyd!, dan];
    await converged(live, 'the changes after SAVE everywhere');
    const danConnId = dan.connId;

    // kill -9 and start again on the same port and dir: Redis loads the older snapshot.
    await redis.kill();
    await redis.launch();

    const server = await converged(live, 'every client equal to the server after the restore');
    // The older data came back: bob, who left after SAVE, is live again (until his TTL) ...
    expect(server.some((l) => l.includes(' bob '))).toBe(true);
    // ... and dan, who joined after it, was unknown: his rejoin got a fresh connection.
    expect(dan.connId).not.toBe(danConnId);
    expect(server.some((l) => l.startsWith(`${dan.connId} dan `))).toBe(true);
    expect(server.find((l) => l.includes(' ada '))).toContain('"typing":true');

    // Later events are applied, not dropped as already seen.
    await ada!.updateState({ n: 3 });
    const eve = await client(gw.url).joinRoom(roomId, { userId: 'eve' });
    const after = await converged([...live, eve], 'events after the restore everywhere');
    expect(after.some((l) => l.includes(' eve '))).toBe(true);
    expect(after.find((l) => l.includes(' ada '))).toContain('"n":3');
    expect(raw.seq()).toBe((await service.snapshot(roomId)).seq);
  });
});
