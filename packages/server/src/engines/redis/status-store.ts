import type { Cluster, Redis } from 'ioredis';
import type { ManualStatus, StatusRecord, UserId } from 'realtime-message-protocol';
import { toRecord, type StatusState } from '../../core/status/model.js';
import type { StatusCommand, StatusFeedItem, StatusFeedState, StatusStore, StatusWriteResult, SweepCommand, SweepResult } from '../../core/status/store.js';
import { WriteBatcher } from './write-batcher.js';
import type { Logger } from '../../core/shared/logger.js';
import type { RedisBackend } from './backend.js';
import { isConnectionError } from './redis-engine.js';
import { Scripts } from './scripts/script.js';
import { claimSlots } from './scripts/claim-slots.js';
import { finishSlots } from './scripts/finish-slots.js';
import { statusRepairPage } from './scripts/status-repair.js';
import { statusSweepSlot } from './scripts/status-sweep.js';
import { MAX_STATUS_BATCH, statusWrite, statusWriteBatch, type StatusWriteInput, type StatusWriteReply } from './scripts/status-write.js';

const STATUS_SCRIPTS = { statusWrite, statusWriteBatch, statusSweepSlot, claimSlots, finishSlots };

/** Claimed hint entries score CLAIM_BASE + claim time: above every real deadline, below 2^53 (as the presence reaper). */
const CLAIM_BASE = 1e15;

export interface RedisStatusStoreOptions {
  /** The node's Redis backend (command client, subscriber connection, key space), shared with presence. */
  backend: RedisBackend;
  /** How long a user's record lives after its last write; then the user reads as never seen. @default 30 days */
  retentionMs?: number;
  /** How long the mark of an ended presence connection is kept (late or repeated events of it are ignored). @default 600000 */
  connRetentionMs?: number;
  /** Slots claimed per sweep round. @default 256 */
  slotsPerSweep?: number;
  /** A sweeper's claim older than this is taken over (the sweeper died). @default 2 × the sweep interval, at least 1000 */
  claimTimeoutMs?: number;
  /**
   * How often a repair pass starts, which re-indexes every slot's deadline
   * index into the hint (a writer that died between its script and the
   * hint). A pass goes one SCAN page per sweep, so it never holds the sweeper
   * or floods Redis and the node at once. @default 60000
   */
  repairIntervalMs?: number;
  /** Keys one SCAN page of the repair looks at (SCAN's COUNT). @default 2000 */
  repairPageSize?: number;
  /**
   * Least time between two sends of connection changes (the status bridge's
   * joins and leaves, `type: 'conn'`): within it they wait and go together,
   * in one script call for many (on a Cluster, one per slot; see
   * {@link WriteBatcher}). 0: those of one event-loop turn go together at
   * its end. @default 5
   */
  connWindowMs?: number;
  logger?: Logger;
}

/**
 * User status in Redis (single or Cluster). Every write is one script on the
 * user's keys (`{user:<id>}`), which also detects a change of the effective
 * status or message, PUBLISHes the feed message (with the event) and moves the
 * user in its slot's deadline index. Deadlines are found through a hint of
 * due slots (`sduehint`), swept by every node with compare-and-set claims,
 * as the presence reaper does. With the backend log on, every event is also
 * appended to the log by the same script. See docs/status.md.
 */
export class RedisStatusStore implements StatusStore {
  readonly kind: string;
  readonly reportsEnds = true;
  private readonly backend: RedisBackend;
  private readonly scripts: Scripts<typeof STATUS_SCRIPTS>;
  private readonly retentionMs: number;
  private readonly connRetentionMs: number;
  private readonly slotsPerSweep: number;
  private readonly claimTimeoutMs: number | undefined;
  private readonly repairIntervalMs: number;
  private readonly repairPageSize: number;
  private readonly logger: Logger;
  /** When the latest repair pass started. */
  private lastRepair = 0;
  /** The repair pass under way: the masters still to scan (the first at `cursor`). */
  private repairPass: { nodes: Redis[]; cursor: string } | undefined;
  /** Connection changes, gathered per window into batch calls. */
  private readonly connWrites: WriteBatcher<StatusWriteInput, StatusWriteReply | Error>;

  constructor(options: RedisStatusStoreOptions) {
    this.backend = options.backend;
    this.kind = this.backend.kind;
    this.scripts = new Scripts(this.backend.redis, STATUS_SCRIPTS, { keys: this.backend.keys, keySlackMs: 0 });
    this.retentionMs = options.retentionMs ?? 30 * 24 * 3_600_000;
    this.connRetentionMs = options.connRetentionMs ?? 600_000;
    this.slotsPerSweep = options.slotsPerSweep ?? 256;
    this.claimTimeoutMs = options.claimTimeoutMs;
    this.repairIntervalMs = options.repairIntervalMs ?? 60_000;
    this.repairPageSize = options.repairPageSize ?? 2_000;
    this.logger = options.logger ?? this.backend.logger;
    const keys = this.backend.keys;
    this.connWrites = new WriteBatcher<StatusWriteInput, StatusWriteReply | Error>({
      single: (input) => this.scripts.run('statusWrite', input),
      batch: (inputs) => this.scripts.run('statusWriteBatch', inputs),
      // Every key of a call must be in one slot on a Cluster.
      groupOf: this.backend.redis.isCluster ? (input) => String(keys.user(input.cmd.userId).slot) : undefined,
      max: MAX_STATUS_BATCH,
      windowMs: options.connWindowMs ?? 5,
    });
  }

