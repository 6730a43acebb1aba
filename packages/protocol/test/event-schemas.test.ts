import { describe, expect, it } from 'vitest';
import { PresenceEventSchema, PresencePatchEventSchema, PresenceWireEventSchema, RoomMessageSchema, RoomSnapshotSchema } from '../src/index.js';

const T = 1_795_396_794_402;
const base = { roomId: 'doc-1', userId: 'ada', connId: 'c1', ts: T, epoch: 1, seq: 1 };
const join = { type: 'join', ...base, state: { cursor: { x: 1, y: 2 }, name: 'Ada' } };
const update = { type: 'update', ...base, epoch: 2, seq: 2, state: { cursor: null } };
const leave = { type: 'leave', ...base, seq: 3, reason: 'timeout' };

/** An event as the Redis engine's Lua `publish` helper writes it (cjson escapes '/', state is concatenated JSON text). */
function luaEvent(kind: string, room: string, tail: string): string {
  return `{"type":"${kind}","roomId":${JSON.stringify(room).replace(/\//g, '\\/')},"userId":"ada","connId":"c1","ts":${T},"epoch":1,"seq":7${tail}}`;
}

function without<T extends object>(o: T, key: keyof T): Partial<T> {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

describe('PresenceEventSchema', () => {
  it.each([
    ['join', join],
    ['join with an empty state', { ...join, state: {} }],
    ['update', update],
    ['update with its patch', { ...update, patch: { cursor: null, typing: true } }],
    ['update with an empty patch (a resume that kept the state)', { ...update, patch: {} }],
    ['leave (leave)', { ...leave, reason: 'leave' }],
    ['leave (disconnect)', { ...leave, reason: 'disconnect' }],
    ['leave (timeout)', leave],
    ['ids at their limits', { ...join, roomId: 'r'.repeat(128), userId: 'Zimmer ü 🚀' }],
  ])('accepts %s', (_, event) => {
    expect(PresenceEventSchema.parse(event)).toEqual(event);
  });

  it.each([
    ['join', luaEvent('join', 'doc/1', ',"state":{"name":"Ada","tags":["a\\/b"],"n":1.5}')],
    ['update of a resumed join', luaEvent('update', 'doc/1', ',"state":{}')],
    ['update with its patch', luaEvent('update', 'doc/1', ',"state":{"a":1},"patch":{"a":1,"b":null}')],
    ['leave', luaEvent('leave', 'doc/1', ',"reason":"disconnect"')],
  ])('accepts the %s the Lua scripts publish', (_, text) => {
    const event = PresenceEventSchema.parse(JSON.parse(text));
    expect(event.roomId).toBe('doc/1');
  });

  it('accepts a merged state with more top-level keys than one payload may carry', () => {
    // maxStateKeys bounds each join or patch; patches add up.
    const state = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`k${i}`, i]));
    expect(PresenceEventSchema.safeParse({ ...update, state }).success).toBe(true);
  });

  it.each<[string, unknown]>([
    ['no object', null],
    ['a string', 'join'],
    ['an unknown type', { ...join, type: 'joined' }],
    ['no type', without(join, 'type')],
    ['a join without state', without(join, 'state')],
    ['an update without state', without(update, 'state')],
    ['a join with a reason', { ...join, reason: 'leave' }],
    ['a join with a patch', { ...join, patch: {} }],
    ['an update with a patch that is not an object', { ...update, patch: [1] }],
    ['an update with only a patch (that is the patch form)', { ...without(update, 'state'), patch: { a: 1 } }],
    ['an update with a reason', { ...update, reason: 'leave' }],
    ['a leave with a state', { ...leave, state: {} }],
    ['a leave without reason', without(leave, 'reason')],
    ["a leave with reason 'expired'", { ...leave, reason: 'expired' }],
    ['an unknown key', { ...join, extra: 1 }],
    ['a null state', { ...join, state: null }],
    ['an array state', { ...join, state: [1] }],
    ['a state with an empty key', { ...join, state: { '': 1 } }],
    ['a state with a forbidden key', { ...join, state: JSON.parse('{"a":{"__proto__":1}}') }],
    ['a state nested too deep', { ...join, state: { a: JSON.parse('['.repeat(17) + ']'.repeat(17)) } }],
    ['a non-finite number in state', { ...join, state: { n: Infinity } }],
    ['an empty roomId', { ...join, roomId: '' }],
    ['a roomId with a brace', { ...join, roomId: 'a{b}' }],
    ['a roomId that is not a string', { ...join, roomId: 1 }],
    ['a null roomId (what the Lua pattern gives on a mismatch)', { ...leave, roomId: null }],
    ['no userId', without(join, 'userId')],
    ['a userId of false (cjson.encode of a missing field)', { ...leave, userId: false }],
    ['a connId with a control character', { ...join, connId: 'c\n1' }],
    ['a connId that is too long', { ...join, connId: 'c'.repeat(129) }],
    ['ts 0', { ...join, ts: 0 }],
    ['a negative ts', { ...join, ts: -1 }],
    ['a fractional ts', { ...join, ts: 1.5 }],
    ['ts as a string', { ...join, ts: String(T) }],
    ['an unsafe ts', { ...join, ts: 2 ** 53 }],
    ['epoch 0', { ...join, epoch: 0 }],
    ['epoch as a string', { ...leave, epoch: '1' }],
    ['seq 0', { ...join, seq: 0 }],
    ['a fractional seq', { ...leave, seq: 2.5 }],
  ])('rejects %s', (_, event) => {
    expect(PresenceEventSchema.safeParse(event).success).toBe(false);
  });

  it('names the offending field', () => {
    const res = PresenceEventSchema.safeParse({ ...leave, reason: 'expired' });
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]?.path).toEqual(['reason']);
  });
});

