import type {
  ConnectionInfo,
  HeartbeatAck,
  JoinAck,
  JsonValue,
  LeaveAck,
  MessageAck,
  PresenceEvent,
  PresenceState,
  RoomMessage,
  RoomSnapshot,
  StatePatch,
  UserId,
} from 'realtime-message-protocol/core';
import type { RealtimeClient, StateChange } from './client.js';
import { Emitter } from './emitter.js';
import { RealtimeError } from './errors.js';

export type ChannelState = 'idle' | 'joining' | 'joined' | 'rejoining' | 'left';

export interface ChannelOptions {
  /** The user this client is (with auth: the token's `sub`). */
  userId: string;
  /** Initial state of this connection. @default {} */
  state?: PresenceState;
  /** Heartbeat period; keep it well inside the server's TTL (default TTL 30 s). @default 10000 */
  heartbeatIntervalMs?: number;
  /** Window in which `updateState` calls are merged into one heartbeat. @default 50 */
  patchDelayMs?: number;
}

/** A distinct user of the room with all of their live connections. */
export interface Member {
  userId: UserId;
  connections: ConnectionInfo[];
}

export type JoinEvent = Extract<PresenceEvent, { type: 'join' }>;
export type UpdateEvent = Extract<PresenceEvent, { type: 'update' }>;
export type LeaveEvent = Extract<PresenceEvent, { type: 'leave' }>;
export interface MessageMeta {
  userId?: string;
  connId?: string;
  ts: number;
}

export interface ChannelEvents {
  /** A connection joined (another user, or another tab of a user). */
  join: (event: JoinEvent) => void;
  /** A connection's state changed (or it resumed). */
  update: (event: UpdateEvent) => void;
  /** A connection left (`reason`: leave, disconnect, timeout). */
  leave: (event: LeaveEvent) => void;
  /** The member list was replaced from a snapshot (join, rejoin, resync). */
  sync: (members: Member[]) => void;
  /** The channel's state changed. */
  state: (change: StateChange<ChannelState>) => void;
  /** Something failed in the background (heartbeat, rejoin). */
  error: (error: RealtimeError) => void;
}

const RESERVED = new Set<string>(['join', 'update', 'leave', 'sync', 'state', 'error']);

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
 * custom events.
 */
export class PresenceChannel {
  private readonly bus = new Emitter<ChannelEvents>();
  state: ChannelState = 'idle';
  /** This connection's id once joined (kept across reconnects to resume). */
  connId: string | undefined;
  /** The epoch this client holds; every write carries it. */
  epoch = 0;
  /** The `seq` of the last applied change. */
  seq = 0;
  private readonly conns = new Map<string, ConnectionInfo>();
  private readonly own: PresenceState;
  private readonly heartbeatMs: number;
  private readonly patchDelayMs: number;
  private buffer: PresenceEvent[] = [];
  private joining: Promise<RoomSnapshot> | undefined;
  private pending: StatePatch | undefined;
  private waiters: Waiter[] = [];
  private inFlight = false;
  private heartbeatTimer: unknown;
  private patchTimer: unknown;
  private readonly handlers = new Map<string, Set<(data: JsonValue, meta: MessageMeta) => void>>();

  constructor(
    private readonly client: RealtimeClient,
    readonly roomId: string,
    private readonly options: ChannelOptions,
    private readonly onDispose: () => void,
  ) {
    this.own = { ...(options.state ?? {}) };
    this.heartbeatMs = options.heartbeatIntervalMs ?? 10_000;
    this.patchDelayMs = options.patchDelayMs ?? 50;
  }

  /** The one place that changes the channel state. */
  private setState(next: ChannelState): void {
    if (next === this.state) return;
    const change = { newState: next, oldState: this.state };
    this.state = next;
    this.bus.emit('state', change);
  }

  /** Distinct users with their live connections, sorted by userId. */
  members(): Member[] {
    const byUser = new Map<UserId, ConnectionInfo[]>();
    for (const c of this.conns.values()) {
      const list = byUser.get(c.userId);
      if (list) list.push(c);
      else byUser.set(c.userId, [c]);
    }
    return [...byUser.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([userId, connections]) => ({ userId, connections }));
  }

  /** This connection's own state as the client knows it. */
  get ownState(): PresenceState {
    return { ...this.own };
  }

  // -- join / leave -------------------------------------------------------

  /** Joins the room; resolves with the snapshot, or rejects with a RealtimeError carrying the server's code. */
  join(): Promise<RoomSnapshot> {
    if (this.state === 'left') return Promise.reject(new RealtimeError('closed', 'this channel has left; create a new one'));
    if (this.joining) return this.joining;
    if (this.state === 'joined') return Promise.resolve(this.snapshot());
    return this.doJoin('joining');
  }

