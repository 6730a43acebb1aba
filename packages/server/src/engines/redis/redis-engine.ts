import { Cluster, type Redis } from 'ioredis';
import type { PresenceEvent, RoomId, RoomMessage, RoomSnapshot } from 'realtime-message-protocol';
import type {
  DisconnectCommand,
  HeartbeatCommand,
  JoinCommand,
  JoinOutcome,
  LeaveCommand,
  PresenceEngine,
  ReapCommand,
  ReapResult,
  ReapedConnection,
  RoomFeedItem,
  StorageReset,
  WriteOutcome,
} from '../../core/presence/engine.js';
import type { Logger } from '../../core/shared/logger.js';
import { buildSnapshot } from '../../core/presence/snapshot.js';
import { RedisBackend, type RedisClient } from './backend.js';
import { WriteBatcher } from './write-batcher.js';
import type { KeySpace } from './keys.js';
import { PRESENCE_SCRIPTS, Scripts } from './scripts/index.js';
import type { InputOf, ReplyOf } from './scripts/script.js';
import { MAX_HEARTBEAT_BATCH } from './scripts/heartbeat.js';

type PresenceScripts = typeof PRESENCE_SCRIPTS;
/** A join's, leave's or disconnect's reply, or the error its share of a batch call was answered with. */
type WriteReply<K extends keyof PresenceScripts> = ReplyOf<PresenceScripts[K]> | Error;

export { REDIS_BATCHED_COMMANDS } from './scripts/index.js';

export type { RedisClient };

export interface RedisEngineOptions {
  /** Client for commands and scripts. Not closed by the engine. Ignored when `backend` is given. */
  redis?: RedisClient;
  /** The Redis deployment shared with the node's other capabilities (its subscriber connection, key space, health). */
  backend?: RedisBackend;
  /**
   * Client for SSUBSCRIBE (a subscribed connection cannot run commands).
   * @default a duplicate of `redis` (with sharded subscribers on a cluster), closed by the engine
   */
  subscriber?: RedisClient;
  /** Prefix of every key and channel. @default 'rm:' */
  keyPrefix?: string;
  /** Extra life of keys beyond TTL + lookback, covering reaper delay. @default 60000 */
  keySlackMs?: number;
  /**
   * A reaper claim older than this is taken over by another reaper (the one
   * that claimed it died). A live reaper holds a claim for one round of
   * slots, well under a second.
   * @default 2 × the reaper interval, at least 1000
   */
  claimTimeoutMs?: number;
  /** Period of the sweep that re-indexes every slot (safety net for a node that died mid-write). @default 60000 */
  sweepIntervalMs?: number;
  /**
   * Slots claimed per round of a reap call. A call runs rounds until no slot
   * is due, its leave limit is reached or its time budget is spent; this only
   * sizes one round (how long claims are held, how many slots one claim call
   * carries).
   * @default 256
   */
  slotsPerReap?: number;
  /** Slot scripts in flight at once during a round. @default 16 */
  reapConcurrency?: number;
  /**
   * Heartbeats received in one event-loop turn go to Redis in as few script
   * calls as possible (see WriteBatcher); `false`: one call each. With
   * ioredis auto-pipelining, list {@link REDIS_BATCHED_COMMANDS} in the
   * client's `autoPipeliningIgnoredCommands`, as the standalone server does,
   * so a turn's heartbeats are written at once rather than one event-loop
   * turn later, in a Pipeline of their own.
   * @default true
   */
  batchHeartbeats?: boolean;
  /**
   * With `batchHeartbeats`: least time between two heartbeat calls (ms). Under
   * a steady stream, a call then carries this window's heartbeats (fewer
   * commands and script runs per heartbeat, for up to this much more
   * latency); a heartbeat after a quiet spell still goes at once. 0: each
   * event-loop turn's heartbeats go at the turn's end. @default 2
   */
  heartbeatWindowMs?: number;
  /**
   * Joins, leaves and disconnects received in one event-loop turn go to
   * Redis in as few script calls as possible, one per kind (and per slot on
   * a Cluster; see WriteBatcher), each write still atomic and in order;
   * `false`: one call each. With ioredis auto-pipelining, list
   * {@link REDIS_BATCHED_COMMANDS} in the client's `autoPipeliningIgnoredCommands`,
   * so a turn's writes go at its end rather than a turn later.
   * @default true
   */
  batchRoomWrites?: boolean;
  logger?: Logger;
}