describe('PresencePatchEventSchema and PresenceWireEventSchema', () => {
  const patchForm = { type: 'update', ...base, seq: 2, patch: { cursor: { x: 3 }, name: null } };

  it('accept an update in patch form; the wire schema accepts both forms', () => {
    expect(PresencePatchEventSchema.parse(patchForm)).toEqual(patchForm);
    for (const e of [patchForm, join, update, leave]) expect(PresenceWireEventSchema.parse(e)).toEqual(e);
  });

  it.each<[string, unknown]>([
    ['a patch form that also has the state', { ...patchForm, state: {} }],
    ['a join in patch form', { ...patchForm, type: 'join' }],
    ['a patch form without patch', without(patchForm, 'patch')],
    ['a patch with an empty key', { ...patchForm, patch: { '': 1 } }],
  ])('reject %s', (_, event) => {
    expect(PresencePatchEventSchema.safeParse(event).success).toBe(false);
  });
});

const conn = (connId: string, userId: string, epoch = 1) => ({ connId, userId, state: { a: 1 }, epoch, joinedAt: T, lastSeen: T + 5 });
const snapshot = {
  roomId: 'doc-1',
  seq: 9,
  members: [
    { userId: 'ada', connIds: ['c1', 'c3'] },
    { userId: 'bob', connIds: ['c2'] },
  ],
  connections: [conn('c1', 'ada'), conn('c2', 'bob', 4), conn('c3', 'ada')],
};

describe('RoomSnapshotSchema', () => {
  it('accepts a snapshot and an empty room at seq 0', () => {
    expect(RoomSnapshotSchema.parse(snapshot)).toEqual(snapshot);
    expect(RoomSnapshotSchema.parse({ roomId: 'r', seq: 0, members: [], connections: [] })).toEqual({ roomId: 'r', seq: 0, members: [], connections: [] });
  });

  it.each<[string, unknown]>([
    ['a negative seq', { ...snapshot, seq: -1 }],
    ['a fractional seq', { ...snapshot, seq: 1.5 }],
    ['a bad roomId', { ...snapshot, roomId: '{x}' }],
    ['an unknown key', { ...snapshot, extra: true }],
    ['no members', without(snapshot, 'members')],
    ['a connection without joinedAt', { ...snapshot, connections: [without(conn('c1', 'ada'), 'joinedAt'), conn('c2', 'bob'), conn('c3', 'ada')] }],
    ['a connection with epoch 0', { ...snapshot, connections: [conn('c1', 'ada', 0), conn('c2', 'bob'), conn('c3', 'ada')] }],
    ['a connection with an unknown key', { ...snapshot, connections: [{ ...conn('c1', 'ada'), deadline: T }, conn('c2', 'bob'), conn('c3', 'ada')] }],
    ['a connection with a bad state', { ...snapshot, connections: [{ ...conn('c1', 'ada'), state: 'x' }, conn('c2', 'bob'), conn('c3', 'ada')] }],
    ['a member with no connections', { ...snapshot, members: [...snapshot.members, { userId: 'cy', connIds: [] }] }],
    ['a member without connections listed', { ...snapshot, members: [...snapshot.members, { userId: 'cy', connIds: ['c9'] }] }],
    ['a user with connections missing from members', { ...snapshot, members: [snapshot.members[0]] }],
    ['a member listing another user\'s connection', { ...snapshot, members: [{ userId: 'ada', connIds: ['c1', 'c2'] }, { userId: 'bob', connIds: ['c3'] }] }],
    ['a member listed twice', { ...snapshot, members: [...snapshot.members, snapshot.members[1]] }],
    ['a connection listed twice', { ...snapshot, connections: [...snapshot.connections, conn('c1', 'ada')] }],
  ])('rejects %s', (_, snap) => {
    expect(RoomSnapshotSchema.safeParse(snap).success).toBe(false);
  });
});

describe('RoomMessageSchema', () => {
  const fromMember = { roomId: 'doc-1', event: 'chat:message', data: { text: 'hi' }, userId: 'ada', connId: 'c1', ts: T };
  const fromServer = { roomId: 'doc-1', event: 'doc.saved', data: null, ts: T };

  it.each([
    ['from a member', fromMember],
    ['from the server application', fromServer],
    ['with scalar data', { ...fromServer, data: 7 }],
  ])('accepts a message %s', (_, msg) => {
    expect(RoomMessageSchema.parse(msg)).toEqual(msg);
  });

  it.each<[string, unknown]>([
    ['no data', without(fromServer, 'data')],
    ['non-JSON data', { ...fromServer, data: { n: Infinity } }],
    ['a userId without connId', without(fromMember, 'connId')],
    ['a connId without userId', without(fromMember, 'userId')],
    ['a bad event name', { ...fromMember, event: ':bad' }],
    ['an event name that is too long', { ...fromMember, event: 'e'.repeat(65) }],
    ['an unknown key', { ...fromMember, seq: 1 }],
    ['ts 0', { ...fromMember, ts: 0 }],
    ['a bad roomId', { ...fromMember, roomId: '' }],
  ])('rejects %s', (_, msg) => {
    expect(RoomMessageSchema.safeParse(msg).success).toBe(false);
  });
});
