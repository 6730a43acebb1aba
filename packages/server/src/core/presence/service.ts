import { randomUUID } from 'node:crypto';
import {
  ConnIdSchema,
  EpochSchema,
  PresenceError,
  RoomIdSchema,
  createPayloadSchemas,
  parsePayload,
  type ConnId,
  type JoinPayload,
  type JoinRequest,
  type PayloadSchemas,
  type RoomId,
  type RoomMessage,
  type RoomSnapshot,
  type StatePatch,
} from 'realtime-message-protocol';
import type { z } from 'zod';
import { systemClock, type Clock } from '../shared/clock.js';
import { Hub, type Unsubscribe } from '../shared/hub.js';
import { LogSummary } from '../shared/log-summary.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { EncodedPatch, PresenceEngine, ReapResult, ReapedConnection, RoomFeedItem, LeaveCommand, StorageReset, WriteOutcome } from './engine.js';

import {
  presenceSources,
  PRESENCE_KINDS,
  resolvePresenceOptions,
  type EngineOp,
  type JoinResult,
  type JoinUpToDateResult,
  type LocalJoin,
  type ParsedTarget,
  type PresenceHub,
  type PresenceListener,
  type PresenceOptions,
  type PresenceTopics,
  type ReapPassResult,
  type ResolvedPresenceOptions,
  type WriteTarget,
} from './options.js';

export * from './options.js';

/**
 * The presence model of SPEC §2 over a {@link PresenceEngine}: validation,
 * epoch fencing, resume, disconnect grace, expiry and the reaper.
 *
 * Every method validates its input with the protocol schemas and rejects with
 * a {@link PresenceError} carrying a stable code; nothing else escapes.
 *
 * @example
 * const presence = new PresenceService({ engine: new MemoryEngine() });
 * presence.start();
 * const { connId, epoch, snapshot } = await presence.join({ roomId: 'doc-1', userId: 'ada' });
 * await presence.heartbeat({ roomId: 'doc-1', connId, epoch, patchState: { typing: true } });
 * await presence.dispose();
 */
export class PresenceService {
  readonly options: ResolvedPresenceOptions;
  readonly engine: PresenceEngine;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly newConnId: () => string;
  private readonly observe: PresenceOptions['observe'];
  private readonly observeReap: PresenceOptions['observeReap'];
  private readonly schemas: PayloadSchemas;
  private readonly hub: PresenceHub;
  /** The Hub this service made for itself (disposed with it); undefined when the node's Hub was passed in. */
  private readonly ownHub: Hub<PresenceTopics> | undefined;
  private readonly joinedListeners = new Set<(joined: LocalJoin) => void>();
  private readonly reapedListeners = new Set<(ended: readonly ReapedConnection[]) => void>();
  private reaperFailures: LogSummary | undefined;
  private reaperTimer: NodeJS.Timeout | undefined;
  private reaping: Promise<number> | undefined;
  /** True when the last pass stopped at its budget with due work left: the next pass starts at once. */
  private reaperBehind = false;
  private disposed = false;

  constructor(options: PresenceOptions) {
    this.engine = options.engine;
    this.options = resolvePresenceOptions(options);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.newConnId = options.generateConnId ?? randomUUID;
    this.observe = options.observe;
    this.observeReap = options.observeReap;
    this.schemas = createPayloadSchemas({ maxStateBytes: this.options.maxStateBytes });
    if (options.hub) {
      this.hub = options.hub;
    } else {
      const engine = this.engine;
      this.ownHub = new Hub<PresenceTopics>(presenceSources(engine), { logger: this.logger });
      this.hub = this.ownHub;
    }
  }

  /** Commands are written out, not spread (`{ ...timing, ...t }` cost µs per join and leave in profiles). */
  private leaveCommand(t: ParsedTarget, reason: LeaveCommand['reason']): LeaveCommand {
    return { now: this.clock.now(), ttlMs: this.options.ttlMs, lookbackMs: this.options.reaperLookbackMs, roomId: t.roomId, connId: t.connId, epoch: t.epoch, reason };
  }

