import { LRUCache } from 'lru-cache';
import type { UserId } from 'realtime-message-protocol';
import type { StatusState } from './model.js';

export interface StatusCacheOptions {
  /** Most users kept. @default 100000 */
  max?: number;
  /**
   * Longest time an entry is served without a store read: a bound on
   * staleness if an invalidation is ever lost without the feed reporting an
   * interruption, not the normal way entries leave (every write on any node
   * invalidates its user; an interrupted feed empties the cache). @default 300000
   */
  ttlMs?: number;
}

/** The cached value of a user the store does not know (lru-cache stores no null; one shared object, no wrapper per entry). */
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
 */
export class StatusCache {
  private readonly lru: LRUCache<UserId, Entry>;
  /** Reads in flight per user: how many, and the highest version invalidated while they ran. */
  private readonly pending = new Map<UserId, { count: number; bar: number }>();
  private readonly nodeIds = new Map<string, string>();
  hits = 0;
  misses = 0;

  constructor(options: StatusCacheOptions = {}) {
    this.lru = new LRUCache<UserId, Entry>({ max: options.max ?? 100_000, ttl: options.ttlMs ?? 300_000, ttlAutopurge: false, updateAgeOnGet: false });
  }

  get size(): number {
    return this.lru.size;
  }

  /** The cached state (null: known to be unknown), or undefined on a miss. Counts the hit or miss. */
  get(userId: UserId): StatusState | null | undefined {
    const e = this.lru.get(userId);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return stateOf(e);
  }

  /**
   * The cached state however old (past `ttlMs` too), without counting a hit
   * or miss; undefined when the user is not held. For answers marked stale
   * while the store cannot be reached.
   */
  peekStale(userId: UserId): StatusState | null | undefined {
    return stateOf(this.lru.peek(userId, { allowStale: true }));
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
      if (ok && (state?.version ?? 0) >= mark.bar) this.lru.set(userId, state ? this.shared(state) : UNKNOWN);
    };
  }

  /** Puts the state a write on this node returned (newer than anything cached for the user, unless a later write's invalidation came first). */
  fillFromWrite(userId: UserId, state: StatusState | undefined): void {
    if (!state) return;
    const p = this.pending.get(userId);
    if (p && state.version < p.bar) return;
    const cur = this.lru.peek(userId);
    if (cur === undefined || cur === UNKNOWN || cur.version <= state.version) this.lru.set(userId, this.shared(state));
  }

  /** A write of `userId` reached `version` on some node. */
  invalidate(userId: UserId, version: number): void {
    const cur = this.lru.peek(userId);
    // The entry this node put from its own write of the same version stays.
    if (cur !== undefined && !(cur !== UNKNOWN && cur.version === version)) this.lru.delete(userId);
    const p = this.pending.get(userId);
    if (p && version > p.bar) p.bar = version;
  }

  /** The state with its `nodeId` string shared with every other entry of that node (a few nodes, many users: 20-40 bytes saved per entry). */
  private shared(state: StatusState): StatusState {
    const known = this.nodeIds.get(state.nodeId);
    if (known !== undefined) state.nodeId = known;
    else if (this.nodeIds.size < 10_000) this.nodeIds.set(state.nodeId, state.nodeId);
    return state;
  }

  /** Forgets everything (the feed was interrupted: invalidations may have been missed). */
  clear(): void {
    this.lru.clear();
    for (const p of this.pending.values()) p.bar = Number.MAX_SAFE_INTEGER;
  }
}
