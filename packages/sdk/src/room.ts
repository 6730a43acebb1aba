import {
  EVENTS,
  type ConnId,
  type HeartbeatAck,
  type JoinAck,
  type JsonValue,
  type LeaveAck,
  type MessageAck,
  type PresenceEvent,
  type PresenceState,
  type RoomId,
  type RoomMessage,
  type RoomSnapshot,
  type StatePatch,
} from 'realtime-message-protocol/core';
import { Emitter } from './emitter.js';
import { RealtimeError } from './errors.js';
import type { RoomHost, RoomLink } from './host.js';
import { emptyMemberList, membersOf, reduceMembers, snapshotOf, type Member, type MemberList, type MemberListEffect, type MemberListInput } from './members.js';
import { heartbeatErrorAction } from './policy.js';
import type { RoomChangeReason, RoomState, StateChange } from './state.js';

import { RESERVED, type RoomOptions } from './room-types.js';

export type { RoomOptions, JoinEvent, UpdateEvent, LeaveEvent, MessageMeta, RoomEvents } from './room-types.js';
import type { MessageMeta, RoomEvents } from './room-types.js';

/** Heartbeat period when neither the option nor the server's TTL says otherwise. */
const DEFAULT_HEARTBEAT_MS = 10_000;

/** A failed heartbeat is tried again after at most this long (sooner with a short heartbeat interval). */
const RETRY_MS = 1_000;

type Waiter = { resolve: () => void; reject: (e: Error) => void };

function merge(target: PresenceState, patch: StatePatch): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
}

/**
 * Presence in one room: joins, heartbeats (carrying the latest epoch),
 * coalesced state updates, a live member list kept from the snapshot plus
 * events (resynced on a `seq` gap), automatic resume after reconnects, and
 * custom events. Created by {@link RealtimeClient.createPresenceRoom} or
 * {@link RealtimeClient.joinRoom}.
 *
 * @example
 * const room = await client.joinRoom('doc-1', { userId: 'ada', state: { typing: false } });
 * room.on('sync', (members) => render(members));
 * await room.updateState({ typing: true });
 */
export class PresenceRoom {
  private readonly bus = new Emitter<RoomEvents>();
  /** The room's state: `idle`, `joining`, `joined`, `rejoining`, `left`. */
  readonly state: RoomState = 'idle';
  /** This connection's id once joined (kept across reconnects to resume). */
  readonly connId: ConnId | undefined;
  /** The epoch this client holds; every write carries it. */
  readonly epoch: number = 0;
  private list: MemberList = emptyMemberList;
  private readonly own: PresenceState;
  /** Heartbeat period: the option, or a third of the server's TTL (at most 10 s) once the join ack told it. */
  private heartbeatMs: number;
  private readonly patchDelayMs: number;
  private joining: Promise<RoomSnapshot> | undefined;
  /** A join that was under way when the server asked for a resync: join again after it. */
  private resyncAfter: Promise<RoomSnapshot> | undefined;
  private pending: StatePatch | undefined;
  private waiters: Waiter[] = [];
  private inFlight = false;
  private heartbeatTimer: unknown;
  private patchTimer: unknown;
  private readonly handlers = new Map<string, Set<(data: JsonValue, meta: MessageMeta) => void>>();
  private readonly link: RoomLink;

  private constructor(
    private readonly host: RoomHost,
    /** The room's id. */
    readonly roomId: string,
    private readonly options: RoomOptions,
  ) {
    this.own = { ...(options.state ?? {}) };
    this.heartbeatMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
    this.patchDelayMs = options.patchDelayMs ?? 50;
    this.link = {
      event: (e) => this.apply({ type: 'event', event: e }),
      message: (m) => this.onMessage(m),
      resync: () => this.onResync(),
      disconnected: () => {
        // The transport dropped: pause heartbeats until the client reconnects.
        if (this.state !== 'joined') return;
        this.stopHeartbeat();
        this.apply({ type: 'await_snapshot' });
        this.setState('rejoining', 'disconnect');
      },
      // Connected again: resume this connection (no flicker for others within the grace).
      connected: () => {
        if (this.state === 'rejoining' && !this.joining) void this.doJoin('rejoining', 'disconnect').catch(() => {});
      },
      close: () => this.leaveBecause('shutdown'),
      dispose: () => this.dispose(),
    };
  }

