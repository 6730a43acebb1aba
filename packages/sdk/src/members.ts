import type { ConnectionInfo, ConnId, PresenceEvent, PresenceState, PresenceWireEvent, RoomId, RoomSnapshot, StatePatch, UserId } from 'realtime-message-protocol/core';

/** A distinct user of the room with all of their live connections. */
export interface Member {
  userId: UserId;
  connections: ConnectionInfo[];
}

/**
 * - `off`: not in the room; events are dropped.
 * - `syncing`: a snapshot is on its way (join sent, or the connection dropped); events are buffered.
 * - `live`: the list follows events.
 */
export type MemberListPhase = 'off' | 'syncing' | 'live';

/** The member list of one room as a value: a snapshot plus the events after it. */
export interface MemberList {
  readonly phase: MemberListPhase;
  /** The `seq` of the last applied change. */
  readonly seq: number;
  /** Live connections by connId, in the order they were first seen. */
  readonly conns: ReadonlyMap<ConnId, ConnectionInfo>;
  /** Events that arrived while syncing, applied after the snapshot (the newest {@link MAX_BUFFERED_EVENTS}). */
  readonly buffer: readonly PresenceWireEvent[];
  /** This client's own connection: its `leave` means the room must join again. */
  readonly self: ConnId | undefined;
}

export type MemberListInput =
  /** A join request is about to be sent, or the connection dropped: buffer from now on. */
  | { type: 'await_snapshot' }
  /** The join ack: replace the list, then apply what was buffered. */
  | { type: 'snapshot'; snapshot: RoomSnapshot; self: ConnId }
  /**
   * The join ack of a resume that sent `knownSeq` (the list's `seq`) and was
   * told `upToDate`: keep the list and apply what was buffered (the resume's
   * own update has `seq`, one above the list's).
   */
  | { type: 'up_to_date'; seq: number; self: ConnId }
  /** A `presence:event` of this room, in either wire form (an update may carry only its patch). */
  | { type: 'event'; event: PresenceWireEvent }
  /** Out of the room (left, stopped, first join failed). */
  | { type: 'reset' };

export type MemberListEffect =
  /** The list was replaced from a snapshot. */
  | { type: 'synced' }
  /** An event changed the list; an update is given in the full form (its `state` after the patch). */
  | { type: 'applied'; event: PresenceEvent }
  /**
   * The list cannot be trusted (a `seq` gap) or this client's own connection
   * ended: join again for a fresh snapshot. The list is already syncing when
   * this is returned.
   */
  | { type: 'resync'; reason: 'gap' | 'self_left' };

export interface MemberListStep {
  state: MemberList;
  effects: readonly MemberListEffect[];
}

/**
 * Most events kept while waiting for a join ack. An ack normally follows its
 * request within a round trip, so this only binds a room whose rejoin keeps
 * failing while events still arrive. The oldest are dropped: if the snapshot
 * needed one of them, the next kept event is a `seq` gap and the list resyncs.
 */
export const MAX_BUFFERED_EVENTS = 1_000;

export const emptyMemberList: MemberList = { phase: 'off', seq: 0, conns: new Map(), buffer: [], self: undefined };

const none: readonly MemberListEffect[] = [];

/**
 * The member-list state machine, with no timers and no sockets: the room
 * feeds it inputs and carries out the effects. Inputs are never mutated;
 * each change copies the connection map (O(connections), as `members()`
 * already is for every render).
 */
export function reduceMembers(state: MemberList, input: MemberListInput): MemberListStep {
  switch (input.type) {
    case 'await_snapshot':
      return { state: { ...state, phase: 'syncing', buffer: [] }, effects: none };
    case 'reset':
      return { state: { ...state, phase: 'off', conns: new Map(), buffer: [] }, effects: none };
    case 'snapshot':
      return applySnapshot(state, input.snapshot, input.self);
    case 'up_to_date':
      if (input.seq !== state.seq + 1) {
        // The server's room is not the list's plus the resume: only a fresh snapshot helps.
        return { state: { ...state, phase: 'syncing', buffer: [] }, effects: [{ type: 'resync', reason: 'gap' }] };
      }
      return replay({ ...state, phase: 'live', buffer: [], self: input.self }, state.buffer, []);
    case 'event':
      switch (state.phase) {
        case 'off':
          return { state, effects: none };
        case 'syncing':
          return { state: { ...state, buffer: [...state.buffer.slice(1 - MAX_BUFFERED_EVENTS), input.event] }, effects: none };
        case 'live':
          return applyEvent(state, input.event);
      }
  }
}

