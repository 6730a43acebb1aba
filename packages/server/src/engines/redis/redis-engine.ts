import { Cluster, type Redis } from 'ioredis';
import type { ConnId, ConnectionInfo, PresenceState, RoomId, RoomMessage, RoomSnapshot, UserId } from 'realtime-message-protocol';
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
import type { KeySpace, RoomKeys } from './keys.js';
import * as lua from './scripts.js';

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

type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;
interface ScriptClient {
  rmJoin: ScriptFn;
  rmHeartbeat: ScriptFn;
  rmLeave: ScriptFn;
  rmDisconnect: ScriptFn;
  rmSnapshot: ScriptFn;
  rmReapRoom: ScriptFn;
  rmClaimSlot: ScriptFn;
  rmFinishSlot: ScriptFn;
}

const SCRIPTS: Array<[keyof ScriptClient, number, string]> = [
  ['rmJoin', 6, lua.JOIN],
  ['rmHeartbeat', 1, lua.HEARTBEAT],
  ['rmLeave', 5, lua.LEAVE],
  ['rmDisconnect', 5, lua.DISCONNECT],
  ['rmSnapshot', 2, lua.SNAPSHOT],
  ['rmReapRoom', 4, lua.REAP_ROOM],
  ['rmClaimSlot', 1, lua.CLAIM_SLOT],
  ['rmFinishSlot', 1, lua.FINISH_SLOT],
];

/** Registers the engine's scripts on a client (EVALSHA, with EVAL on NOSCRIPT, done by ioredis). */
function withScripts(redis: RedisClient): ScriptClient {
  const r = redis as RedisClient & Partial<ScriptClient>;
  for (const [name, numberOfKeys, body] of SCRIPTS) {
    if (typeof r[name] !== 'function') r.defineCommand(name, { numberOfKeys, lua: body });
  }
  return r as unknown as ScriptClient;
}