  /**
   * @internal the client's factory: the room, and the link through which the client drives it.
   */
  static _create(host: RoomHost, roomId: string, options: RoomOptions): [PresenceRoom, RoomLink] {
    const room = new PresenceRoom(host, roomId, options);
    return [room, room.link];
  }

  /** The `seq` of the last applied change. */
  get seq(): number {
    return this.list.seq;
  }

  /** The room's public fields are read-only to users, not to the room. */
  private get w(): { -readonly [K in 'state' | 'connId' | 'epoch']: PresenceRoom[K] } {
    return this;
  }

  /** The one place that changes the room state. */
  private setState(next: RoomState, reason: RoomChangeReason): void {
    if (next === this.state) return;
    const change = { newState: next, oldState: this.state, reason };
    this.w.state = next;
    this.bus.emit('state', change);
  }

  /** Distinct users with their live connections, sorted by userId. */
  members(): Member[] {
    return membersOf(this.list);
  }

  /** This connection's own state as the client knows it. */
  get ownState(): PresenceState {
    return { ...this.own };
  }

  // -- member list ------------------------------------------------------------

  private apply(input: MemberListInput): void {
    this.run(this.reduce(input));
  }

  private reduce(input: MemberListInput): readonly MemberListEffect[] {
    const step = reduceMembers(this.list, input);
    this.list = step.state;
    return step.effects;
  }

  private run(effects: readonly MemberListEffect[]): void {
    for (const fx of effects) {
      switch (fx.type) {
        case 'synced':
          this.bus.emit('sync', this.members());
          break;
        case 'applied':
          // join, update or leave: the listener's type follows the event's own.
          this.bus.emit(fx.event.type, fx.event as never);
          break;
        case 'resync':
          void this.doJoin('rejoining', fx.reason === 'self_left' ? 'expired' : 'resync').catch(() => {});
          break;
      }
    }
  }

  /**
   * The server's storage was reset (`presence:resync`): `seq`s may have gone
   * back, so the list and its `seq` are dropped and the room joins again (a
   * resume); the snapshot's `seq` is taken as it is, even when lower. A join
   * already under way may carry a snapshot from before the reset, so the room
   * joins once more after it.
   */
  private onResync(): void {
    if (this.state === 'joined') {
      this.list = { ...this.list, seq: 0 };
      void this.doJoin('rejoining', 'resync').catch(() => {});
    } else if (this.joining) {
      const after = this.joining;
      this.resyncAfter = after;
      void after.then(
        () => {
          if (this.resyncAfter === after && this.state === 'joined') this.onResync();
        },
        () => {},
      );
    }
    // idle, left, or rejoining while disconnected: the next join takes a fresh snapshot anyway.
  }

  // -- join / leave -------------------------------------------------------

  /** Joins the room; resolves with the snapshot, or rejects with a RealtimeError carrying the server's code. */
  join(): Promise<RoomSnapshot> {
    if (this.state === 'left') return Promise.reject(new RealtimeError('closed', 'this room has left; create a new one'));
    if (this.joining) return this.joining;
    if (this.state === 'joined') return Promise.resolve(snapshotOf(this.list, this.roomId as RoomId));
    return this.doJoin('joining', 'join');
  }