function applySnapshot(state: MemberList, snapshot: RoomSnapshot, self: ConnId): MemberListStep {
  const next: MemberList = { phase: 'live', seq: snapshot.seq, conns: new Map(snapshot.connections.map((c) => [c.connId, c])), buffer: [], self };
  return replay(next, state.buffer, [{ type: 'synced' }]);
}

/** Applies events that arrived before the ack, in seq order: those the list already has are skipped. */
function replay(list: MemberList, buffer: readonly PresenceWireEvent[], effects: MemberListEffect[]): MemberListStep {
  let next = list;
  for (const e of [...buffer].sort((a, b) => a.seq - b.seq)) {
    const step = applyEvent(next, e);
    next = step.state;
    effects.push(...step.effects);
    // A resync asks for a new snapshot, which makes the rest of the buffer moot.
    if (next.phase !== 'live') break;
  }
  return { state: next, effects };
}

/** A state with a patch applied: keys set to their value, `null` deletes the key. */
export function applyPatch(state: PresenceState, patch: StatePatch): PresenceState {
  const out: PresenceState = { ...state };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function applyEvent(state: MemberList, wire: PresenceWireEvent): MemberListStep {
  // Already in the list (a duplicate, or older than the snapshot).
  if (wire.seq <= state.seq) return { state, effects: none };
  const gap: MemberListStep = { state: { ...state, phase: 'syncing', buffer: [] }, effects: [{ type: 'resync', reason: 'gap' }] };
  // A change was missed: the list would be wrong until a fresh snapshot.
  if (wire.seq > state.seq + 1) return gap;
  let e: PresenceEvent;
  if (wire.type === 'update' && !('state' in wire)) {
    // Patch form: the connection's state is the one in the list, changed by the patch.
    const base = state.conns.get(wire.connId);
    if (!base) return gap; // an update of a connection the list does not have: it cannot be trusted
    e = { ...wire, state: applyPatch(base.state, wire.patch) };
  } else {
    e = wire;
  }
  const conns = new Map(state.conns);
  if (e.type === 'leave') {
    conns.delete(e.connId);
  } else {
    conns.set(e.connId, {
      connId: e.connId,
      userId: e.userId,
      state: e.state,
      epoch: e.epoch,
      joinedAt: e.type === 'join' ? e.ts : (state.conns.get(e.connId)?.joinedAt ?? e.ts),
      lastSeen: e.ts,
    });
  }
  const effects: MemberListEffect[] = [{ type: 'applied', event: e }];
  if (e.type === 'leave' && e.connId === state.self) {
    // Our own connection ended (e.g. it timed out while this tab slept): join again.
    effects.push({ type: 'resync', reason: 'self_left' });
    return { state: { ...state, seq: e.seq, conns, phase: 'syncing', buffer: [] }, effects };
  }
  return { state: { ...state, seq: e.seq, conns }, effects };
}

/** Distinct users with their live connections, sorted by userId. */
export function membersOf(list: MemberList): Member[] {
  const byUser = new Map<UserId, ConnectionInfo[]>();
  for (const c of list.conns.values()) {
    const conns = byUser.get(c.userId);
    if (conns) conns.push(c);
    else byUser.set(c.userId, [c]);
  }
  return [...byUser.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([userId, connections]) => ({ userId, connections }));
}

/** The list as a `RoomSnapshot` (what `join()` resolves with when already joined). */
export function snapshotOf(list: MemberList, roomId: RoomId): RoomSnapshot {
  return {
    roomId,
    seq: list.seq,
    members: membersOf(list).map((m) => ({ userId: m.userId, connIds: m.connections.map((c) => c.connId) })),
    connections: [...list.conns.values()],
  };
}
