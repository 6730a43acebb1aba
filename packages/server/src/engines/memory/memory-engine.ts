import type { ConnId, ConnectionInfo, LeaveReason, PresenceEvent, PresenceState, RoomId, RoomMessage, RoomSnapshot, StatePatch, UserId } from 'realtime-message-protocol';
import { utf8Length } from 'realtime-message-protocol';
import {
  encodedStateBytes,
  type DisconnectCommand,
  type HeartbeatCommand,
  type JoinCommand,
  type JoinOutcome,
  type LeaveCommand,
  type PresenceEngine,
  type ReapCommand,
  type ReapResult,
  type RoomFeedItem,
  type WriteOutcome,
} from '../../core/presence/engine.js';
import { buildSnapshot } from '../../core/presence/snapshot.js';
import { MinHeap } from './min-heap.js';

interface Conn {
  connId: ConnId;
  userId: UserId;
  epoch: number;
  joinedAt: number;
  lastSeen: number;
  /** Live: when it stops being present. Gone: when its epoch record is forgotten. */
  deadline: number;
  /** Reason of the leave when `deadline` passes while live. */
  expiryReason: Extract<LeaveReason, 'timeout' | 'disconnect'>;
  disconnected: boolean;
  gone: boolean;
  /** State as key -> JSON text, so that sizes match the Redis engine byte for byte. */
  state: Map<string, string>;
  /** Time of this connection's pending heap entry (one per connection, re-armed lazily). */
  armedAt: number;
}

interface Room {
  seq: number;
  conns: Map<ConnId, Conn>;
  /** Live connections, so snapshots never walk epoch records. */
  live: Set<ConnId>;
}

interface Timer {
  at: number;
  room: RoomId;
  connId: ConnId;
}

function stateObject(state: Map<string, string>): PresenceState {
  const out: PresenceState = {};
  for (const [k, v] of state) out[k] = JSON.parse(v) as PresenceState[string];
  return out;
}

/** What turns `before` into `after`: changed or new keys with their value, `null` for removed keys. */
function statePatch(before: Map<string, string>, after: Map<string, string>): StatePatch {
  const out: StatePatch = {};
  for (const [k, v] of after) if (before.get(k) !== v) out[k] = JSON.parse(v) as StatePatch[string];
  for (const k of before.keys()) if (!after.has(k)) out[k] = null;
  return out;
}

function encodeState(state: PresenceState | undefined): Map<string, string> {
  const m = new Map<string, string>();
  if (state) for (const [k, v] of Object.entries(state)) m.set(k, JSON.stringify(v));
  return m;
}

/**
 * The embedded engine: one process, no external service. Every operation is
 * O(1) apart from the state patch itself and snapshots (O(room)); expiry uses
 * one heap entry per connection that is re-armed lazily, so heartbeats do no
 * heap work at all. Expired connections and their epoch records are removed,
 * so memory is bounded by live connections plus the lookback window.
 */
export class MemoryEngine implements PresenceEngine {
  readonly kind = 'memory';
  private readonly rooms = new Map<RoomId, Room>();
  private readonly timers = new MinHeap<Timer>();
  private readonly listeners = new Map<RoomId, Set<(item: RoomFeedItem) => void>>();
  private readonly outbox: Array<[RoomId, RoomFeedItem]> = [];
  /** Listeners of every room's presence events (one per subscribing node). */
  private readonly allListeners = new Set<(event: PresenceEvent) => void>();
  private flushing = false;

  /** Number of rooms held (live or with epoch records). For tests and metrics. */
  get roomCount(): number {
    return this.rooms.size;
  }

  // -- events -----------------------------------------------------------