  private get redis() {
    return this.backend.redis;
  }

  async read(userIds: readonly UserId[]): Promise<Array<StatusState | undefined>> {
    const keys = this.backend.keys;
    // One HGETALL per user: users lie in different slots, and commands sent together share the connection's pipeline.
    const flats = await Promise.all(userIds.map((id) => this.redis.hgetall(keys.user(id).record)));
    return flats.map((h) => decodeState(h));
  }

  async write(cmd: StatusCommand): Promise<StatusWriteResult> {
    const log = this.backend.log;
    const slot = this.backend.keys.user(cmd.userId).slot;
    const input: StatusWriteInput = { cmd, channel: this.backend.keys.statusChannel, keepMs: this.retentionMs, connRetentionMs: this.connRetentionMs, log: log?.target(cmd.userId, slot) };
    const res = cmd.type === 'conn' ? await this.connWrites.add(input) : await this.scripts.run('statusWrite', input);
    // A batch answers a write's own error (a refused backend log) in its place.
    if (res instanceof Error) throw res;
    if (res.evented) log?.written(slot);
    if (res.lowered !== undefined) this.lowerHint(this.backend.keys.user(cmd.userId).slot, res.lowered);
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < res.flat.length; i += 2) h[res.flat[i]!] = res.flat[i + 1]!;
    const state = decodeState(h);
    const event: StatusRecord | undefined = res.evented && state ? toRecord(cmd.userId, state, cmd.now, cmd.awayAfterMs) : undefined;
    return { state, event };
  }

  private lowerHint(slot: number, lowered: number): void {
    this.redis.zadd(this.backend.keys.statusHint, 'LT', lowered, String(slot)).catch((err: unknown) => {
      // The periodic repair re-indexes a lost hint update.
      this.logger.warn({ err, slot }, 'could not lower the status hint');
    });
  }

  /**
   * One round: read due slots (and claims of sweepers that died) from the
   * hint, claim them by compare-and-set, visit each with one script, release
   * the claims with each slot's new minimum.
   */
  async sweep(cmd: SweepCommand): Promise<SweepResult> {
    if (!this.repairPass && cmd.now - this.lastRepair >= this.repairIntervalMs) {
      this.lastRepair = cmd.now;
      this.repairPass = { nodes: this.masters(), cursor: '0' };
    }
    if (this.repairPass) await this.repairStep(this.repairPass);
    const hint = this.backend.keys.statusHint;
    const claimTimeoutMs = this.claimTimeoutMs ?? Math.max(2 * cmd.intervalMs, 1_000);
    const [due, stale] = await Promise.all([
      this.redis.zrangebyscore(hint, '-inf', cmd.now, 'WITHSCORES', 'LIMIT', 0, this.slotsPerSweep),
      this.redis.zrangebyscore(hint, CLAIM_BASE, CLAIM_BASE + cmd.now - claimTimeoutMs, 'WITHSCORES', 'LIMIT', 0, this.slotsPerSweep),
    ]);
    const read: Array<{ slot: number; observed: string }> = [];
    for (const list of [due, stale]) for (let i = 0; i + 1 < list.length; i += 2) read.push({ slot: Number(list[i]), observed: list[i + 1]! });
    const result: SweepResult = { visited: 0, events: 0, more: false };
    if (read.length === 0) return result;
    const claim = CLAIM_BASE + cmd.now;
    const won = await this.scripts.run('claimSlots', { hint: 'status', claim, slots: read });
    const slots = read.filter((_, i) => won[i]).map((s) => s.slot);
    // Until a visit succeeds, a claimed slot is released as due now, so the next pass retries it.
    const finished = slots.map((slot) => ({ slot, newMin: String(cmd.now) as string | undefined }));
    let failure: { err: unknown } | undefined;
    await Promise.all(
      slots.map(async (slot, i) => {
        try {
          const r = await this.scripts.run('statusSweepSlot', {
            slot,
            now: cmd.now,
            nodeId: cmd.nodeId,
            awayAfterMs: cmd.awayAfterMs,
            channel: this.backend.keys.statusChannel,
            keepMs: this.retentionMs,
            limit: cmd.limit,
            // On a single Redis the script finds each user's partition itself; the declared key matters on a Cluster only (the slot's outbox).
            log: this.backend.log?.target('', slot),
          });
          if (r.events > 0) this.backend.log?.written(slot);
          result.visited += r.visited;
          result.events += r.events;
          if (r.newMin !== undefined && Number(r.newMin) <= cmd.now) result.more = true;
          finished[i]!.newMin = r.newMin;
        } catch (err) {
          failure ??= { err };
        }
      }),
    );
    if (finished.length > 0) {
      await this.scripts.run('finishSlots', { hint: 'status', claim, slots: finished }).catch((err: unknown) => {
        this.logger.warn({ err, slots: finished.length }, 'could not release status sweep claims; another sweeper takes them over after the claim timeout');
      });
    }
    if (failure) throw failure.err;
    if (due.length / 2 >= this.slotsPerSweep || stale.length / 2 >= this.slotsPerSweep) result.more = true;
    return result;
  }

  /** Re-indexes every non-empty slot deadline index into the hint (repairs a writer that died between its script and the hint), in one go. */
  async repair(): Promise<void> {
    const pass = { nodes: this.masters(), cursor: '0' };
    while (pass.nodes.length > 0) await this.repairStep(pass);
  }

  private masters(): Redis[] {
    return this.redis.isCluster ? (this.redis as Cluster).nodes('master') : [this.redis as Redis];
  }

  /**
   * One SCAN page of a repair pass (its first node, from its cursor), read
   * by one script on that node, and one ZADD of what it found. A pass
   * over 100,000 users at once took the node about 32,000 commands within
   * seconds, a major GC and the sweeper's time meanwhile; page by page it is
   * spread over the sweeps. A failure ends the pass (the next starts afresh).
   */
  private async repairStep(pass: { nodes: Redis[]; cursor: string }): Promise<void> {
    const keys = this.backend.keys;
    const node = pass.nodes[0];
    try {
      if (node) {
        const { next, firsts } = await statusRepairPage(node, pass.cursor, keys.statusDueIndexPattern, this.repairPageSize);
        if (firsts.length > 0) {
          const pairs: string[] = [];
          for (let k = 0; k + 1 < firsts.length; k += 2) pairs.push(firsts[k]!, String(keys.slotOfTag(firsts[k + 1]!)));
          await this.redis.zadd(keys.statusHint, 'LT', ...pairs);
        }
        pass.cursor = next;
        if (next === '0') pass.nodes.shift();
      }
    } catch (err) {
      pass.nodes.length = 0;
      throw err;
    } finally {
      if (pass.nodes.length === 0 && this.repairPass === pass) this.repairPass = undefined;
    }
  }

  /**
   * Every write of every user from every node, on the backend's shared
   * subscriber connection (classic pub/sub: every node of a cluster; there,
   * a connection of its own to one node, see RedisBackend.subscribeGlobal).
   * Resolves once Redis confirmed the subscription. `onState` follows that
   * connection: `interrupted` when it closes, `resumed` when it (or one to
   * another node) is subscribed again.
   */
  async subscribe(listener: (item: StatusFeedItem) => void, onState?: (state: StatusFeedState) => void): Promise<() => Promise<void>> {
    const channel = this.backend.keys.statusChannel;
    // Watched before subscribing, so that a drop during the subscription is seen.
    const offState = onState ? this.backend.onSubscriberState((s) => onState(s === 'up' ? 'resumed' : 'interrupted')) : () => {};
    let off: () => Promise<void>;
    try {
      off = await this.subscribeFeed(channel, listener);
    } catch (err) {
      offState();
      throw err;
    }
    return async () => {
      offState();
      await off();
    };
  }

  private subscribeFeed(channel: string, listener: (item: StatusFeedItem) => void): Promise<() => Promise<void>> {
    return this.backend.subscribeGlobal(channel, (message) => {
      let raw: { u: UserId; v: number; e?: StatusRecord; c?: string; k?: number };
      try {
        raw = JSON.parse(message) as { u: UserId; v: number; e?: StatusRecord; c?: string; k?: number };
      } catch (err) {
        this.logger.error({ err, channel }, 'unparseable status feed message');
        return;
      }
      listener(raw.c === undefined ? { userId: raw.u, version: raw.v, event: raw.e } : { userId: raw.u, version: raw.v, event: raw.e, ended: { conn: raw.c, rank: Number(raw.k) } });
    });
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  isUnavailable(err: unknown): boolean {
    return isConnectionError(err);
  }

  /** Nothing of its own to close: the backend (and its subscriber) belongs to the composition root. */
  async close(): Promise<void> {}
}

const int = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v));

/** A record hash (HGETALL) as a state; undefined for a missing record. */
function decodeState(h: Record<string, string>): StatusState | undefined {
  if (h.v === undefined) return undefined;
  return {
    version: Number(h.v),
    seq: int(h.seq) ?? 0,
    connected: (int(h.n) ?? 0) > 0,
    keepAliveUntil: int(h.ka),
    manual: (h.ms as ManualStatus | undefined) ?? null,
    manualExpiresAt: int(h.mx),
    message: h.m ?? null,
    messageExpiresAt: int(h.mmx),
    lastSeen: int(h.ls),
    lastActivity: int(h.la),
    updatedAt: Number(h.ua),
    nodeId: h.nd ?? '',
  };
}