  private doJoin(mode: 'joining' | 'rejoining', reason: RoomChangeReason): Promise<RoomSnapshot> {
    this.stopHeartbeat();
    this.setState(mode, reason);
    this.apply({ type: 'await_snapshot' });
    const run = async (): Promise<RoomSnapshot> => {
      await this.host.connect();
      // A list that holds this connection is the room as of its seq: offer it, so
      // that a resume in a room where nothing else happened needs no snapshot.
      const holds = this.connId !== undefined && this.list.self === this.connId && this.list.conns.has(this.connId);
      const ack = await this.host.request<JoinAck>(EVENTS.join, {
        roomId: this.roomId,
        userId: this.options.userId,
        state: this.own,
        // Updates carry only the change; the list applies it (members.ts).
        updates: 'patch',
        ...(this.connId ? { connId: this.connId } : {}),
        ...(holds ? { knownSeq: this.list.seq } : {}),
      });
      if (!ack.ok) throw new RealtimeError(ack.error.code, ack.error.message);
      if (this.state === 'left') throw new RealtimeError('closed', 'the room left while joining');
      this.w.connId = ack.self.connId;
      this.w.epoch = ack.self.epoch;
      if (this.options.heartbeatIntervalMs === undefined && typeof ack.self.ttlMs === 'number' && ack.self.ttlMs > 0) {
        // Well inside the server's TTL whatever it is configured to (docs/protocol.md: every TTL/3).
        this.heartbeatMs = Math.max(50, Math.min(DEFAULT_HEARTBEAT_MS, Math.floor(ack.self.ttlMs / 3)));
      }
      const effects = ack.upToDate
        ? this.reduce({ type: 'up_to_date', seq: ack.seq, self: ack.self.connId })
        : this.reduce({ type: 'snapshot', snapshot: ack.snapshot, self: ack.self.connId });
      this.setState('joined', 'join');
      this.run(effects);
      if (this.state === 'joined') this.scheduleHeartbeat(this.pending ? 0 : this.heartbeatMs);
      return ack.upToDate ? snapshotOf(this.list, this.roomId as RoomId) : ack.snapshot;
    };
    const p = run().finally(() => {
      if (this.joining === p) this.joining = undefined;
    });
    this.joining = p;
    p.catch((err: unknown) => {
      if (this.state !== mode) return;
      if (mode === 'joining') {
        this.apply({ type: 'reset' });
        this.setState('idle', 'error');
      } else {
        // Still rejoining: the next reconnect tries again.
        this.bus.emit('error', err instanceof RealtimeError ? err : new RealtimeError('internal', String(err)));
      }
    });
    return p;
  }

  /** Leaves the room and stops every timer. Idempotent. */
  leave(): Promise<void> {
    return this.leaveBecause('leave');
  }

  private async leaveBecause(reason: 'leave' | 'shutdown'): Promise<void> {
    if (this.state === 'left') return;
    const wasJoined = this.state === 'joined';
    this.setState('left', reason);
    this.stopHeartbeat();
    this.rejectWaiters(new RealtimeError('not_joined', 'the room left'));
    this.apply({ type: 'reset' });
    if (wasJoined && this.host.connected()) {
      const ack = await this.host.request<LeaveAck>(EVENTS.leave, { roomId: this.roomId }).catch(() => undefined);
      if (ack && !ack.ok && ack.error.code !== 'not_joined') this.bus.emit('error', new RealtimeError(ack.error.code, ack.error.message));
    }
    this.dispose();
  }

  private dispose(): void {
    this.stopHeartbeat();
    this.handlers.clear();
    this.bus.clear();
    this.host.detach(this.roomId, this.link);
  }

  // -- state and heartbeats -------------------------------------------