  private snapshot(): RoomSnapshot {
    return {
      roomId: this.roomId as RoomSnapshot['roomId'],
      seq: this.seq,
      members: this.members().map((m) => ({ userId: m.userId, connIds: m.connections.map((c) => c.connId) })),
      connections: [...this.conns.values()],
    };
  }

  private doJoin(mode: 'joining' | 'rejoining'): Promise<RoomSnapshot> {
    this.stopHeartbeat();
    this.setState(mode);
    this.buffer = [];
    const run = async (): Promise<RoomSnapshot> => {
      await this.client.connect();
      const ack = await this.client.request<JoinAck>('presence:join', {
        roomId: this.roomId,
        userId: this.options.userId,
        state: this.own,
        ...(this.connId ? { connId: this.connId } : {}),
      });
      if (!ack.ok) throw new RealtimeError(ack.error.code, ack.error.message);
      if (this.state === 'left') throw new RealtimeError('closed', 'the channel left while joining');
      this.connId = ack.self.connId;
      this.epoch = ack.self.epoch;
      this.conns.clear();
      for (const c of ack.snapshot.connections) this.conns.set(c.connId, c);
      this.seq = ack.snapshot.seq;
      const early = this.buffer;
      this.buffer = [];
      this.setState('joined');
      this.bus.emit('sync', this.members());
      // Events that arrived before the ack: apply those after the snapshot, in order.
      for (const e of early.sort((a, b) => a.seq - b.seq)) this._onEvent(e);
      this.scheduleHeartbeat(this.pending ? 0 : this.heartbeatMs);
      return ack.snapshot;
    };
    const p = run().finally(() => {
      if (this.joining === p) this.joining = undefined;
    });
    this.joining = p;
    p.catch((err: unknown) => {
      if (this.state === mode) this.setState(mode === 'joining' ? 'idle' : 'rejoining');
      if (mode === 'rejoining') this.bus.emit('error', err instanceof RealtimeError ? err : new RealtimeError('internal', String(err)));
    });
    return p;
  }

  /** Leaves the room and stops every timer. Idempotent. */
  async leave(): Promise<void> {
    if (this.state === 'left') return;
    const wasJoined = this.state === 'joined';
    this.setState('left');
    this.stopHeartbeat();
    this.rejectWaiters(new RealtimeError('not_joined', 'the channel left'));
    this.conns.clear();
    if (wasJoined && this.client.socket.connected) {
      const ack = await this.client.request<LeaveAck>('presence:leave', { roomId: this.roomId }).catch(() => undefined);
      if (ack && !ack.ok && ack.error.code !== 'not_joined') this.bus.emit('error', new RealtimeError(ack.error.code, ack.error.message));
    }
    this._dispose();
  }

  // -- state and heartbeats -------------------------------------------