/** Most joins, leaves or disconnects in one call: a join reads its room's members, so this bounds how long a call holds Redis. */
export const MAX_ROOM_WRITE_BATCH = 8;

/** Claimed hint entries score CLAIM_BASE + claim time: above every real deadline, below 2^53. */
const CLAIM_BASE = 1e15;
/** Most due rooms one slot script visits: bounds the time one script blocks Redis (about 1 ms). */
const ROOMS_PER_SLOT_CALL = 100;

/**
 * Presence in Redis (single instance or Cluster, Redis >= 7.0 for sharded
 * pub/sub). Each join, heartbeat, leave and disconnect is one atomic run of
 * its Lua script, which publishes the event with SPUBLISH, so state and
 * event are atomic and events of a room arrive in `seq` order; the writes of
 * one event-loop turn share one script call per kind (and slot). See
 * docs/presence-model.md for the data model.
 */
export class RedisEngine implements PresenceEngine {
  readonly kind: string;
  private readonly redis: RedisClient;
  private readonly scripts: Scripts<PresenceScripts>;
  private readonly keys: KeySpace;
  private readonly claimTimeoutMs: number | undefined;
  private readonly sweepIntervalMs: number;
  private readonly slotsPerReap: number;
  private readonly reapConcurrency: number;
  private readonly logger: Logger;
  private readonly backend: RedisBackend;
  /** True when the engine made its backend (from `redis`) and so closes it. */
  private readonly ownsBackend: boolean;
  private lastSweep = 0;
  private readonly heartbeats: WriteBatcher<HeartbeatCommand, WriteOutcome> | undefined;
  /** Joins, leaves and disconnects gathered per turn (`batchRoomWrites`); undefined: one call each. */
  private readonly roomWrites:
    | {
        join: WriteBatcher<JoinCommand, WriteReply<'join'>>;
        leave: WriteBatcher<LeaveCommand, WriteReply<'leave'>>;
        disconnect: WriteBatcher<DisconnectCommand, WriteReply<'disconnect'>>;
      }
    | undefined;

  constructor(options: RedisEngineOptions) {
    if (options.backend) {
      this.backend = options.backend;
    } else {
      if (!options.redis) throw new TypeError('RedisEngine needs `redis` (an ioredis Redis or Cluster) or `backend`');
      this.backend = new RedisBackend({ redis: options.redis, subscriber: options.subscriber, keyPrefix: options.keyPrefix, logger: options.logger });
    }
    this.ownsBackend = !options.backend;
    this.redis = this.backend.redis;
    this.kind = this.backend.kind;
    this.keys = this.backend.keys;
    this.scripts = new Scripts(this.redis, PRESENCE_SCRIPTS, { keys: this.keys, keySlackMs: options.keySlackMs ?? 60_000 });
    this.claimTimeoutMs = options.claimTimeoutMs;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.slotsPerReap = options.slotsPerReap ?? 256;
    this.reapConcurrency = options.reapConcurrency ?? 16;
    this.logger = options.logger ?? this.backend.logger;
    if (options.batchHeartbeats !== false) {
      const keys = this.keys;
      const cluster = this.redis.isCluster;
      this.heartbeats = new WriteBatcher<HeartbeatCommand, WriteOutcome>({
        single: (cmd) => this.scripts.run('heartbeat', cmd),
        batch: (cmds) => this.scripts.run('heartbeatBatch', cmds),
        // A batch sends TTL and lookback once; on a Cluster its keys must share a slot.
        groupOf: (cmd) => `${cmd.ttlMs}:${cmd.lookbackMs}:${cluster ? keys.room(cmd.roomId).slot : ''}`,
        uniform: cluster ? undefined : (ws) => ws.every((w) => w.cmd.ttlMs === ws[0]!.cmd.ttlMs && w.cmd.lookbackMs === ws[0]!.cmd.lookbackMs),
        // A heartbeat with a patch publishes an update: the single script's work.
        alone: (cmd) => Boolean(cmd.patch),
        max: MAX_HEARTBEAT_BATCH,
        windowMs: options.heartbeatWindowMs ?? 2,
      });
    }
    if (options.batchRoomWrites !== false) {
      const keys = this.keys;
      // Every key of a call must be in one slot on a Cluster.
      const groupOf = this.redis.isCluster ? (cmd: { roomId: RoomId }): string => String(keys.room(cmd.roomId).slot) : undefined;
      const max = MAX_ROOM_WRITE_BATCH;
      const scripts = this.scripts;
      this.roomWrites = {
        join: new WriteBatcher<JoinCommand, WriteReply<'join'>>({ single: (c) => scripts.run('join', c), batch: (cs) => scripts.run('joinBatch', cs), groupOf, max }),
        leave: new WriteBatcher<LeaveCommand, WriteReply<'leave'>>({ single: (c) => scripts.run('leave', c), batch: (cs) => scripts.run('leaveBatch', cs), groupOf, max }),
        disconnect: new WriteBatcher<DisconnectCommand, WriteReply<'disconnect'>>({ single: (c) => scripts.run('disconnect', c), batch: (cs) => scripts.run('disconnectBatch', cs), groupOf, max }),
      };
    }
  }

