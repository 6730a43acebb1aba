import type { UserId } from 'realtime-message-protocol';
import type { StatusState } from './model.js';

export interface StatusCacheOptions {
  /** Most users kept; beyond it the earliest filled entry leaves first. @default 100000 */
  max?: number;
  /**
   * Longest time an entry is served without a store read: a bound on
   * staleness if an invalidation is ever lost without the feed reporting an
   * interruption, not the normal way entries leave (every write on any node
   * invalidates its user; an interrupted feed empties the cache). @default 300000
   */
  ttlMs?: number;
  /** The clock fills are stamped with (ms; the status service's). @default Date.now */
  now?: () => number;
}

/** The cached value of a user the store does not know (one shared object, no wrapper per entry). */
const UNKNOWN = Object.freeze({ unknown: true }) as unknown as StatusState;

/** A cached user: their state itself, or {@link UNKNOWN}. */
type Entry = StatusState;

const stateOf = (e: Entry | undefined): StatusState | null | undefined => (e === undefined ? undefined : e === UNKNOWN ? null : e);

/** Queue slots consumed at the head, or dead ones (entries invalidated or filled again since) beyond `max`, tolerated before the queue is compacted. */
const QUEUE_SLACK = 1_024;

/**
 * The bounded node-local cache in front of a status store. Every write on
 * any node reaches every node's cache through the store's feed
 * ({@link invalidate}). A read that raced a write must not put the old
 * value back: a read registers itself before it asks the store, every
 * invalidation that arrives meanwhile raises the read's bar to the write's
 * version, and the answer fills the cache only if it is at least that new.
 * So whichever of the read's reply and the invalidation arrives first, the
 * cache ends up empty or newer, never older.
 *
 * A hit is one `Map` lookup (no clock, no reordering): the hot path of every
 * cached read. Age and size are kept by a queue of fills in the order they
 * happened (key, entry, time), from which {@link expire} drops entries older
 * than `ttlMs` and a fill beyond `max` drops the earliest filled one; a queue
 * slot whose entry was invalidated or filled again since is skipped.
 */
export class StatusCache {
  private readonly map = new Map<UserId, Entry>();
  private readonly max: number;
  private readonly ttlMs: number;
  /** The fill queue, from `head` on: key, entry and fill time of each fill, oldest first. */
  private qKeys: UserId[] = [];
  private qEntries: Entry[] = [];
  private qTimes: number[] = [];
  private head = 0;
  /** Reads in flight per user: how many, and the highest version invalidated while they ran. */
  private readonly pending = new Map<UserId, { count: number; bar: number }>();
  private readonly nodeIds = new Map<string, string>();
  private readonly clock: () => number;
  /** The latest fill time: fills are stamped no earlier, so the queue stays in time order. */
  private stamped = 0;
  hits = 0;
  misses = 0;

