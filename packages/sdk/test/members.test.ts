import { describe, expect, it } from 'vitest';
import type { ConnectionInfo, ConnId, PresenceEvent, PresencePatchEvent, RoomId, RoomSnapshot, StatePatch, UserId } from 'realtime-message-protocol/core';
import {
  MAX_BUFFERED_EVENTS,
  applyPatch,
  emptyMemberList,
  membersOf,
  reduceMembers,
  snapshotOf,
  type MemberList,
  type MemberListEffect,
  type MemberListInput,
} from '../src/members.js';

const ROOM = 'room-1' as RoomId;
const SELF = 'c-self' as ConnId;

const conn = (connId: string, userId: string, state: ConnectionInfo['state'] = {}, ts = 1): ConnectionInfo => ({
  connId: connId as ConnId,
  userId: userId as UserId,
  state,
  epoch: 1,
  joinedAt: ts,
  lastSeen: ts,
});

const snapshot = (seq: number, connections: ConnectionInfo[]): RoomSnapshot => ({
  roomId: ROOM,
  seq,
  members: [],
  connections,
});

const join = (seq: number, connId: string, userId: string, state: ConnectionInfo['state'] = {}): PresenceEvent => ({
  type: 'join',
  roomId: ROOM,
  userId: userId as UserId,
  connId: connId as ConnId,
  state,
  ts: 100 + seq,
  epoch: 1,
  seq,
});
const update = (seq: number, connId: string, userId: string, state: ConnectionInfo['state']): PresenceEvent => ({
  type: 'update',
  roomId: ROOM,
  userId: userId as UserId,
  connId: connId as ConnId,
  state,
  ts: 100 + seq,
  epoch: 2,
  seq,
});
const patched = (seq: number, connId: string, userId: string, patch: StatePatch): PresencePatchEvent => ({
  type: 'update',
  roomId: ROOM,
  userId: userId as UserId,
  connId: connId as ConnId,
  patch,
  ts: 100 + seq,
  epoch: 2,
  seq,
});
const leave = (seq: number, connId: string, userId: string): PresenceEvent => ({
  type: 'leave',
  roomId: ROOM,
  userId: userId as UserId,
  connId: connId as ConnId,
  reason: 'leave',
  ts: 100 + seq,
  epoch: 1,
  seq,
});

/** Feeds inputs in order; returns the final list and every effect, in order. */
function run(inputs: MemberListInput[], from: MemberList = emptyMemberList): { list: MemberList; effects: MemberListEffect[] } {
  let list = from;
  const effects: MemberListEffect[] = [];
  for (const input of inputs) {
    const step = reduceMembers(list, input);
    list = step.state;
    effects.push(...step.effects);
  }
  return { list, effects };
}

/** A live list at `seq` with the given connections (joined through a snapshot). */
const live = (seq: number, connections: ConnectionInfo[]): MemberList =>
  run([{ type: 'await_snapshot' }, { type: 'snapshot', snapshot: snapshot(seq, connections), self: SELF }]).list;

const users = (list: MemberList) => membersOf(list).map((m) => [m.userId, m.connections.map((c) => c.connId)]);
const applied = (effects: MemberListEffect[]) => effects.flatMap((fx) => (fx.type === 'applied' ? [`${fx.event.type}:${fx.event.seq}`] : []));

