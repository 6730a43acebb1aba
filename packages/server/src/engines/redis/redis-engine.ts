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
  RoomFeedItem,
  WriteOutcome,
} from '../../core/presence/engine.js';
import type { Logger } from '../../core/shared/logger.js';
import { buildSnapshot } from '../../core/presence/snapshot.js';
import { RedisBackend, type RedisClient } from './backend.js';
import type { KeySpace } from './keys.js';
import { PRESENCE_SCRIPTS, Scripts } from './scripts/index.js';

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
  /** A reaper claim older than this is taken over by another reaper. @default 30000 */
  claimTimeoutMs?: number;
  /** Period of the sweep that re-indexes every slot (safety net for a node that died mid-write). @default 60000 */
  sweepIntervalMs?: number;
  /** Most slots one reap call visits. @default 64 */
  slotsPerReap?: number;
  logger?: Logger;
}

/** Claimed hint entries score CLAIM_BASE + claim time: above every real deadline, below 2^53. */
const CLAIM_BASE = 1e15;
const ROOMS_PER_SLOT_BATCH = 100;

/**
 * Presence in Redis (single instance or Cluster, Redis >= 7.0 for sharded
 * pub/sub). One Lua script round trip per join, heartbeat, leave and
 * disconnect; the script publishes the event with SPUBLISH, so state and
 * event are atomic and events of a room arrive in `seq` order. See
 * docs/presence-model.md for the data model.
 */
export class RedisEngine implements PresenceEngine {
  readonly kind: string;
  private readonly redis: RedisClient;
  private readonly scripts: Scripts<typeof PRESENCE_SCRIPTS>;
  private readonly keys: KeySpace;
  private readonly claimTimeoutMs: number;
  private readonly sweepIntervalMs: number;
  private readonly slotsPerReap: number;
  private readonly logger: Logger;
  private readonly backend: RedisBackend;
  /** True when the engine made its backend (from `redis`) and so closes it. */
  private readonly ownsBackend: boolean;
  private lastSweep = 0;

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
    this.claimTimeoutMs = options.claimTimeoutMs ?? 30_000;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.slotsPerReap = options.slotsPerReap ?? 64;
    this.logger = options.logger ?? this.backend.logger;
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
    const res = await this.scripts.run('join', cmd);
    if (!res.ok) return res;
    this.lowerHint(this.keys.room(cmd.roomId).slot, res.lowered);
    return { ok: true, connId: res.connId, epoch: res.epoch, mode: res.mode, snapshot: buildSnapshot(cmd.roomId, res.seq, res.connections) };
  }

  /** The hot path: one script call, its reply handed on as it is (every heartbeat reply is a `WriteOutcome`). */
  heartbeat(cmd: HeartbeatCommand): Promise<WriteOutcome> {
    return this.scripts.run('heartbeat', cmd);
  }

  leave(cmd: LeaveCommand): Promise<WriteOutcome> {
    return this.scripts.run('leave', cmd);
  }

  async disconnect(cmd: DisconnectCommand): Promise<WriteOutcome> {
    const res = await this.scripts.run('disconnect', cmd);
    if (!res.ok) return res;
    this.lowerHint(this.keys.room(cmd.roomId).slot, res.lowered);
    return { ok: true, epoch: res.epoch };
  }

  async snapshot(roomId: RoomId, now: number): Promise<RoomSnapshot> {
    const res = await this.scripts.run('snapshot', { roomId, now });
    return buildSnapshot(roomId, res.seq, res.connections);
  }

  // -- reaper -------------------------------------------------------------

  async reap(cmd: ReapCommand): Promise<number> {
    if (cmd.now - this.lastSweep >= this.sweepIntervalMs) {
      this.lastSweep = cmd.now;
      await this.sweep();
    }
    const hint = this.keys.hint;
    const [due, stale] = await Promise.all([
      this.redis.zrangebyscore(hint, '-inf', cmd.now, 'WITHSCORES', 'LIMIT', 0, this.slotsPerReap),
      this.redis.zrangebyscore(hint, CLAIM_BASE, CLAIM_BASE + cmd.now - this.claimTimeoutMs, 'WITHSCORES', 'LIMIT', 0, this.slotsPerReap),
    ]);
    const entries = [...due, ...stale];
    let leaves = 0;
    for (let i = 0; i < entries.length && leaves < cmd.limit; i += 2) {
      leaves += await this.reapSlot(Number(entries[i]), entries[i + 1]!, cmd, cmd.limit - leaves);
    }
    return leaves;
  }

  private async reapSlot(slot: number, observed: string, cmd: ReapCommand, budget: number): Promise<number> {
    const claim = CLAIM_BASE + cmd.now;
    const claimed = await this.scripts.run('claimSlot', { slot, observed, claim });
    if (!claimed) return 0; // another reaper has it, or a writer changed it
    const index = this.keys.slotIndex(slot);
    let leaves = 0;
    let newMin: string | undefined;
    try {
      for (;;) {
        const rooms = (await this.redis.zrangebyscore(index, '-inf', cmd.now, 'LIMIT', 0, ROOMS_PER_SLOT_BATCH)) as RoomId[];
        const limit = Math.max(1, budget - leaves);
        const results = await Promise.all(
          rooms.map((roomId) => this.scripts.run('reapRoom', { roomId, now: cmd.now, ttlMs: cmd.ttlMs, lookbackMs: cmd.lookbackMs, limit })),
        );
        let more = false;
        for (const r of results) {
          leaves += r.leaves;
          more ||= r.more;
        }
        if ((rooms.length < ROOMS_PER_SLOT_BATCH && !more) || leaves >= budget) break;
      }
      const first = await this.redis.zrange(index, 0, 0, 'WITHSCORES');
      newMin = first[1];
    } catch (err) {
      // Leave the slot due so the next pass retries it.
      newMin = String(cmd.now);
      throw err;
    } finally {
      await this.scripts.run('finishSlot', { slot, claim, newMin }).catch((err: unknown) => {
        this.logger.warn({ err, slot }, 'could not release a reaper claim; another reaper takes it over after the claim timeout');
      });
    }
    return leaves;
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
    return this.backend.subscribe(channel, (message) => {
      let item: RoomFeedItem;
      try {
        item = JSON.parse(message) as RoomFeedItem;
      } catch (err) {
        this.logger.error({ err, channel }, 'unparseable room feed item');
        return;
      }
      listener(item);
    });
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

  /** Every presence event of every room, from every node (the scripts also PUBLISH each event on `<prefix>events`). */
  async subscribeAll(listener: (event: PresenceEvent) => void): Promise<() => Promise<void>> {
    const channel = this.keys.allEvents;
    return this.backend.subscribeGlobal(channel, (message) => {
      let event: PresenceEvent;
      try {
        event = JSON.parse(message) as PresenceEvent;
      } catch (err) {
        this.logger.error({ err, channel }, 'unparseable presence event');
        return;
      }
      listener(event);
    });
  }

  isUnavailable(err: unknown): boolean {
    return isConnectionError(err);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Closes the subscriber connection when the engine made its own backend; never the `redis` client it was given. */
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
  return /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Command timed out|CLUSTERDOWN|TRYAGAIN|LOADING|Failed to refresh slots cache|None of startup nodes is available/.test(err.message);
}