  /**
   * Shallow-merges `patch` into this connection's state (`null` deletes a
   * key). Bursts are merged and sent with one heartbeat; resolves when the
   * server acknowledged the change.
   */
  updateState(patch: StatePatch): Promise<void> {
    if (this.state === 'left') return Promise.reject(new RealtimeError('not_joined', 'the channel left'));
    merge(this.own, patch);
    this.pending = { ...(this.pending ?? {}), ...patch };
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.state === 'joined' && this.patchTimer === undefined && !this.inFlight) {
      this.patchTimer = this.client.timers.setTimeout(() => {
        this.patchTimer = undefined;
        void this.heartbeat();
      }, this.patchDelayMs);
    }
    return done;
  }

  private scheduleHeartbeat(ms: number): void {
    if (this.heartbeatTimer !== undefined) this.client.timers.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = this.client.timers.setTimeout(() => {
      this.heartbeatTimer = undefined;
      void this.heartbeat();
    }, ms);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) this.client.timers.clearTimeout(this.heartbeatTimer);
    if (this.patchTimer !== undefined) this.client.timers.clearTimeout(this.patchTimer);
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
    let retryIn = this.heartbeatMs;
    try {
      const ack = await this.client.request<HeartbeatAck>('presence:heartbeat', {
        roomId: this.roomId,
        epoch: this.epoch,
        ...(patch ? { patchState: patch } : {}),
      });
      if (ack.ok) {
        this.epoch = ack.epoch;
        for (const w of waiters) w.resolve();
      } else {
        const err = new RealtimeError(ack.error.code, ack.error.message);
        switch (ack.error.code) {
          case 'stale_epoch':
            // A newer incarnation of this connection exists (another socket resumed it): stop, do not fight it.
            for (const w of waiters) w.reject(err);
            this.bus.emit('error', err);
            this.inFlight = false;
            this.stopHeartbeat();
            this.conns.clear();
            this.setState('left');
            this._dispose();
            return;
          case 'not_joined':
            // Expired, or storage was reset: join again; the full own state goes with it.
            this.inFlight = false;
            this.doJoin('rejoining').then(
              () => waiters.forEach((w) => w.resolve()),
              (e: Error) => waiters.forEach((w) => w.reject(e)),
            );
            return;
          case 'payload_too_large':
          case 'invalid_payload':
            for (const w of waiters) w.reject(err);
            this.bus.emit('error', err);
            break;
          default:
            // rate_limited, internal: keep the patch and retry sooner, with the same waiters.
            this.pending = { ...(patch ?? {}), ...(this.pending ?? {}) };
            this.waiters = [...waiters, ...this.waiters];
            retryIn = Math.min(this.heartbeatMs, 1_000);
            this.bus.emit('error', err);
        }
      }
    } catch (err) {
      // timeout or disconnected: the reconnect path rejoins; keep the patch for then.
      if (patch) this.pending = { ...patch, ...(this.pending ?? {}) };
      this.waiters = [...waiters, ...this.waiters];
      retryIn = Math.min(this.heartbeatMs, 1_000);
      if (err instanceof RealtimeError && err.code === 'timeout') this.bus.emit('error', err);
    }
    this.inFlight = false;
    if (this.state === 'joined') this.scheduleHeartbeat(this.pending ? this.patchDelayMs : retryIn);
  }

  // -- events ---------------------------------------------------------------

  /** @internal called by the client for every presence:event of this room */
  _onEvent(e: PresenceEvent): void {
    if (this.state === 'joining' || this.state === 'rejoining') {
      this.buffer.push(e);
      return;
    }
    if (this.state !== 'joined' || e.seq <= this.seq) return;
    if (e.seq > this.seq + 1) {
      // Missed an event: the list would be wrong. Take a fresh snapshot (a resume).
      void this.doJoin('rejoining').catch(() => {});
      return;
    }
    this.seq = e.seq;
    switch (e.type) {
      case 'join':
      case 'update':
        this.conns.set(e.connId, {
          connId: e.connId,
          userId: e.userId,
          state: e.state,
          epoch: e.epoch,
          joinedAt: e.type === 'join' ? e.ts : (this.conns.get(e.connId)?.joinedAt ?? e.ts),
          lastSeen: e.ts,
        });
        if (e.type === 'join') this.bus.emit('join', e);
        else this.bus.emit('update', e);
        break;
      case 'leave':
        this.conns.delete(e.connId);
        this.bus.emit('leave', e);
        if (e.connId === this.connId) {
          // Our own connection ended (e.g. it timed out while this tab slept): join again.
          void this.doJoin('rejoining').catch(() => {});
        }
        break;
    }
  }

  /** @internal */
  _onMessage(m: RoomMessage): void {
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

  /** @internal the transport dropped: pause heartbeats until the client reconnects. */
  _onDisconnected(): void {
    if (this.state === 'joined') {
      this.stopHeartbeat();
      this.setState('rejoining');
    }
  }

  /** @internal the client is connected again: resume this connection (no flicker for others within the grace). */
  _onConnected(): void {
    if (this.state === 'rejoining' && !this.joining) void this.doJoin('rejoining').catch(() => {});
  }

  /** @internal */
  _dispose(): void {
    this.stopHeartbeat();
    this.handlers.clear();
    this.bus.clear();
    this.onDispose();
  }

  // -- custom events --------------------------------------------------------

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
      this.client.socket.emit('presence:message', payload);
      return;
    }
    const ack = await this.client.request<MessageAck>('presence:message', payload);
    if (!ack.ok) throw new RealtimeError(ack.error.code, ack.error.message);
  }

  /**
   * Listens to presence events (`join`, `update`, `leave`, `sync`, `state`,
   * `error`) or to a custom event by name. Returns a function that removes
   * the listener.
   */
  on<K extends keyof ChannelEvents>(event: K, listener: ChannelEvents[K]): () => void;
  on(event: string, listener: (data: JsonValue, meta: MessageMeta) => void): () => void;
  on(event: string, listener: (...args: never[]) => void): () => void {
    if (RESERVED.has(event)) return this.bus.on(event as keyof ChannelEvents, listener as ChannelEvents[keyof ChannelEvents]);
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    const h = listener as (data: JsonValue, meta: MessageMeta) => void;
    set.add(h);
    return () => set.delete(h);
  }
}