  /** One join, leave or disconnect: a share of this turn's call of its kind (`batchRoomWrites`), or a call of its own. */
  private async roomWrite<K extends 'join' | 'leave' | 'disconnect'>(name: K, cmd: InputOf<PresenceScripts[K]>): Promise<ReplyOf<PresenceScripts[K]>> {
    const batcher = this.roomWrites?.[name] as WriteBatcher<InputOf<PresenceScripts[K]>, WriteReply<K>> | undefined;
    const res = batcher ? await batcher.add(cmd) : await this.scripts.run(name, cmd);
    if (res instanceof Error) throw res;
    return res;
  }

  /** Lowers the slot's entry in the reaper hint after a write moved a deadline earlier. */
  private lowerHint(slot: number, lowered: number | undefined): void {
    if (lowered === undefined) return;
    this.redis.zadd(this.keys.hint, 'LT', lowered, String(slot)).catch((err: unknown) => {
      // The periodic sweep repairs a lost hint update.
      this.logger.warn({ err, slot }, 'could not lower the reaper hint');
    });
  }

  async join(cmd: JoinCommand): Promise<JoinOutcome> {
    const res = await this.roomWrite('join', cmd);
    if (!res.ok) return res;
    this.lowerHint(this.keys.room(cmd.roomId).slot, res.lowered);
    if (res.upToDate) return { ok: true, connId: res.connId, epoch: res.epoch, mode: 'resumed', upToDate: true, seq: res.seq };
    return { ok: true, connId: res.connId, epoch: res.epoch, mode: res.mode, snapshot: buildSnapshot(cmd.roomId, res.seq, res.connections) };
  }

  /** The hot path: a share of one script call (the heartbeats of this event-loop turn), its reply handed on as it is (every heartbeat reply is a `WriteOutcome`). */
  heartbeat(cmd: HeartbeatCommand): Promise<WriteOutcome> {
    return this.heartbeats ? this.heartbeats.add(cmd) : this.scripts.run('heartbeat', cmd);
  }

  leave(cmd: LeaveCommand): Promise<WriteOutcome> {
    return this.roomWrite('leave', cmd);
  }

  async disconnect(cmd: DisconnectCommand): Promise<WriteOutcome> {
    const res = await this.roomWrite('disconnect', cmd);
    if (!res.ok) return res;
    this.lowerHint(this.keys.room(cmd.roomId).slot, res.lowered);
    return { ok: true, epoch: res.epoch };
  }

  async snapshot(roomId: RoomId, now: number): Promise<RoomSnapshot> {
    const res = await this.scripts.run('snapshot', { roomId, now });
    return buildSnapshot(roomId, res.seq, res.connections);
  }

  // -- reaper -------------------------------------------------------------

