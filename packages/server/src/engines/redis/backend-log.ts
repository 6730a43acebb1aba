import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { LogSummary } from '../../core/shared/log-summary.js';
import type { Logger } from '../../core/shared/logger.js';
import type { RedisClient } from './backend.js';
import type { KeySpace } from './keys.js';
import type { LogTarget } from './scripts/log-lua.js';

/** The backend log's settings (`BACKEND_LOG_PARTITIONS`, `BACKEND_LOG_MAXLEN`). */
export interface BackendLogOptions {
  /** Number of partition streams, 1..1024 (0 or absent: no log). */
  partitions: number;
  /** Approximate bound of each partition stream (`XADD MAXLEN ~`). @default 100000 */
  maxLen?: number | undefined;
  /** Cluster only: period of the scan that relays outboxes left by a node that died or lost Redis after its script. @default 10000 */
  repairIntervalMs?: number | undefined;
}

export const BACKEND_LOG_MAX_PARTITIONS = 1024;
export const BACKEND_LOG_DEFAULT_MAXLEN = 100_000;
/** Entries moved per outbox read (and per XDEL). */
const RELAY_BATCH = 256;
/** Slots relayed at once by one node. */
const RELAY_PARALLEL = 32;
/** A relayer's hold on an outbox; refreshed per batch. Past it another node may relay the same entries again (duplicates, never a loss). */
const RELAY_LOCK_MS = 10_000;
const RELAY_BUSY_RETRY_MS = 100;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib, Java's CRC32, Go's crc32.ChecksumIEEE, Python's zlib.crc32) of the UTF-8 bytes of `text`. */
export function crc32(text: string): number {
  let c = 0xffffffff;
  for (const b of Buffer.from(text, 'utf8')) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The partition of a channel name or a user id: `crc32(utf8(name)) mod partitions`. */
export function logPartition(name: string, partitions: number): number {
  return crc32(name) % partitions;
}

/** Checked settings; throws a RangeError naming the bad one. */
export function checkBackendLogOptions(o: BackendLogOptions): { partitions: number; maxLen: number; repairIntervalMs: number } {
  const { partitions } = o;
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > BACKEND_LOG_MAX_PARTITIONS) {
    throw new RangeError(`backendLog.partitions must be an integer 1..${BACKEND_LOG_MAX_PARTITIONS} (got ${String(partitions)})`);
  }
  const maxLen = o.maxLen ?? BACKEND_LOG_DEFAULT_MAXLEN;
  if (!Number.isSafeInteger(maxLen) || maxLen < 1 || maxLen > 1e9) throw new RangeError(`backendLog.maxLen must be an integer 1..1e9 (got ${String(o.maxLen)})`);
  const repairIntervalMs = o.repairIntervalMs ?? 10_000;
  if (!Number.isSafeInteger(repairIntervalMs) || repairIntervalMs < 10) throw new RangeError(`backendLog.repairIntervalMs must be an integer >= 10 (got ${String(o.repairIntervalMs)})`);
  return { partitions, maxLen, repairIntervalMs };
}

/** Deletes the relayed ids (and the outbox once empty); refreshes the lock while it is still ours. KEYS: outbox lock. ARGV: token lockMs id... */
const ACK_LUA = `
redis.call('XDEL', KEYS[1], unpack(ARGV, 3))
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('PEXPIRE', KEYS[2], ARGV[2]) return 1 end
return 0
`;
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

type Commands = { rmLogAck(outbox: string, lock: string, token: string, lockMs: number, ...ids: string[]): Promise<number>; rmLogRelease(lock: string, token: string): Promise<number> };

/**
 * The node's side of the backend log. On a single Redis the scripts append
 * to the partition streams themselves ({@link target} gives `direct`), and
 * there is nothing else to do. On a Cluster a script may only touch its own
 * slot, so it appends to the slot's outbox (`outbox`, atomically with the
 * write), and this relay moves outbox entries, in order, to their partition
 * streams: right after each script ({@link written}), and for outboxes a
 * dead node left behind, by a periodic scan. One relayer per outbox at a
 * time (a lock in the outbox's slot); an entry is deleted from the outbox
 * only after it is in its partition, so a crash in between repeats it: at
 * least once.
 */