  private checkOpen(): void {
    if (this.disposed) throw new PresenceError('internal', 'the presence service was disposed');
  }

  /** Runs an engine call, turning storage failures into a coded `internal` error. */
  private async call<T>(op: EngineOp, fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    const started = performance.now();
    try {
      const out = await fn();
      this.observe?.(op, performance.now() - started, 'ok');
      return out;
    } catch (err) {
      this.observe?.(op, performance.now() - started, 'error');
      if (err instanceof PresenceError) throw err;
      if (this.engine.isUnavailable?.(err)) {
        // An outage is logged by the backend's connection (once, then summarised), not once per request.
        throw new PresenceError('unavailable', `presence storage (${this.engine.kind}) cannot be reached during ${op}; retry with backoff`, { cause: err });
      }
      this.logger.error({ err, op, engine: this.engine.kind }, 'presence engine call failed');
      throw new PresenceError('internal', `presence storage failed during ${op}; retry with backoff`, { cause: err });
    }
  }

  private parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
    const res = parsePayload(schema, input);
    if (!res.ok) throw new PresenceError(res.error.code, res.error.message);
    return res.value;
  }

  private target(t: WriteTarget): ParsedTarget {
    if (typeof t !== 'object' || t === null) throw new PresenceError('invalid_payload', 'expected { roomId, connId, epoch }');
    return {
      roomId: this.parse(RoomIdSchema, t.roomId),
      connId: this.parse(ConnIdSchema, t.connId),
      epoch: this.parse(EpochSchema, t.epoch),
    };
  }

  private static fail(res: Exclude<WriteOutcome, { ok: true }>, t: { connId: string; epoch: number }): never {
    switch (res.code) {
      case 'stale_epoch':
        throw new PresenceError('stale_epoch', res.message ?? `epoch ${t.epoch} of connection ${t.connId} is not current; a newer incarnation exists`);
      case 'not_joined':
        throw new PresenceError('not_joined', res.message ?? `connection ${t.connId} is not in the room (left, expired or storage was reset); join again`);
      case 'payload_too_large':
        throw new PresenceError('payload_too_large', res.message ?? 'state after merging the patch exceeds the size limit');
    }
  }

  /**
   * Joins a room. With `connId`, resumes that connection when it belongs to
   * the same user (`forbidden` otherwise); an unknown or forgotten `connId`
   * gives a fresh connection with a new id. With `connId` and `knownSeq` (the
   * `seq` of the member list the caller holds), a resume of the live
   * connection in a room where nothing else happened since answers
   * `upToDate` without a snapshot.
   */
  async join(input: JoinRequest & { knownSeq?: undefined }): Promise<JoinResult>;
  async join(input: JoinRequest): Promise<JoinResult | JoinUpToDateResult>;
  async join(input: JoinRequest): Promise<JoinResult | JoinUpToDateResult> {
    this.checkOpen();
    return this.joinParsed(this.parse(this.schemas.join, input));
  }

  /**
   * The connId a join that does not resume a live connection will get, when
   * passed to {@link joinParsed}: a transport that knows it before the join
   * can recognise the join's own event whenever it arrives.
   */
  newConnectionId(): ConnId {
    return this.newConnId() as ConnId;
  }

  /**
   * {@link join} for a transport that already validated the payload with the
   * protocol schemas (the gateway); skips validating it a second time.
   */
  async joinParsed(p: JoinPayload & { knownSeq?: undefined }, freshConnId?: ConnId): Promise<JoinResult>;
  async joinParsed(p: JoinPayload, freshConnId?: ConnId): Promise<JoinResult | JoinUpToDateResult>;
  async joinParsed(p: JoinPayload, freshConnId: ConnId = this.newConnectionId()): Promise<JoinResult | JoinUpToDateResult> {
    this.checkOpen();
    // knownSeq means something only for a resume.
    const knownSeq = p.connId === undefined ? undefined : p.knownSeq;
    const res = await this.call('join', () =>
      this.engine.join({ now: this.clock.now(), ttlMs: this.options.ttlMs, lookbackMs: this.options.reaperLookbackMs, roomId: p.roomId, userId: p.userId, freshConnId, resumeConnId: p.connId, state: p.state, knownSeq }),
    );
    if (!res.ok) {
      throw new PresenceError('forbidden', `connection ${String(p.connId)} belongs to another user and cannot be resumed`);
    }
    for (const l of this.joinedListeners) l({ roomId: p.roomId, userId: p.userId, connId: res.connId, epoch: res.epoch });
    if (res.upToDate) return { connId: res.connId, epoch: res.epoch, resumed: true, upToDate: true, seq: res.seq };
    // An engine that read the room anyway (it may): the same rule, so every engine answers alike.
    if (res.mode === 'resumed' && knownSeq !== undefined && res.snapshot.seq === knownSeq + 1) {
      return { connId: res.connId, epoch: res.epoch, resumed: true, upToDate: true, seq: res.snapshot.seq };
    }
    return { connId: res.connId, epoch: res.epoch, resumed: res.mode === 'resumed', snapshot: res.snapshot };
  }

  /** Keeps a connection alive and optionally shallow-merges `patchState` (a `null` value deletes the key). */
  async heartbeat(input: WriteTarget & { patchState?: StatePatch | undefined }): Promise<{ epoch: number }> {
    this.checkOpen();
    const t = this.target(input);
    const patch = input.patchState === undefined ? undefined : this.parse(this.schemas.patch, input.patchState);
    return this.heartbeatParsed(t, patch);
  }

  /** {@link heartbeat} for a transport that already validated target and patch with the protocol schemas. */
  async heartbeatParsed(t: ParsedTarget, patchState?: StatePatch): Promise<{ epoch: number }> {
    this.checkOpen();
    let patch: EncodedPatch | undefined;
    if (patchState !== undefined) patch = Object.entries(patchState).map(([k, v]) => [k, v === null ? null : JSON.stringify(v)] as const);
    const o = this.options;
    const res = await this.call('heartbeat', () =>
      this.engine.heartbeat({
        now: this.clock.now(),
        ttlMs: o.ttlMs,
        lookbackMs: o.reaperLookbackMs,
        roomId: t.roomId,
        connId: t.connId,
        epoch: t.epoch,
        patch,
        maxStateBytes: o.maxStateBytes,
      }),
    );
    if (!res.ok) PresenceService.fail(res, t);
    return { epoch: res.epoch };
  }

  /**
   * Leaves at once; members get `leave` with `reason` (default `leave`; a
   * server shutting down uses `disconnect`). Leaving twice is a no-op.
   */
  async leave(input: WriteTarget, opts: { reason?: 'leave' | 'disconnect' } = {}): Promise<void> {
    this.checkOpen();
    return this.leaveParsed(this.target(input), opts);
  }

  /** {@link leave} for a validated target. */
  async leaveParsed(t: ParsedTarget, opts: { reason?: 'leave' | 'disconnect' } = {}): Promise<void> {
    this.checkOpen();
    const reason = opts.reason === 'disconnect' ? 'disconnect' : 'leave';
    const res = await this.call('leave', () => this.engine.leave(this.leaveCommand(t, reason)));
    if (!res.ok) PresenceService.fail(res, t);
  }

  /**
   * The transport lost the connection without `presence:leave`. The
   * connection stays present for the disconnect grace so that a resume shows
   * no flicker; then members get `leave` (reason `disconnect`).
   */
  async disconnect(input: WriteTarget): Promise<void> {
    this.checkOpen();
    return this.disconnectParsed(this.target(input));
  }

  /** {@link disconnect} for a validated target. */
  async disconnectParsed(t: ParsedTarget): Promise<void> {
    this.checkOpen();
    const graceMs = this.options.disconnectGraceMs;
    const res = await this.call('disconnect', () =>
      graceMs === 0
        ? this.engine.leave(this.leaveCommand(t, 'disconnect'))
        : this.engine.disconnect({ now: this.clock.now(), ttlMs: this.options.ttlMs, lookbackMs: this.options.reaperLookbackMs, roomId: t.roomId, connId: t.connId, epoch: t.epoch, graceMs }),
    );
    if (!res.ok) PresenceService.fail(res, t);
  }

  /**
   * Calls `listener` when the engine's storage was reset (Redis restarted
   * from an older snapshot, or failed over): every member list a client
   * holds may be wrong and `seq`s may have gone back, so transports tell
   * their members to take a fresh snapshot. Never called for the memory
   * engine. Returns a function that stops the calls.
   * @example service.onReset(({ reason }) => logger.warn({ reason }, 'presence storage was reset'));
   */
  onReset(listener: (reset: StorageReset) => void): () => void {
    return this.engine.onReset?.(listener) ?? (() => {});
  }

  async snapshot(roomId: string): Promise<RoomSnapshot> {
    this.checkOpen();
    const id = this.parse(RoomIdSchema, roomId);
    return this.call('snapshot', () => this.engine.snapshot(id, this.clock.now()));
  }

  /**
   * Receives every presence event of a room (from every node) until the
   * returned function is called; with only a listener, every event of every
   * room (in `seq` order per room). One engine subscription per room per node
   * is shared by all local listeners (the Hub). Resolves once events flow, so
   * subscribe before joining to miss nothing after the join's snapshot.
   * `{ only: 'leave' }`: every leave of every room, and nothing else reaches the node.
   */
  async subscribe(listener: PresenceListener, options?: { only?: 'leave' }): Promise<() => Promise<void>>;
  async subscribe(roomId: string, listener: PresenceListener): Promise<() => Promise<void>>;
  async subscribe(roomOrListener: string | PresenceListener, maybeListener?: PresenceListener | { only?: 'leave' }): Promise<() => Promise<void>> {
    if (typeof roomOrListener === 'function') {
      // Every event (or leave) of every room on every node.
      this.checkOpen();
      const kind = typeof maybeListener === 'object' && maybeListener?.only === 'leave' ? 'presence-leaves' : 'presence-all';
      return this.call('subscribe', () => this.hub.subscribe(kind, '*', roomOrListener));
    }
    if (typeof maybeListener !== 'function') throw new TypeError('subscribe(roomId, listener) needs a listener function');
    const listener = maybeListener;
    return this.subscribeFeed(roomOrListener, (item) => {
      if (item.type !== 'message') listener(item);
    });
  }

  /**
   * Calls `listener` after every successful join (new, rejoined or resumed)
   * made through this service instance, on this node only, with the
   * connection's epoch after it. Listeners must not throw. Returns the
   * function that removes the listener.
   */
  onJoined(listener: (joined: LocalJoin) => void): () => void {
    this.joinedListeners.add(listener);
    return () => this.joinedListeners.delete(listener);
  }

  /** Calls `listener` with the connections each reaper call of this node ended (engines that report them: Redis). Listeners must not throw. */
  onReaped(listener: (ended: readonly ReapedConnection[]) => void): () => void {
    this.reapedListeners.add(listener);
    return () => this.reapedListeners.delete(listener);
  }

  /**
   * Receives the room's whole feed: presence events and custom messages, in
   * the one order the engine applied them. For transports.
   */
  async subscribeFeed(roomId: string, listener: (item: RoomFeedItem) => void): Promise<() => Promise<void>> {
    this.checkOpen();
    const id = this.parse(RoomIdSchema, roomId);
    const off = await this.call('subscribe', () => this.hub.subscribe('presence', id, listener));
    return off;
  }

  /**
   * Sends a custom message to every subscriber of the room on every node,
   * ordered with the room's presence events. The transport validated it.
   */
  async publishParsed(message: RoomMessage): Promise<void> {
    this.checkOpen();
    await this.call('publish', () => this.engine.publish(message.roomId as RoomId, message));
  }

  /**
   * Starts the periodic reaper. Safe on every node at once. Idempotent. A
   * pass that ends with due work left (it hit its time budget) is followed
   * by the next one at once instead of after an interval.
   */
  start(): void {
    this.checkOpen();
    if (this.reaperTimer) return;
    const tick = (): void => {
      void this.reapNow()
        // An outage fails every pass: the first failure of each kind is logged, then one summary per 30 s.
        .catch((err: unknown) => (this.reaperFailures ??= new LogSummary(this.logger, 'reaper pass failed; retrying next interval', 30_000)).note(err instanceof PresenceError ? err.code : 'error', { err }))
        .finally(() => {
          if (this.reaperTimer) {
            this.reaperTimer = setTimeout(tick, this.reaperBehind ? 0 : this.options.reaperIntervalMs);
            this.reaperTimer.unref();
          }
        });
    };
    this.reaperTimer = setTimeout(tick, this.options.reaperIntervalMs);
    this.reaperTimer.unref();
  }

  /**
   * Runs one reaper pass now: everything that is due, in engine calls of at
   * most `reaperBatchSize` leaves each, for at most one reaper interval of
   * time (each call re-reads the clock, so work that comes due during a long
   * pass is included). Concurrent calls share one pass. Returns the number of
   * leaves emitted.
   */
  reapNow(): Promise<number> {
    if (this.disposed) return Promise.resolve(0);
    if (this.reaping) return this.reaping;
    const started = performance.now();
    const pass: ReapPassResult = { leaves: 0, visitedRooms: 0, visitedSlots: 0, backlog: 0, lagMs: 0, durationMs: 0 };
    const o = this.options;
    // At least 250 ms, so that a tiny interval (tests) still makes progress per pass.
    const budgetMs = Math.max(o.reaperIntervalMs, 250);
    const run = async (): Promise<number> => {
      let r: ReapResult | undefined;
      // Bounded: at most 100 calls and one budget per pass, so one pass cannot run forever under churn.
      for (let i = 0; i < 100 && !this.disposed; i++) {
        const left = budgetMs - (performance.now() - started);
        if (i > 0 && left <= 0) break;
        r = await this.call('reap', () =>
          this.engine.reap({ now: this.clock.now(), ttlMs: o.ttlMs, lookbackMs: o.reaperLookbackMs, intervalMs: o.reaperIntervalMs, limit: o.reaperBatchSize, budgetMs: Math.max(left, 1) }),
        );
        if (r.ended?.length) for (const l of this.reapedListeners) l(r.ended);
        pass.leaves += r.leaves;
        pass.visitedRooms += r.visitedRooms;
        pass.visitedSlots += r.visitedSlots;
        if (!r.more) break;
      }
      pass.backlog = r?.backlog ?? 0;
      pass.lagMs = r?.lagMs ?? 0;
      this.reaperBehind = r?.more === true;
      return pass.leaves;
    };
    this.reaping = run()
      .then(
        (leaves) => {
          pass.durationMs = performance.now() - started;
          this.observeReap?.(pass);
          return leaves;
        },
        (error: unknown) => {
          this.reaperBehind = false;
          this.observeReap?.({ error });
          throw error;
        },
      )
      .finally(() => {
        this.reaping = undefined;
      });
    return this.reaping;
  }

  /** Stops the reaper and drops every subscription. Does not close the engine. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.reaperTimer) clearTimeout(this.reaperTimer);
    this.reaperTimer = undefined;
    this.reaperFailures?.stop();
    // Every subscription this service handed out is a hub topic of a presence kind.
    await (this.ownHub ? this.ownHub.dispose() : this.hub.closeKinds(PRESENCE_KINDS));
    await this.reaping?.catch(() => 0);
  }

  /** Alias of {@link dispose}. */
  stop(): Promise<void> {
    return this.dispose();
  }
}