function parseRows(rows: unknown[]): ConnectionInfo[] {
  const out: ConnectionInfo[] = [];
  for (let i = 0; i < rows.length; i += 2) {
    const connId = rows[i] as ConnId;
    const flat = rows[i + 1] as string[];
    const state: PresenceState = {};
    let userId = '' as UserId;
    let epoch = 0;
    let joinedAt = 0;
    let lastSeen = 0;
    for (let j = 0; j < flat.length; j += 2) {
      const f = flat[j]!;
      const v = flat[j + 1]!;
      if (f.charCodeAt(0) === 61 /* = */) state[JSON.parse(f.slice(1)) as string] = JSON.parse(v) as PresenceState[string];
      else if (f === '.u') userId = v as UserId;
      else if (f === '.e') epoch = Number(v);
      else if (f === '.j') joinedAt = Number(v);
      else if (f === '.l') lastSeen = Number(v);
    }
    if (userId) out.push({ connId, userId, state, epoch, joinedAt, lastSeen });
  }
  return out;
}

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
  private readonly scripts: ScriptClient;
  private readonly keys: KeySpace;
  private readonly keySlackMs: number;
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
    this.scripts = withScripts(this.redis);
    this.keys = this.backend.keys;
    this.keySlackMs = options.keySlackMs ?? 60_000;
    this.claimTimeoutMs = options.claimTimeoutMs ?? 30_000;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.slotsPerReap = options.slotsPerReap ?? 64;
    this.logger = options.logger ?? this.backend.logger;
  }

  private keep(ttlMs: number, lookbackMs: number): number {
    return ttlMs + lookbackMs + this.keySlackMs;
  }

  /** Lowers the slot's entry in the reaper hint after a write moved a deadline earlier. */
  private lowerHint(slot: number, lowered: unknown): void {
    if (typeof lowered !== 'string' || lowered === '') return;
    this.redis.zadd(this.keys.hint, 'LT', lowered, String(slot)).catch((err: unknown) => {
      // The periodic sweep repairs a lost hint update.
      this.logger.warn({ err, slot }, 'could not lower the reaper hint');
    });
  }

  private roomKeys(roomId: RoomId): RoomKeys {
    return this.keys.room(roomId);
  }

  async join(cmd: JoinCommand): Promise<JoinOutcome> {
    const k = this.roomKeys(cmd.roomId);
    const args: Array<string | number> = [
      k.seq, k.exp, k.tomb, k.slotIndex,
      k.connPrefix + (cmd.resumeConnId ?? cmd.freshConnId),
      k.connPrefix + cmd.freshConnId,
      cmd.roomId, cmd.userId, cmd.resumeConnId ?? '', cmd.freshConnId,
      cmd.now, cmd.ttlMs, cmd.lookbackMs, this.keep(cmd.ttlMs, cmd.lookbackMs),
      k.channel, k.connPrefix, cmd.state === undefined ? '0' : '1',
    ];
    if (cmd.state) for (const [key, v] of Object.entries(cmd.state)) args.push('=' + JSON.stringify(key), JSON.stringify(v));
    const res = (await this.scripts.rmJoin(...args)) as unknown[];
    if (res[0] === 'forbidden') return { ok: false, code: 'forbidden' };
    const [, connId, epoch, mode, seq, lowered, rows] = res as [string, ConnId, number, 'new' | 'resumed' | 'rejoined', number, string, unknown[]];
    this.lowerHint(k.slot, lowered);
    return { ok: true, connId, epoch, mode, snapshot: buildSnapshot(cmd.roomId, seq, parseRows(rows)) };
  }

  /** Reply of the leave and disconnect scripts: {'ok', epoch, ...} or {code}. */
  private static outcome(res: unknown[]): WriteOutcome {
    if (res[0] === 'ok') return { ok: true, epoch: Number(res[1]) };
    return { ok: false, code: res[0] === 'stale_epoch' ? 'stale_epoch' : 'not_joined' };
  }

  async heartbeat(cmd: HeartbeatCommand): Promise<WriteOutcome> {
    const k = this.roomKeys(cmd.roomId);
    const args: Array<string | number> = [
      k.exp, k.prefix, cmd.connId, cmd.epoch, cmd.now, cmd.ttlMs, cmd.lookbackMs, this.keep(cmd.ttlMs, cmd.lookbackMs), cmd.maxStateBytes,
    ];
    if (cmd.patch) for (const [key, v] of cmd.patch) args.push('=' + JSON.stringify(key), v ?? '');
    const res = (await this.scripts.rmHeartbeat(...args)) as number | string;
    if (typeof res === 'number') return { ok: true, epoch: res };
    if (res === 'stale_epoch') return { ok: false, code: 'stale_epoch' };
    if (res === 'disconnected') return { ok: false, code: 'not_joined', message: 'connection was disconnected; join again with its connId to resume' };
    if (res.startsWith('payload_too_large:')) {
      return { ok: false, code: 'payload_too_large', message: `state after the patch would be ${res.slice(18)} bytes; the limit is ${cmd.maxStateBytes}` };
    }
    return { ok: false, code: 'not_joined' };
  }

  /** KEYS and leading ARGV shared by the leave and disconnect scripts; the caller appends its last argument. */
  private connWriteArgs(cmd: LeaveCommand | DisconnectCommand, k: RoomKeys): Array<string | number> {
    return [
      k.seq, k.exp, k.tomb, k.slotIndex, k.connPrefix + cmd.connId,
      cmd.roomId, cmd.connId, cmd.epoch, cmd.now, cmd.lookbackMs, this.keep(cmd.ttlMs, cmd.lookbackMs), k.channel,
    ];
  }

  async leave(cmd: LeaveCommand): Promise<WriteOutcome> {
    const k = this.roomKeys(cmd.roomId);
    const res = (await this.scripts.rmLeave(...this.connWriteArgs(cmd, k), cmd.reason)) as unknown[];
    return RedisEngine.outcome(res);
  }

  async disconnect(cmd: DisconnectCommand): Promise<WriteOutcome> {
    const k = this.roomKeys(cmd.roomId);
    const res = (await this.scripts.rmDisconnect(...this.connWriteArgs(cmd, k), cmd.graceMs)) as unknown[];
    if (res[0] === 'ok') this.lowerHint(k.slot, res[2]);
    return RedisEngine.outcome(res);
  }

  async snapshot(roomId: RoomId, now: number): Promise<RoomSnapshot> {
    const k = this.roomKeys(roomId);
    const [seq, rows] = (await this.scripts.rmSnapshot(k.seq, k.exp, now, k.connPrefix)) as [string, unknown[]];
    return buildSnapshot(roomId, Number(seq), parseRows(rows));
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
    const claimed = await this.scripts.rmClaimSlot(this.keys.hint, slot, observed, claim);
    if (claimed !== 1) return 0; // another reaper has it, or a writer changed it
    const index = this.keys.slotIndex(slot);
    let leaves = 0;
    let newMin = '';
    try {
      for (;;) {
        const rooms = (await this.redis.zrangebyscore(index, '-inf', cmd.now, 'LIMIT', 0, ROOMS_PER_SLOT_BATCH)) as RoomId[];
        const results = await Promise.all(rooms.map((room) => this.reapRoom(room, cmd, Math.max(1, budget - leaves))));
        let more = false;
        for (const [n, m] of results) {
          leaves += n;
          more ||= m;
        }
        if ((rooms.length < ROOMS_PER_SLOT_BATCH && !more) || leaves >= budget) break;
      }
      const first = await this.redis.zrange(index, 0, 0, 'WITHSCORES');
      newMin = first[1] ?? '';
    } catch (err) {
      // Leave the slot due so the next pass retries it.
      newMin = String(cmd.now);
      throw err;
    } finally {
      await this.scripts.rmFinishSlot(this.keys.hint, slot, claim, newMin).catch((err: unknown) => {
        this.logger.warn({ err, slot }, 'could not release a reaper claim; another reaper takes it over after the claim timeout');
      });
    }
    return leaves;
  }

  private async reapRoom(roomId: RoomId, cmd: ReapCommand, limit: number): Promise<[number, boolean]> {
    const k = this.roomKeys(roomId);
    const [leaves, more] = (await this.scripts.rmReapRoom(
      k.seq, k.exp, k.tomb, k.slotIndex,
      roomId, cmd.now, cmd.lookbackMs, this.keep(cmd.ttlMs, cmd.lookbackMs), k.channel, k.connPrefix, limit,
    )) as [number, number];
    return [leaves, more === 1];
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
    const channel = this.roomKeys(roomId).channel;
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
    await this.redis.spublish(this.roomKeys(roomId).channel, JSON.stringify(item));
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Closes the subscriber connection when the engine made its own backend; never the `redis` client it was given. */
  async close(): Promise<void> {
    if (this.ownsBackend) await this.backend.close();
  }
}