  /**
   * Shallow-merges `patch` into this connection's state (`null` deletes a
   * key). Bursts are merged and sent with one heartbeat; resolves when the
   * server acknowledged the change.
   */
  updateState(patch: StatePatch): Promise<void> {
    if (this.state === 'left') return Promise.reject(new RealtimeError('not_joined', 'the room left'));
    merge(this.own, patch);
    this.pending = { ...(this.pending ?? {}), ...patch };
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.state === 'joined' && this.patchTimer === undefined && !this.inFlight) {
      this.patchTimer = this.host.timers.setTimeout(() => {
        this.patchTimer = undefined;
        void this.heartbeat();
      }, this.patchDelayMs);
    }
    return done;
  }

  private scheduleHeartbeat(ms: number): void {
    if (this.heartbeatTimer !== undefined) this.host.timers.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = this.host.timers.setTimeout(() => {
      this.heartbeatTimer = undefined;
      void this.heartbeat();
    }, ms);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) this.host.timers.clearTimeout(this.heartbeatTimer);
    if (this.patchTimer !== undefined) this.host.timers.clearTimeout(this.patchTimer);
    this.heartbeatTimer = undefined;
    this.patchTimer = undefined;
  }

  private rejectWaiters(err: Error): void {
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.reject(err);
  }

  private async heartbeat(): Promise<void> {
    if (this.state !== 'joined' || this.inFlight) return;
    this.inFlight = true;
    const patch = this.pending;
    const waiters = this.waiters;
    this.pending = undefined;
    this.waiters = [];
    let err: RealtimeError;
    try {
      const ack = await this.host.request<HeartbeatAck>(EVENTS.heartbeat, {
        roomId: this.roomId,
        epoch: this.epoch,
        ...(patch ? { patchState: patch } : {}),
      });
      if (ack.ok) {
        this.w.epoch = ack.epoch;
        for (const w of waiters) w.resolve();
        this.inFlight = false;
        if (this.state === 'joined') this.scheduleHeartbeat(this.pending ? this.patchDelayMs : this.heartbeatMs);
        return;
      }
      err = new RealtimeError(ack.error.code, ack.error.message);
    } catch (e) {
      // The host rejects only with RealtimeErrors (closed, disconnected, timeout).
      err = e instanceof RealtimeError ? e : new RealtimeError('internal', String(e));
    }
    this.inFlight = false;
    // (The cast: TypeScript keeps `this.state` narrowed to 'joined' across the await.)
    if ((this.state as RoomState) === 'left') {
      // leave() settled the newer waiters already; settle the ones of this request too.
      for (const w of waiters) w.reject(new RealtimeError('not_joined', 'the room left'));
      return;
    }
    // Only a joined room acts on the answer; a (re)join under way carries the own state and sends what is kept.
    const action = this.state === 'joined' ? heartbeatErrorAction(err.code) : 'wait';
    switch (action) {
      case 'stop':
        for (const w of waiters) w.reject(err);
        this.bus.emit('error', err);
        this.stopHeartbeat();
        this.rejectWaiters(err);
        this.apply({ type: 'reset' });
        this.setState('left', err.code === 'stale_epoch' ? 'stale_epoch' : 'error');
        this.dispose();
        return;
      case 'rejoin':
        // The full own state goes with the join, so the patch's waiters follow it.
        this.doJoin('rejoining', 'expired').then(
          () => waiters.forEach((w) => w.resolve()),
          (e: Error) => waiters.forEach((w) => w.reject(e)),
        );
        return;
      case 'reject':
        for (const w of waiters) w.reject(err);
        this.bus.emit('error', err);
        if (this.state === 'joined') this.scheduleHeartbeat(this.pending ? this.patchDelayMs : this.heartbeatMs);
        return;
      case 'retry':
      case 'wait':
        // Keep the patch (newer keys win) and its waiters for the next attempt.
        if (patch) this.pending = { ...patch, ...(this.pending ?? {}) };
        this.waiters = [...waiters, ...this.waiters];
        if (action === 'retry') this.bus.emit('error', err);
        if (this.state === 'joined') this.scheduleHeartbeat(Math.min(this.heartbeatMs, RETRY_MS));
        return;
    }
  }

  // -- custom events --------------------------------------------------------

  private onMessage(m: RoomMessage): void {
    const set = this.handlers.get(m.event);
    if (!set) return;
    const meta: MessageMeta = { ts: m.ts, ...(m.userId ? { userId: m.userId } : {}), ...(m.connId ? { connId: m.connId } : {}) };
    for (const h of [...set]) {
      try {
        h(m.data, meta);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /**
   * Sends a custom event to the other members of the room. Resolves when the
   * server accepted it (`ack: false` resolves at once).
   * @example await room.emit('chat:message', { text: 'hi' });
   */
  async emit(event: string, data: JsonValue = null, opts: { ack?: boolean } = {}): Promise<void> {
    if (RESERVED.has(event)) throw new RealtimeError('invalid_payload', `'${event}' is a presence event name; pick another custom event name`);
    if (this.state !== 'joined') throw new RealtimeError('not_joined', `join room '${this.roomId}' before sending '${event}'`);
    const payload = { roomId: this.roomId, event, data };
    if (opts.ack === false) {
      this.host.send(EVENTS.message, payload);
      return;
    }
    const ack = await this.host.request<MessageAck>(EVENTS.message, payload);
    if (!ack.ok) throw new RealtimeError(ack.error.code, ack.error.message);
  }

  /**
   * Listens to presence events (`join`, `update`, `leave`, `sync`, `state`,
   * `error`) or to a custom event by name. Returns a function that removes
   * the listener.
   * @example room.on('leave', (e) => console.log(e.userId, e.reason));
   */
  on<K extends keyof RoomEvents>(event: K, listener: RoomEvents[K]): () => void;
  on(event: string, listener: (data: JsonValue, meta: MessageMeta) => void): () => void;
  on(event: string, listener: (...args: never[]) => void): () => void {
    if (RESERVED.has(event)) return this.bus.on(event as keyof RoomEvents, listener as RoomEvents[keyof RoomEvents]);
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    const h = listener as (data: JsonValue, meta: MessageMeta) => void;
    set.add(h);
    return () => set.delete(h);
  }
}