export class BackendLog {
  readonly partitions: number;
  readonly maxLen: number;
  readonly mode: 'direct' | 'outbox';
  private readonly repairIntervalMs: number;
  private readonly redis: RedisClient;
  private readonly keys: KeySpace;
  private readonly errors: LogSummary;
  private readonly pending = new Set<number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private draining: Promise<void> | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: BackendLogOptions & { redis: RedisClient; keys: KeySpace; logger: Logger }) {
    const checked = checkBackendLogOptions(options);
    this.partitions = checked.partitions;
    this.maxLen = checked.maxLen;
    this.repairIntervalMs = checked.repairIntervalMs;
    this.redis = options.redis;
    this.keys = options.keys;
    this.mode = this.redis.isCluster ? 'outbox' : 'direct';
    this.errors = new LogSummary(options.logger, 'backend log relay failed (entries stay in the outbox and are relayed later)');
    if (this.mode === 'outbox') {
      if (typeof (this.redis as unknown as Partial<Commands>).rmLogAck !== 'function') {
        this.redis.defineCommand('rmLogAck', { numberOfKeys: 2, lua: ACK_LUA });
        this.redis.defineCommand('rmLogRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
      }
      this.repairTimer = setInterval(() => void this.repair().catch((err: unknown) => this.errors.note('repair', { err: String(err) })), this.repairIntervalMs);
      this.repairTimer.unref();
    }
  }

  /** The partition stream `p`: `<prefix>log:<p>`. */
  partitionKey(p: number): string {
    return this.keys.logPartition(p);
  }

  /** Where a script about `name` (a channel name or a user id) in `slot` appends. */
  target(name: string, slot: number): LogTarget {
    const key = this.mode === 'direct' ? this.partitionKey(logPartition(name, this.partitions)) : this.keys.logOutbox(slot);
    return { mode: this.mode, key, base: this.keys.logBase, partitions: this.partitions, maxLen: this.maxLen };
  }

  /** A script of `slot` appended to the log: relay its outbox soon (Cluster; nothing on a single Redis). */
  written(slot: number): void {
    if (this.mode !== 'outbox' || this.closed) return;
    this.pending.add(slot);
    this.drain();
  }

  /** Resolves once every outbox this node was told about is relayed (or failed; tests and shutdown). */
  async settled(): Promise<void> {
    while (this.draining || (this.pending.size > 0 && !this.closed) || this.timers.size > 0) {
      if (this.draining) await this.draining;
      else await new Promise((r) => setTimeout(r, 10));
    }
  }

  private drain(): void {
    if (this.draining || this.closed) return;
    this.draining = (async () => {
      while (this.pending.size > 0 && !this.closed) {
        const slots = [...this.pending].slice(0, RELAY_PARALLEL);
        for (const s of slots) this.pending.delete(s);
        await Promise.all(
          slots.map((slot) =>
            this.relaySlot(slot).then(
              (r) => r === 'busy' && this.later(slot),
              (err: unknown) => this.errors.note('relay', { slot, err: err instanceof Error ? err.message : String(err) }),
            ),
          ),
        );
      }
    })().finally(() => {
      this.draining = undefined;
      if (this.pending.size > 0) this.drain();
    });
  }

  /** Another node relays the slot now; look again shortly (what it read before our append is all it owes). */
  private later(slot: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.written(slot);
    }, RELAY_BUSY_RETRY_MS);
    this.timers.add(t);
  }

  /** Moves one outbox to the partitions, oldest first, until it is empty; `busy` when another relayer holds it. */
  async relaySlot(slot: number): Promise<'done' | 'busy'> {
    const outbox = this.keys.logOutbox(slot);
    const lock = `${outbox}:lk`;
    const token = randomUUID();
    if ((await this.redis.set(lock, token, 'PX', RELAY_LOCK_MS, 'NX')) !== 'OK') return 'busy';
    const cmds = this.redis as unknown as Commands;
    try {
      for (;;) {
        const entries = await this.redis.xrange(outbox, '-', '+', 'COUNT', RELAY_BATCH);
        if (entries.length === 0) return 'done';
        const byPartition = new Map<string, string[][]>();
        for (const [, fields] of entries) {
          // Field 0/1 is `p`, <partition>; the rest is the entry as the partition holds it.
          const list = byPartition.get(fields[1]!) ?? [];
          list.push(fields.slice(2));
          byPartition.set(fields[1]!, list);
        }
        // One pipeline per partition (one key, one slot): its entries land in outbox order.
        await Promise.all(
          [...byPartition].map(async ([p, list]) => {
            const pipe = this.redis.pipeline();
            for (const fields of list) pipe.xadd(this.partitionKey(Number(p)), 'MAXLEN', '~', this.maxLen, '*', ...fields);
            const res = (await pipe.exec()) ?? [];
            const failed = res.find(([err]) => err);
            if (failed) throw failed[0];
          }),
        );
        const held = await cmds.rmLogAck(outbox, lock, token, RELAY_LOCK_MS, ...entries.map(([id]) => id));
        if (held !== 1) return 'busy'; // the lock expired meanwhile: look again once whoever took it is done
        if (entries.length < RELAY_BATCH) return 'done';
      }
    } finally {
      await cmds.rmLogRelease(lock, token).catch(() => {});
    }
  }

  /** Finds every non-empty outbox on every master and relays it. Returns how many outboxes it found. */
  async repair(): Promise<number> {
    if (this.mode !== 'outbox') return 0;
    const nodes: Redis[] = (this.redis as Cluster).nodes('master');
    let found = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', this.keys.logOutboxPattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const tag = /\{([^}]*)\}$/.exec(key)?.[1];
          if (tag === undefined) continue;
          found++;
          this.written(this.keys.slotOfTag(tag));
        }
      } while (cursor !== '0');
    }
    return found;
  }

  /** Stops the relay (entries left in outboxes are relayed by another node's scan, or this node's after a restart). */
  close(): void {
    this.closed = true;
    if (this.repairTimer) clearInterval(this.repairTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
    this.errors.stop();
  }
}