  /** Queues an event; listeners run in a microtask, in order, never re-entrantly. */
  private emit(roomId: RoomId, event: RoomFeedItem): void {
    this.outbox.push([roomId, event]);
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      // Index loop: listeners may cause more events, which are appended and delivered in order.
      for (let i = 0; i < this.outbox.length; i++) {
        const [room, ev] = this.outbox[i]!;
        const set = this.listeners.get(room);
        if (set) for (const l of [...set]) l(ev);
        if (ev.type !== 'message') for (const l of [...this.allListeners]) l(ev);
      }
      this.outbox.length = 0;
      this.flushing = false;
    });
  }

  private arm(room: RoomId, c: Conn): void {
    if (c.deadline < c.armedAt) {
      c.armedAt = c.deadline;
      this.timers.push({ at: c.deadline, room, connId: c.connId });
    }
  }

  private room(roomId: RoomId): Room {
    let r = this.rooms.get(roomId);
    if (!r) {
      r = { seq: 0, conns: new Map(), live: new Set() };
      this.rooms.set(roomId, r);
    }
    return r;
  }

  /** Ends a live connection: event, then keep an epoch record until now + lookback. */
  private end(roomId: RoomId, r: Room, c: Conn, reason: LeaveReason, now: number, lookbackMs: number): void {
    c.gone = true;
    c.disconnected = false;
    c.state = new Map();
    c.deadline = now + lookbackMs;
    r.live.delete(c.connId);
    this.arm(roomId, c);
    r.seq++;
    this.emit(roomId, { type: 'leave', roomId, userId: c.userId, connId: c.connId, ts: now, epoch: c.epoch, seq: r.seq, reason });
  }

  private snapshotOf(roomId: RoomId, r: Room | undefined, now: number): RoomSnapshot {
    const conns: ConnectionInfo[] = [];
    if (r) {
      for (const id of r.live) {
        const c = r.conns.get(id)!;
        // Not yet reaped but past its deadline: never reported present.
        if (c.deadline <= now) continue;
        conns.push({ connId: c.connId, userId: c.userId, state: stateObject(c.state), epoch: c.epoch, joinedAt: c.joinedAt, lastSeen: c.lastSeen });
      }
    }
    return buildSnapshot(roomId, r?.seq ?? 0, conns);
  }

  /** The live connection a write targets, after fencing; or the failure. */
  private writable(roomId: RoomId, connId: ConnId, epoch: number, now: number, lookbackMs: number):
    | { ok: true; r: Room; c: Conn }
    | Exclude<WriteOutcome, { ok: true }> {
    const r = this.rooms.get(roomId);
    const c = r?.conns.get(connId);
    if (!r || !c) return { ok: false, code: 'not_joined' };
    if (epoch !== c.epoch) return { ok: false, code: 'stale_epoch' };
    if (c.gone) return { ok: false, code: 'not_joined' };
    if (c.deadline <= now) {
      // Expired but not reaped yet: expire it now, exactly once.
      this.end(roomId, r, c, c.expiryReason, now, lookbackMs);
      return { ok: false, code: 'not_joined' };
    }
    return { ok: true, r, c };
  }

  // -- commands ---------------------------------------------------------

  async join(cmd: JoinCommand): Promise<JoinOutcome> {
    const { roomId, userId, now, ttlMs, lookbackMs } = cmd;
    const r = this.room(roomId);
    const prev = cmd.resumeConnId ? r.conns.get(cmd.resumeConnId) : undefined;
    if (prev && prev.userId !== userId) {
      if (r.conns.size === 0) this.rooms.delete(roomId);
      return { ok: false, code: 'forbidden' };
    }
    if (prev && !prev.gone && prev.deadline > now) {
      prev.epoch++;
      prev.lastSeen = now;
      prev.disconnected = false;
      prev.expiryReason = 'timeout';
      prev.deadline = now + ttlMs;
      const before = prev.state;
      if (cmd.state !== undefined) prev.state = encodeState(cmd.state);
      r.seq++;
      const patch = statePatch(before, prev.state);
      this.emit(roomId, { type: 'update', roomId, userId, connId: prev.connId, ts: now, epoch: prev.epoch, seq: r.seq, state: stateObject(prev.state), patch });
      if (cmd.knownSeq !== undefined && r.seq === cmd.knownSeq + 1) {
        // The client holds the room as of knownSeq and gets this update: no snapshot to build.
        return { ok: true, connId: prev.connId, epoch: prev.epoch, mode: 'resumed', upToDate: true, seq: r.seq };
      }
      return { ok: true, connId: prev.connId, epoch: prev.epoch, mode: 'resumed', snapshot: this.snapshotOf(roomId, r, now) };
    }
    if (prev && !prev.gone) this.end(roomId, r, prev, prev.expiryReason, now, lookbackMs);
    const conn: Conn = {
      connId: prev?.connId ?? cmd.freshConnId,
      userId,
      epoch: prev ? prev.epoch + 1 : 1,
      joinedAt: now,
      lastSeen: now,
      deadline: now + ttlMs,
      expiryReason: 'timeout',
      disconnected: false,
      gone: false,
      state: encodeState(cmd.state),
      armedAt: prev?.armedAt ?? Infinity,
    };
    r.conns.set(conn.connId, conn);
    r.live.add(conn.connId);
    this.arm(roomId, conn);
    r.seq++;
    this.emit(roomId, { type: 'join', roomId, userId, connId: conn.connId, ts: now, epoch: conn.epoch, seq: r.seq, state: stateObject(conn.state) });
    return { ok: true, connId: conn.connId, epoch: conn.epoch, mode: prev ? 'rejoined' : 'new', snapshot: this.snapshotOf(roomId, r, now) };
  }

  async heartbeat(cmd: HeartbeatCommand): Promise<WriteOutcome> {
    const w = this.writable(cmd.roomId, cmd.connId, cmd.epoch, cmd.now, cmd.lookbackMs);
    if (!w.ok) return w;
    const { r, c } = w;
    if (c.disconnected) return { ok: false, code: 'not_joined', message: `connection ${c.connId} was disconnected; join again with its connId to resume` };
    if (cmd.patch && cmd.patch.length > 0) {
      const next = new Map(c.state);
      for (const [k, v] of cmd.patch) {
        if (v === null) next.delete(k);
        else next.set(k, v);
      }
      const size = encodedStateBytes(next, utf8Length);
      if (size > cmd.maxStateBytes) {
        return { ok: false, code: 'payload_too_large', message: `state after the patch would be ${size} bytes; the limit is ${cmd.maxStateBytes}` };
      }
      c.state = next;
    }
    c.lastSeen = cmd.now;
    c.deadline = cmd.now + cmd.ttlMs;
    if (cmd.patch && cmd.patch.length > 0) {
      r.seq++;
      const patch: StatePatch = {};
      for (const [k, v] of cmd.patch) patch[k] = v === null ? null : (JSON.parse(v) as StatePatch[string]);
      this.emit(cmd.roomId, { type: 'update', roomId: cmd.roomId, userId: c.userId, connId: c.connId, ts: cmd.now, epoch: c.epoch, seq: r.seq, state: stateObject(c.state), patch });
    }
    return { ok: true, epoch: c.epoch };
  }

  async leave(cmd: LeaveCommand): Promise<WriteOutcome> {
    const r = this.rooms.get(cmd.roomId);
    const c = r?.conns.get(cmd.connId);
    // Leaving an already-left connection with its own epoch is a no-op success.
    if (c && c.gone && c.epoch === cmd.epoch) return { ok: true, epoch: c.epoch };
    const w = this.writable(cmd.roomId, cmd.connId, cmd.epoch, cmd.now, cmd.lookbackMs);
    if (!w.ok) return w;
    this.end(cmd.roomId, w.r, w.c, cmd.reason, cmd.now, cmd.lookbackMs);
    return { ok: true, epoch: w.c.epoch };
  }

  async disconnect(cmd: DisconnectCommand): Promise<WriteOutcome> {
    const w = this.writable(cmd.roomId, cmd.connId, cmd.epoch, cmd.now, cmd.lookbackMs);
    if (!w.ok) return w;
    const { c } = w;
    if (!c.disconnected) {
      c.disconnected = true;
      const graceEnd = cmd.now + cmd.graceMs;
      if (graceEnd < c.deadline) {
        c.deadline = graceEnd;
        c.expiryReason = 'disconnect';
        this.arm(cmd.roomId, c);
      }
    }
    return { ok: true, epoch: c.epoch };
  }

  async snapshot(roomId: RoomId, now: number): Promise<RoomSnapshot> {
    return this.snapshotOf(roomId, this.rooms.get(roomId), now);
  }

  async reap(cmd: ReapCommand): Promise<ReapResult> {
    let leaves = 0;
    let visited = 0;
    for (let t = this.timers.peek(); t && t.at <= cmd.now && leaves < cmd.limit; t = this.timers.peek()) {
      this.timers.pop();
      visited++;
      const r = this.rooms.get(t.room);
      const c = r?.conns.get(t.connId);
      if (!r || !c || c.armedAt !== t.at) continue; // superseded entry
      c.armedAt = Infinity;
      if (c.deadline > cmd.now) {
        this.arm(t.room, c); // heartbeats moved the deadline: re-arm once
      } else if (!c.gone) {
        this.end(t.room, r, c, c.expiryReason, cmd.now, cmd.lookbackMs);
        leaves++;
      } else {
        r.conns.delete(c.connId); // epoch record outlived the lookback
        if (r.conns.size === 0) this.rooms.delete(t.room);
      }
    }
    const next = this.timers.peek();
    const due = next !== undefined && next.at <= cmd.now;
    return {
      leaves,
      visitedRooms: visited,
      visitedSlots: 0,
      more: due,
      // Superseded entries count too: an upper bound, capped so a metric read stays cheap.
      backlog: due ? this.timers.countUpTo(cmd.now, 100_000) : 0,
      lagMs: due ? cmd.now - next.at : 0,
    };
  }

  /**
   * One listener per subscribing node. Several services over one memory
   * engine stand for several nodes over one storage (tests do this), so a
   * room may have one listener per node; each node's Hub subscribes once.
   */
  async subscribe(roomId: RoomId, listener: (item: RoomFeedItem) => void): Promise<() => Promise<void>> {
    let set = this.listeners.get(roomId);
    if (!set) this.listeners.set(roomId, (set = new Set()));
    set.add(listener);
    return async () => {
      if (set.delete(listener) && set.size === 0 && this.listeners.get(roomId) === set) this.listeners.delete(roomId);
    };
  }

  async subscribeAll(listener: (event: PresenceEvent) => void): Promise<() => Promise<void>> {
    this.allListeners.add(listener);
    return async () => void this.allListeners.delete(listener);
  }

  async publish(roomId: RoomId, message: RoomMessage): Promise<void> {
    this.emit(roomId, { type: 'message', message });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.listeners.clear();
    this.allListeners.clear();
  }
}