describe('member list reducer', () => {
  it('applies a snapshot: distinct users sorted by userId, each with their connections', () => {
    const { list, effects } = run([
      { type: 'await_snapshot' },
      { type: 'snapshot', snapshot: snapshot(7, [conn('c-3', 'carol'), conn(SELF, 'ada'), conn('c-2', 'bob'), conn('c-4', 'ada')]), self: SELF },
    ]);
    expect(effects).toEqual([{ type: 'synced' }]);
    expect(list.phase).toBe('live');
    expect(list.seq).toBe(7);
    expect(users(list)).toEqual([
      ['ada', [SELF, 'c-4']],
      ['bob', ['c-2']],
      ['carol', ['c-3']],
    ]);
    expect(snapshotOf(list, ROOM)).toEqual({
      roomId: ROOM,
      seq: 7,
      members: [
        { userId: 'ada', connIds: [SELF, 'c-4'] },
        { userId: 'bob', connIds: ['c-2'] },
        { userId: 'carol', connIds: ['c-3'] },
      ],
      connections: [conn('c-3', 'carol'), conn(SELF, 'ada'), conn('c-2', 'bob'), conn('c-4', 'ada')],
    });
  });

  it('follows join, update and leave per connection of a user with several connections', () => {
    const start = live(10, [conn(SELF, 'ada')]);
    const a = run([{ type: 'event', event: join(11, 'b-1', 'bob', { tab: 1 }) }, { type: 'event', event: join(12, 'b-2', 'bob', { tab: 2 }) }], start);
    expect(users(a.list)).toEqual([
      ['ada', [SELF]],
      ['bob', ['b-1', 'b-2']],
    ]);
    const b = run([{ type: 'event', event: update(13, 'b-2', 'bob', { tab: 2, typing: true }) }], a.list);
    const b2 = b.list.conns.get('b-2' as ConnId)!;
    // An update keeps the connection's joinedAt and moves its lastSeen.
    expect(b2).toEqual({ connId: 'b-2', userId: 'bob', state: { tab: 2, typing: true }, epoch: 2, joinedAt: 112, lastSeen: 113 });
    expect(b.list.conns.get('b-1' as ConnId)!.state).toEqual({ tab: 1 });
    const c = run([{ type: 'event', event: leave(14, 'b-1', 'bob') }], b.list);
    expect(users(c.list)).toEqual([
      ['ada', [SELF]],
      ['bob', ['b-2']],
    ]);
    const d = run([{ type: 'event', event: leave(15, 'b-2', 'bob') }], c.list);
    expect(users(d.list)).toEqual([['ada', [SELF]]]);
    expect(d.list.seq).toBe(15);
    expect(applied([...a.effects, ...b.effects, ...c.effects, ...d.effects])).toEqual(['join:11', 'join:12', 'update:13', 'leave:14', 'leave:15']);
    // Inputs are values: the earlier lists did not change.
    expect(users(start)).toEqual([['ada', [SELF]]]);
    expect(start.seq).toBe(10);
  });

  it('an update of a connection it has not seen adds it (joinedAt from the event)', () => {
    const { list } = run([{ type: 'event', event: update(6, 'x-1', 'xena', { a: 1 }) }], live(5, []));
    expect(list.conns.get('x-1' as ConnId)).toMatchObject({ joinedAt: 106, lastSeen: 106, state: { a: 1 } });
  });

  it('ignores duplicates and events not above the snapshot seq', () => {
    const start = live(10, [conn(SELF, 'ada'), conn('b-1', 'bob')]);
    const { list, effects } = run(
      [
        { type: 'event', event: join(9, 'ghost', 'ghost') }, // older than the snapshot
        { type: 'event', event: leave(10, 'b-1', 'bob') }, // the snapshot has it already
        { type: 'event', event: join(11, 'c-1', 'carol') },
        { type: 'event', event: join(11, 'c-1', 'carol') }, // duplicate
        { type: 'event', event: leave(11, 'c-1', 'carol') }, // same seq, another change: not applied either
      ],
      start,
    );
    expect(applied(effects)).toEqual(['join:11']);
    expect(effects.some((fx) => fx.type === 'resync')).toBe(false);
    expect(list.seq).toBe(11);
    expect(users(list)).toEqual([
      ['ada', [SELF]],
      ['bob', ['b-1']],
      ['carol', ['c-1']],
    ]);
  });

  it('detects a seq gap: asks for a resync, applies nothing, and buffers until the next snapshot', () => {
    const start = live(10, [conn(SELF, 'ada')]);
    const gap = run([{ type: 'event', event: join(13, 'ghost', 'ghost') }], start);
    expect(gap.effects).toEqual([{ type: 'resync', reason: 'gap' }]);
    expect(gap.list.phase).toBe('syncing');
    expect(gap.list.seq).toBe(10);
    expect(users(gap.list)).toEqual([['ada', [SELF]]]);
    // The room sends a join (await_snapshot); the fresh snapshot replaces the list.
    const after = run(
      [
        { type: 'await_snapshot' },
        { type: 'event', event: join(14, 'd-1', 'dan') },
        { type: 'snapshot', snapshot: snapshot(13, [conn(SELF, 'ada'), conn('b-1', 'bob')]), self: SELF },
      ],
      gap.list,
    );
    expect(after.effects).toEqual([{ type: 'synced' }, { type: 'applied', event: join(14, 'd-1', 'dan') }]);
    expect(after.list.seq).toBe(14);
    expect(users(after.list)).toEqual([
      ['ada', [SELF]],
      ['bob', ['b-1']],
      ['dan', ['d-1']],
    ]);
  });

  it('buffers events that arrive before the join ack and applies them after the snapshot, in seq order', () => {
    const { list, effects } = run([
      { type: 'await_snapshot' },
      { type: 'event', event: update(6, 'b-1', 'bob', { typing: true }) },
      { type: 'event', event: join(4, 'old', 'old') }, // before the snapshot: skipped
      { type: 'event', event: join(7, 'c-1', 'carol') },
      { type: 'event', event: join(5, 'b-1', 'bob') }, // the snapshot has it already: skipped
      { type: 'snapshot', snapshot: snapshot(5, [conn(SELF, 'ada'), conn('b-1', 'bob', {}, 105)]), self: SELF },
    ]);
    expect(effects.map((fx) => (fx.type === 'applied' ? `${fx.event.type}:${fx.event.seq}` : fx.type))).toEqual(['synced', 'update:6', 'join:7']);
    expect(list.phase).toBe('live');
    expect(list.seq).toBe(7);
    expect(list.buffer).toEqual([]);
    expect(list.conns.get('b-1' as ConnId)!.state).toEqual({ typing: true });
    expect(users(list)).toEqual([
      ['ada', [SELF]],
      ['bob', ['b-1']],
      ['carol', ['c-1']],
    ]);
  });

  it('a gap inside the buffer asks for a resync and drops the rest of the buffer', () => {
    const { list, effects } = run([
      { type: 'await_snapshot' },
      { type: 'event', event: join(6, 'b-1', 'bob') },
      { type: 'event', event: join(8, 'c-1', 'carol') },
      { type: 'event', event: join(9, 'd-1', 'dan') },
      { type: 'snapshot', snapshot: snapshot(5, [conn(SELF, 'ada')]), self: SELF },
    ]);
    expect(effects).toEqual([{ type: 'synced' }, { type: 'applied', event: join(6, 'b-1', 'bob') }, { type: 'resync', reason: 'gap' }]);
    expect(list.phase).toBe('syncing');
    expect(list.buffer).toEqual([]);
  });

  it('a join request starts a new buffer: events buffered for an earlier request are dropped', () => {
    const { list } = run([{ type: 'await_snapshot' }, { type: 'event', event: join(6, 'b-1', 'bob') }, { type: 'await_snapshot' }]);
    expect(list.buffer).toEqual([]);
  });

  it('the leave of its own connection asks for a rejoin', () => {
    const { list, effects } = run([{ type: 'event', event: leave(4, SELF, 'ada') }], live(3, [conn(SELF, 'ada'), conn('b-1', 'bob')]));
    expect(effects).toEqual([
      { type: 'applied', event: leave(4, SELF, 'ada') },
      { type: 'resync', reason: 'self_left' },
    ]);
    expect(list.phase).toBe('syncing');
    expect(users(list)).toEqual([['bob', ['b-1']]]);
  });

  it('a buffer over its cap keeps the newest events; a snapshot that needed a dropped one resyncs', () => {
    const inputs: MemberListInput[] = [{ type: 'await_snapshot' }];
    for (let i = 1; i <= MAX_BUFFERED_EVENTS + 1; i++) inputs.push({ type: 'event', event: join(i, `c-${i}`, 'u') });
    const full = run(inputs).list;
    expect(full.buffer).toHaveLength(MAX_BUFFERED_EVENTS);
    expect(full.buffer[0]!.seq).toBe(2);
    // The snapshot has seq 1: nothing it needs was dropped.
    const fine = run([{ type: 'snapshot', snapshot: snapshot(1, []), self: SELF }], full);
    expect(fine.list.seq).toBe(MAX_BUFFERED_EVENTS + 1);
    expect(fine.effects.filter((fx) => fx.type === 'resync')).toEqual([]);
    // The snapshot has seq 0: seq 1 was dropped, so seq 2 is a gap.
    const gap = run([{ type: 'snapshot', snapshot: snapshot(0, []), self: SELF }], full);
    expect(gap.effects).toEqual([{ type: 'synced' }, { type: 'resync', reason: 'gap' }]);
    expect(gap.list.phase).toBe('syncing');
  });

  it('out of the room (before joining, after leaving) events are dropped', () => {
    expect(run([{ type: 'event', event: join(1, 'b-1', 'bob') }]).effects).toEqual([]);
    const { list, effects } = run([{ type: 'reset' }, { type: 'event', event: join(4, 'b-1', 'bob') }], live(3, [conn(SELF, 'ada')]));
    expect(effects).toEqual([]);
    expect(list.phase).toBe('off');
    expect(list.conns.size).toBe(0);
    expect(list.seq).toBe(3);
  });

  describe('updates in patch form (issue 12)', () => {
    const big = { doc: 'x'.repeat(100), mic: true, cursor: { x: 1 } };

    it('merge into the state the list holds; null deletes a key; the applied event carries the full state and the patch', () => {
      const { list, effects } = run([{ type: 'event', event: patched(4, 'c-2', 'bob', { mic: null, cursor: { x: 2 }, hand: 'up' }) }], live(3, [conn(SELF, 'ada'), conn('c-2', 'bob', big)]));
      const after = { doc: big.doc, cursor: { x: 2 }, hand: 'up' };
      expect(list.conns.get('c-2' as ConnId)).toEqual(expect.objectContaining({ state: after, epoch: 2, lastSeen: 104, joinedAt: 1 }));
      expect(list.seq).toBe(4);
      expect(effects).toEqual([{ type: 'applied', event: { ...patched(4, 'c-2', 'bob', { mic: null, cursor: { x: 2 }, hand: 'up' }), state: after } }]);
    });

    it('does not change the state objects it was given (inputs are values)', () => {
      const before = live(3, [conn('c-2', 'bob', { ...big })]);
      const held = before.conns.get('c-2' as ConnId)!.state;
      run([{ type: 'event', event: patched(4, 'c-2', 'bob', { mic: null }) }], before);
      expect(held).toEqual(big);
      expect(applyPatch({ a: 1, b: 2 }, { b: null, c: 3 })).toEqual({ a: 1, c: 3 });
    });

    it('buffered patches apply after the snapshot in seq order; a full-form update (older node) replaces the state', () => {
      const { list, effects } = run([
        { type: 'await_snapshot' },
        { type: 'event', event: patched(6, 'c-2', 'bob', { n: 2 }) },
        { type: 'event', event: patched(5, 'c-2', 'bob', { n: 1, mic: null }) },
        { type: 'event', event: patched(4, 'c-2', 'bob', { stale: true }) },
        { type: 'snapshot', snapshot: snapshot(4, [conn(SELF, 'ada'), conn('c-2', 'bob', big)]), self: SELF },
        { type: 'event', event: update(7, 'c-2', 'bob', { whole: true }) },
      ]);
      expect(applied(effects)).toEqual(['update:5', 'update:6', 'update:7']);
      expect(list.conns.get('c-2' as ConnId)?.state).toEqual({ whole: true });
    });

    it('a patch for a connection the list does not have cannot be applied: resync', () => {
      const { list, effects } = run([{ type: 'event', event: patched(4, 'c-9', 'zed', { a: 1 }) }], live(3, [conn(SELF, 'ada')]));
      expect(effects).toEqual([{ type: 'resync', reason: 'gap' }]);
      expect(list.phase).toBe('syncing');
    });
  });

  describe('an upToDate resume (issue 12)', () => {
    it('keeps the list and applies the buffered resume update', () => {
      const before = live(3, [conn(SELF, 'ada', { mic: true }), conn('c-2', 'bob')]);
      const { list, effects } = run([{ type: 'await_snapshot' }, { type: 'event', event: patched(4, SELF, 'ada', {}) }, { type: 'up_to_date', seq: 4, self: SELF }], before);
      expect(effects).toEqual([{ type: 'applied', event: { ...patched(4, SELF, 'ada', {}), state: { mic: true } } }]);
      expect(list.phase).toBe('live');
      expect(list.seq).toBe(4);
      expect(users(list)).toEqual([['ada', [SELF]], ['bob', ['c-2']]]);
      expect(list.conns.get(SELF)?.epoch).toBe(2);
    });

    it('the resume update may come after the ack', () => {
      const before = live(3, [conn(SELF, 'ada', { mic: true })]);
      const { list, effects } = run([{ type: 'await_snapshot' }, { type: 'up_to_date', seq: 4, self: SELF }, { type: 'event', event: patched(4, SELF, 'ada', { mic: false }) }], before);
      expect(applied(effects)).toEqual(['update:4']);
      expect(list.conns.get(SELF)?.state).toEqual({ mic: false });
    });

    it('an ack whose seq is not one above the list asks for a fresh snapshot', () => {
      const { list, effects } = run([{ type: 'await_snapshot' }, { type: 'up_to_date', seq: 9, self: SELF }], live(3, [conn(SELF, 'ada')]));
      expect(effects).toEqual([{ type: 'resync', reason: 'gap' }]);
      expect(list.phase).toBe('syncing');
    });
  });
});