  /**
   * Reaps what is due, in rounds: read up to `slotsPerReap` due slots (and
   * claims left by a reaper that died) from the hint, claim them in one call,
   * visit each with one reap-slot script (`reapConcurrency` in flight), and
   * release them in one call. Rounds repeat until no slot is due, `limit`
   * leaves were emitted, or `budgetMs` passed; so the work of a pass follows
   * what is due, with no fixed cap on slots.
   */
  async reap(cmd: ReapCommand): Promise<ReapResult> {
    const started = performance.now();
    if (cmd.now - this.lastSweep >= this.sweepIntervalMs) {
      this.lastSweep = cmd.now;
      await this.sweep();
    }
    const claimTimeoutMs = this.claimTimeoutMs ?? Math.max(2 * cmd.intervalMs, 1_000);
    const result: ReapResult = { leaves: 0, visitedRooms: 0, visitedSlots: 0, more: false, backlog: 0, lagMs: 0, ended: [] };
    for (;;) {
      if (result.leaves >= cmd.limit || performance.now() - started >= cmd.budgetMs) {
        result.more = true;
        break;
      }
      const round = await this.reapRound(cmd, claimTimeoutMs, cmd.limit - result.leaves, result.ended!);
      result.leaves += round.leaves;
      result.visitedRooms += round.rooms;
      result.visitedSlots += round.slots;
      if (!round.full) break;
    }
    if (result.more) {
      // Only when behind: two cheap reads of the hint for the backlog metrics.
      const [count, first] = await Promise.all([this.redis.zcount(this.keys.hint, '-inf', cmd.now), this.redis.zrange(this.keys.hint, 0, 0, 'WITHSCORES')]);
      result.backlog = count;
      const oldest = first[1] === undefined ? undefined : Number(first[1]);
      result.lagMs = oldest !== undefined && oldest <= cmd.now ? cmd.now - oldest : 0;
      result.more = count > 0;
    }
    return result;
  }

