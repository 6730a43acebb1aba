import { describe, expect, it } from 'vitest';
import type { PresenceEvent } from 'realtime-message-protocol';
import { bridgePresenceToStatus } from '../src/app/status-bridge.js';
import type { LocalJoin } from '../src/core/presence/options.js';
import type { ConnectionChange } from '../src/core/status/service.js';

/** A presence feed driven by the test: `join` is this node's join, `leave` a leave event from any node. */
function fakePresence() {
  let joined: ((j: LocalJoin) => void) | undefined;
  let feed: ((e: PresenceEvent) => void) | undefined;
  return {
    presence: {
      subscribe: async (l: (e: PresenceEvent) => void) => {
        feed = l;
        return async () => undefined;
      },
      onJoined: (l: (j: LocalJoin) => void) => {
        joined = l;
        return () => undefined;
      },
    },
    join: (connId: string, epoch: number, roomId = 'r') => joined!({ roomId, userId: 'ada', connId, epoch }),
    leave: (connId: string, epoch: number, roomId = 'r') =>
      feed!({ type: 'leave', roomId, userId: 'ada', connId, epoch, ts: 0, seq: 1, reason: 'leave' } as PresenceEvent),
  };
}

describe('status bridge: the order of a connection’s changes', () => {
  it('applies each (epoch, live) once and never moves a connection back: (e, live) < (e, ended) < (e+1, live)', async () => {
    const p = fakePresence();
    const seen: string[] = [];
    const stop = await bridgePresenceToStatus(p.presence, { connection: async (c: ConnectionChange) => void seen.push(`${c.conn.split('\u001f')[1]}:${c.epoch}:${c.live ? 'live' : 'ended'}`) });
    p.join('c1', 1);
    p.join('c1', 1); // a repeat
    p.leave('c1', 1);
    p.leave('c1', 1); // every node reports the leave
    p.join('c1', 1); // late: behind its own leave
    p.join('c1', 2); // the next incarnation
    p.leave('c1', 1); // late: behind epoch 2
    p.leave('c1', 2);
    p.leave('c2', 7); // a leave before its join
    p.join('c2', 7);
    p.join('c1', 2, 'other'); // another room: a connection of its own
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['c1:1:live', 'c1:1:ended', 'c1:2:live', 'c1:2:ended', 'c2:7:ended', 'c1:2:live']);
    await stop();
  });
});