  constructor(options: StatusCacheOptions = {}) {
    this.max = Math.max(1, options.max ?? 100_000);
    this.ttlMs = options.ttlMs ?? 300_000;
    this.clock = options.now ?? Date.now;
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * Drops the entries filled more than `ttlMs` before `now` (ms, the service's
   * clock). Called before reads; cheap when nothing is due (one comparison).
   */
  expire(now: number): void {
    const oldest = now - this.ttlMs;
    const times = this.qTimes;
    while (this.head < times.length && times[this.head]! <= oldest) this.dropHead();
  }

  /** The cached state (null: known to be unknown), or undefined on a miss. Counts the hit or miss. */
  get(userId: UserId): StatusState | null | undefined {
    const e = this.map.get(userId);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return stateOf(e);
  }

  /** {@link get} that counts only a hit: a miss is counted by the read that follows it. */
  hit(userId: UserId): StatusState | null | undefined {
    const e = this.map.get(userId);
    if (e === undefined) return undefined;
    this.hits++;
    return stateOf(e);
  }

  /**
   * The cached state however old (past `ttlMs` too, while {@link expire} is
   * not called), without counting a hit or miss; undefined when the user is
   * not held. For answers marked stale while the store cannot be reached.
   */
  peekStale(userId: UserId): StatusState | null | undefined {
    return stateOf(this.map.get(userId));
  }

  /** Starts a store read of `userId`; call the returned function with its answer (`ok` false: the read failed, fill nothing). */
  beginRead(userId: UserId): (state: StatusState | undefined, ok?: boolean) => void {
    let p = this.pending.get(userId);
    if (!p) this.pending.set(userId, (p = { count: 0, bar: 0 }));
    p.count++;
    const mark = p;
    let done = false;
    return (state, ok = true) => {
      if (done) return;
      done = true;
      if (--mark.count === 0 && this.pending.get(userId) === mark) this.pending.delete(userId);
      if (ok && (state?.version ?? 0) >= mark.bar) this.put(userId, state ? this.shared(state) : UNKNOWN);
    };
  }

  /** Puts the state a write on this node returned (newer than anything cached for the user, unless a later write's invalidation came first). */
  fillFromWrite(userId: UserId, state: StatusState | undefined): void {
    if (!state) return;
    const p = this.pending.get(userId);
    if (p && state.version < p.bar) return;
    const cur = this.map.get(userId);
    if (cur === undefined || cur === UNKNOWN || cur.version <= state.version) this.put(userId, this.shared(state));
  }

  /** A write of `userId` reached `version` on some node. */
  invalidate(userId: UserId, version: number): void {
    const cur = this.map.get(userId);
    // The entry this node put from its own write of the same version stays.
    if (cur !== undefined && !(cur !== UNKNOWN && cur.version === version)) this.map.delete(userId);
    const p = this.pending.get(userId);
    if (p && version > p.bar) p.bar = version;
  }

  /** Forgets everything (the feed was interrupted: invalidations may have been missed). */
  clear(): void {
    this.map.clear();
    this.qKeys = [];
    this.qEntries = [];
    this.qTimes = [];
    this.head = 0;
    for (const p of this.pending.values()) p.bar = Number.MAX_SAFE_INTEGER;
  }

  private put(userId: UserId, entry: Entry): void {
    this.map.set(userId, entry);
    this.qKeys.push(userId);
    this.qEntries.push(entry);
    this.qTimes.push((this.stamped = Math.max(this.stamped, this.clock())));
    while (this.map.size > this.max) this.dropHead();
    // Dead slots (invalidated or filled again) build up under writes: compacting at twice `max` costs O(1) per fill on average.
    if (this.qKeys.length - this.head > 2 * this.max + QUEUE_SLACK) this.compact();
  }

  /** Removes the queue's oldest slot, and its entry if that is still the one cached. */
  private dropHead(): void {
    const i = this.head++;
    const key = this.qKeys[i]!;
    if (this.map.get(key) === this.qEntries[i]) this.map.delete(key);
    // Release the references (the slots stay until the next compaction).
    this.qKeys[i] = undefined as unknown as UserId;
    this.qEntries[i] = undefined as unknown as Entry;
    if (this.head > QUEUE_SLACK && this.head * 2 > this.qKeys.length) this.compact();
  }

  /** Rebuilds the queue with only the latest slot of each entry still cached, in the same order. */
  private compact(): void {
    const n = this.qKeys.length - this.head;
    const keep = new Uint8Array(n);
    const seen = new Set<UserId>();
    let kept = 0;
    // From the newest: a key's latest fill is its live slot (an earlier one can hold the same UNKNOWN sentinel).
    for (let j = n - 1; j >= 0; j--) {
      const i = this.head + j;
      const key = this.qKeys[i]!;
      if (key === undefined || seen.has(key) || this.map.get(key) !== this.qEntries[i]) continue;
      seen.add(key);
      keep[j] = 1;
      kept++;
    }
    const keys = new Array<UserId>(kept);
    const entries = new Array<Entry>(kept);
    const times = new Array<number>(kept).fill(0);
    for (let j = 0, k = 0; j < n; j++) {
      if (keep[j] === 0) continue;
      const i = this.head + j;
      keys[k] = this.qKeys[i]!;
      entries[k] = this.qEntries[i]!;
      times[k++] = this.qTimes[i]!;
    }
    this.qKeys = keys;
    this.qEntries = entries;
    this.qTimes = times;
    this.head = 0;
  }

  /** The state with its `nodeId` string shared with every other entry of that node (a few nodes, many users: 20-40 bytes saved per entry). */
  private shared(state: StatusState): StatusState {
    const known = this.nodeIds.get(state.nodeId);
    if (known !== undefined) state.nodeId = known;
    else if (this.nodeIds.size < 10_000) this.nodeIds.set(state.nodeId, state.nodeId);
    return state;
  }
}