  /** One round; `full` = the round read a full page of slots, or a slot still has due rooms: there may be more. */
  private async reapRound(cmd: ReapCommand, claimTimeoutMs: number, budget: number, ended: ReapedConnection[]): Promise<{ leaves: number; rooms: number; slots: number; full: boolean }> {
    const hint = this.keys.hint;
    const [due, stale] = await Promise.all([
      this.redis.zrangebyscore(hint, '-inf', cmd.now, 'WITHSCORES', 'LIMIT', 0, this.slotsPerReap),
      this.redis.zrangebyscore(hint, CLAIM_BASE, CLAIM_BASE + cmd.now - claimTimeoutMs, 'WITHSCORES', 'LIMIT', 0, this.slotsPerReap),
    ]);
    const read: Array<{ slot: number; observed: string }> = [];
    for (const list of [due, stale]) for (let i = 0; i + 1 < list.length; i += 2) read.push({ slot: Number(list[i]), observed: list[i + 1]! });
    if (read.length === 0) return { leaves: 0, rooms: 0, slots: 0, full: false };
    const claim = CLAIM_BASE + cmd.now;
    const won = await this.scripts.run('claimSlots', { claim, slots: read });
    const slots = read.filter((_, i) => won[i]).map((s) => s.slot);
    // Until a visit succeeds, a claimed slot is released as due now, so the next pass retries it.
    const finished: Array<{ slot: number; newMin: string | undefined }> = slots.map((slot) => ({ slot, newMin: String(cmd.now) }));
    let leaves = 0;
    let rooms = 0;
    let stillDue = false;
    let failure: { err: unknown } | undefined;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < slots.length && !failure) {
        const i = next++;
        try {
          const r = await this.scripts.run('reapSlot', {
            slot: slots[i]!,
            now: cmd.now,
            // Re-score rooms coming due within a third of the TTL (one heartbeat period) in the same call.
            horizon: cmd.now + Math.floor(cmd.ttlMs / 3),
            ttlMs: cmd.ttlMs,
            lookbackMs: cmd.lookbackMs,
            roomLimit: ROOMS_PER_SLOT_CALL,
            leaveLimit: Math.max(1, budget - leaves),
          });
          leaves += r.leaves;
          rooms += r.rooms;
          for (const e of r.ended) ended.push(e);
          if (r.newMin !== undefined && Number(r.newMin) <= cmd.now) stillDue = true;
          finished[i]!.newMin = r.newMin;
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.reapConcurrency, slots.length) }, worker));
    if (finished.length > 0) {
      await this.scripts.run('finishSlots', { claim, slots: finished }).catch((err: unknown) => {
        this.logger.warn({ err, slots: finished.length }, 'could not release reaper claims; another reaper takes them over after the claim timeout');
      });
    }
    if (failure) throw failure.err;
    return { leaves, rooms, slots: slots.length, full: stillDue || due.length / 2 >= this.slotsPerReap || stale.length / 2 >= this.slotsPerReap };
  }

  /**
   * Re-indexes every non-empty slot index into the hint. Writers lower the
   * hint after their script; a node that dies between the two leaves the
   * hint too high, and this sweep repairs it within `sweepIntervalMs`.
   */
  async sweep(): Promise<void> {
    const nodes: Redis[] = this.redis.isCluster ? (this.redis as Cluster).nodes('master') : [this.redis as Redis];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', this.keys.slotIndexPattern, 'COUNT', 1000);
        cursor = next;
        await Promise.all(
          found.map(async (key) => {
            const first = await node.zrange(key, 0, 0, 'WITHSCORES');
            if (first[1] !== undefined) {
              const slot = this.slotOfIndexKey(key);
              if (slot !== undefined) await this.redis.zadd(this.keys.hint, 'LT', first[1], String(slot));
            }
          }),
        );
      } while (cursor !== '0');
    }
  }

  private slotOfIndexKey(key: string): number | undefined {
    const m = /\{([^}]*)\}$/.exec(key);
    if (!m) return undefined;
    // The room names in a slot index all hash to the slot; recompute it from the tag.
    return this.keys.slotOfTag(m[1]!);
  }

  // -- pub/sub ------------------------------------------------------------

  /** One SSUBSCRIBE per room, on the backend's shared subscriber connection; the node's Hub calls this once per room. */
  async subscribe(roomId: RoomId, listener: (item: RoomFeedItem) => void): Promise<() => Promise<void>> {
    const channel = this.keys.room(roomId).channel;
    return this.backend.subscribe(channel, this.decoding<RoomFeedItem>(channel, listener));
  }

  /**
   * SPUBLISH on the room's own channel, from the command connection that also
   * runs the room's scripts: Redis runs one connection's commands in order, so
   * a message is ordered with the events of the same room.
   */
  async publish(roomId: RoomId, message: RoomMessage): Promise<void> {
    const item: RoomFeedItem = { type: 'message', message };
    await this.redis.spublish(this.keys.room(roomId).channel, JSON.stringify(item));
  }

  /**
   * Every presence event of every room, from every node: the scripts also
   * PUBLISH each leave on `<prefix>leaves` and every other event on
   * `<prefix>events`. Both channels are on the backend's one classic
   * subscriber connection, which Redis sends messages in the order they were
   * published, so a room's events stay in order.
   */
  async subscribeAll(listener: (event: PresenceEvent) => void): Promise<() => Promise<void>> {
    const offLeaves = await this.subscribeLeaves(listener);
    try {
      const channel = this.keys.allEvents;
      const offEvents = await this.backend.subscribeGlobal(channel, this.decoding<PresenceEvent>(channel, listener));
      return async () => {
        await Promise.all([offEvents(), offLeaves()]);
      };
    } catch (err) {
      await offLeaves().catch(() => undefined);
      throw err;
    }
  }

  /** Every leave of every room, from every node (`<prefix>leaves`): the joins and updates are not sent to this node at all. */
  async subscribeLeaves(listener: (event: PresenceEvent) => void): Promise<() => Promise<void>> {
    const channel = this.keys.allLeaves;
    return this.backend.subscribeGlobal(channel, this.decoding<PresenceEvent>(channel, listener));
  }

  /** A pub/sub listener that parses each message (published by our scripts or `publish`) before handing it on. */
  private decoding<T>(channel: string, listener: (item: T) => void): (message: string) => void {
    return (message) => {
      let item: T;
      try {
        item = JSON.parse(message) as T;
      } catch (err) {
        this.logger.error({ err, channel }, 'unparseable pub/sub message');
        return;
      }
      listener(item);
    };
  }

  isUnavailable(err: unknown): boolean {
    return isConnectionError(err);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Closes the subscriber connection when the engine made its own backend; never the `redis` client it was given. */
  /** A restart or failover of Redis that replaced the data (see RedisBackend.onReset). */
  onReset(listener: (reset: StorageReset) => void): () => void {
    return this.backend.onReset(listener);
  }

  async close(): Promise<void> {
    if (this.ownsBackend) await this.backend.close();
  }
}

/**
 * Errors of ioredis that mean Redis cannot be reached right now: retries
 * exhausted while disconnected, a closed or unwritable connection, a refused
 * or reset socket, a command timeout, a cluster without a quorum or a
 * loading replica. Anything else (a script error, a wrong type) is a bug.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return /Connection is closed|Stream isn't writeable|isn't ready and enableOfflineQueue|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Command timed out|CLUSTERDOWN|TRYAGAIN|LOADING|Failed to refresh slots cache|None of startup nodes is available/.test(err.message);
}
