import type { UserId } from 'realtime-message-protocol';
import type { StatusState } from './model.js';

export interface StatusCacheOptions {
  /** Most users kept; beyond it a fill replaces one of the oldest entries. @default 100000 */
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
 * Entries live in `max` slots (parallel arrays: key, entry, fill time) found
 * through one `Map` from user to slot. A hit is that lookup and a time
 * comparison: no clock, no reordering, no allocation, since every cached
 * read runs it. An entry older than `ttlMs` is not served but stays in its
 * slot (for stale answers, and until a fill reuses it); every operation is
 * O(1), so nothing ever walks the whole cache. Once every slot is taken, a
 * fill of a new user takes the slot a hand points at, moving round the slots
 * in order: the oldest placed entries leave first, roughly (slots freed by
 * invalidations are reused first).
 */
export class StatusCache {
  private readonly slots = new Map<UserId, number>();
  private readonly keys: Array<UserId | undefined> = [];
  private readonly entries: Array<Entry | undefined> = [];
  private readonly times: Float64Array;
  /** Slots freed by invalidations, reused before any other. */
  private readonly free: Int32Array;
  private freeCount = 0;
  /** The next slot a fill of a new user takes once all `max` are in use. */
  private hand = 0;
  private readonly max: number;
  private readonly ttlMs: number;
  private readonly clock: () => number;
  /** Reads in flight per user: how many, and the highest version invalidated while they ran. */
  private readonly pending = new Map<UserId, { count: number; bar: number }>();
  private readonly nodeIds = new Map<string, string>();
  hits = 0;
  misses = 0;

  constructor(options: StatusCacheOptions = {}) {
    this.max = Math.max(1, options.max ?? 100_000);
    this.ttlMs = options.ttlMs ?? 300_000;
    this.clock = options.now ?? Date.now;
    this.times = new Float64Array(this.max);
    this.free = new Int32Array(this.max);
  }

  get size(): number {
    return this.slots.size;
  }

  /** The state cached and not older than `ttlMs` at `now` (null: known to be unknown), or undefined on a miss. Counts the hit or miss. */
  get(userId: UserId, now: number): StatusState | null | undefined {
    const e = this.fresh(userId, now);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return stateOf(e);
  }

  /** {@link get} that counts only a hit: a miss is counted by the read that follows it. */
  hit(userId: UserId, now: number): StatusState | null | undefined {
    const e = this.fresh(userId, now);
    if (e === undefined) return undefined;
    this.hits++;
    return stateOf(e);
  }

  /** Whether `userId` has an entry (however old), without counting a hit or miss. */
  holds(userId: UserId): boolean {
    return this.slots.has(userId);
  }

  /**
   * The cached state however old (past `ttlMs` too), without counting a hit
   * or miss; undefined when the user is not held. For answers marked stale
   * while the store cannot be reached.
   */
  peekStale(userId: UserId): StatusState | null | undefined {
    const slot = this.slots.get(userId);
    return slot === undefined ? undefined : stateOf(this.entries[slot]);
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

  /**
   * Puts the state a write on this node returned (newer than anything cached
   * for the user, unless a later write's invalidation came first).
   * `onlyIfCached`: only replaces an entry the user already has (a write
   * nobody asked to read, such as a connection change, takes no slot).
   */
  fillFromWrite(userId: UserId, state: StatusState | undefined, onlyIfCached = false): void {
    if (!state) return;
    if (onlyIfCached && !this.slots.has(userId)) return;
    const p = this.pending.get(userId);
    if (p && state.version < p.bar) return;
    const cur = this.peekStale(userId);
    if (cur === undefined || cur === null || cur.version <= state.version) this.put(userId, this.shared(state));
  }

  /** A write of `userId` reached `version` on some node. */
  invalidate(userId: UserId, version: number): void {
    const slot = this.slots.get(userId);
    if (slot !== undefined) {
      const cur = this.entries[slot];
      // The entry this node put from its own write of the same version stays.
      if (!(cur !== UNKNOWN && cur?.version === version)) this.release(userId, slot);
    }
    const p = this.pending.get(userId);
    if (p && version > p.bar) p.bar = version;
  }

  /** Forgets everything (the feed was interrupted: invalidations may have been missed). */
  clear(): void {
    this.slots.clear();
    this.keys.length = 0;
    this.entries.length = 0;
    this.freeCount = 0;
    this.hand = 0;
    for (const p of this.pending.values()) p.bar = Number.MAX_SAFE_INTEGER;
  }

  private fresh(userId: UserId, now: number): Entry | undefined {
    const slot = this.slots.get(userId);
    if (slot === undefined || this.times[slot]! + this.ttlMs <= now) return undefined;
    return this.entries[slot];
  }

  private put(userId: UserId, entry: Entry): void {
    let slot = this.slots.get(userId);
    if (slot === undefined) {
      slot = this.takeSlot();
      this.slots.set(userId, slot);
      this.keys[slot] = userId;
    }
    this.entries[slot] = entry;
    this.times[slot] = this.clock();
  }

  /** A slot for a new user: a freed one, else one never used, else the hand's (its user leaves). */
  private takeSlot(): number {
    if (this.freeCount > 0) return this.free[--this.freeCount]!;
    if (this.keys.length < this.max) {
      this.keys.push(undefined);
      this.entries.push(undefined);
      return this.keys.length - 1;
    }
    const slot = this.hand;
    this.hand = slot + 1 === this.max ? 0 : slot + 1;
    this.slots.delete(this.keys[slot]!);
    return slot;
  }

  private release(userId: UserId, slot: number): void {
    this.slots.delete(userId);
    this.keys[slot] = undefined;
    this.entries[slot] = undefined;
    this.free[this.freeCount++] = slot;
  }

  /** The state with its `nodeId` string shared with every other entry of that node (a few nodes, many users: 20-40 bytes saved per entry). */
  private shared(state: StatusState): StatusState {
    const known = this.nodeIds.get(state.nodeId);
    if (known !== undefined) state.nodeId = known;
    else if (this.nodeIds.size < 10_000) this.nodeIds.set(state.nodeId, state.nodeId);
    return state;
  }
}
