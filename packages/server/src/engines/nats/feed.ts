import type { NatsConnection, QueuedIterator } from '@nats-io/transport-node';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { UserId } from 'realtime-message-protocol';
import { toRecord } from '../../core/status/model.js';
import type { StatusFeedItem } from '../../core/status/store.js';
import type { Logger } from '../../core/shared/logger.js';
import { MinHeap } from '../memory/min-heap.js';
import { decodeRecord, eventRevision, userOf } from './record.js';
import { isNatsUnavailable, StatusLinkDownError } from './errors.js';

/** Feed states as the status service understands them (see `StatusStore.subscribe`). */
export type NatsFeedState = 'interrupted' | 'resumed';

interface Known {
  /** The last revision of the user's key this node's watch delivered (0: none yet). */
  rev: number;
  /** The user's next deadline as this node knows it. */
  due: number | null;
}

export interface NatsStatusFeedOptions {
  nc: NatsConnection;
  kv: KV;
  bucket: string;
  /** Where the bucket lives, for messages. */
  where: string;
  probeIntervalMs: number;
  logger: Logger;
}

/**
 * One node's view of the bucket, kept by one KV watch over every user key:
 *
 * - **Events.** Every node's watch delivers every revision, in order. A
 *   revision is a status event on this node when the last event it records
 *   (itself, `ev`, or an earlier revision, `er`) is newer than the last
 *   revision of that key this node saw. So each node reports each change
 *   once, and a change whose own revision it never saw (history 1 keeps only
 *   a key's latest value: a lagging or resumed watch skips overwritten
 *   revisions) is still reported once, with the newer record.
 * - **Deadlines.** Each node indexes every user's next deadline (`due`)
 *   from the watch (and from its own writes at once), so its sweeper finds
 *   what is due without scanning the bucket; sweepers race with
 *   compare-and-set.
 * - **The link.** A probe every `probeIntervalMs` asks the hub about the
 *   watch's consumer. When it cannot be reached the feed is `interrupted`
 *   (the watch is stopped); once the hub answers again, a new watch resumes
 *   from the last revision seen and the feed is `resumed`.
 */
export class NatsStatusFeed {
  private readonly index = new Map<UserId, Known>();
  private readonly heap = new MinHeap<{ at: number; userId: UserId }>();
  private readonly listeners = new Set<(item: StatusFeedItem) => void>();
  private readonly stateListeners = new Set<(state: NatsFeedState) => void>();
  /** The last revision processed. */
  private cursor = 0;
  /** Revisions up to this were in the bucket when this node started: indexed, not reported as events. */
  private floor = 0;
  private watcher: { iter: QueuedIterator<KvWatchEntry>; gen: number } | undefined;
  private gen = 0;
  private up = true;
  private lostAt: number | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: NatsStatusFeedOptions) {}

  /** False from the moment the hub is found unreachable until the watch runs again. */
  get linkUp(): boolean {
    return this.up;
  }

  /** When the link was found down (ms since epoch), or undefined while up. */
  get linkLostAt(): number | undefined {
    return this.lostAt;
  }

  /** Users this node indexes (for tests and metrics). */
  get indexedUsers(): number {
    return this.index.size;
  }

  async start(): Promise<void> {
    const status = await this.o.kv.status();
    this.floor = status.streamInfo.state.last_seq;
    await this.startWatch();
    void this.followConnection();
    const tick = (): void => {
      void this.probe().finally(() => {
        if (!this.closed) this.probeTimer = setTimeout(tick, this.o.probeIntervalMs).unref();
      });
    };
    this.probeTimer = setTimeout(tick, this.o.probeIntervalMs).unref();
  }

  private async startWatch(): Promise<void> {
    const gen = ++this.gen;
    // The first watch delivers the latest value of every key, then every change; a later one resumes after the last revision seen.
    const iter = this.cursor === 0 ? await this.o.kv.watch({ key: 'u.>' }) : await this.o.kv.watch({ key: 'u.>', resumeFromRevision: this.cursor + 1 });
    if (gen !== this.gen || this.closed) {
      iter.stop();
      return;
    }
    this.watcher = { iter, gen };
    void (async () => {
      try {
        for await (const e of iter) {
          if (gen !== this.gen) break;
          this.onEntry(e);
        }
      } catch (err) {
        if (gen === this.gen && !this.closed) this.o.logger.warn({ err, bucket: this.o.bucket }, 'status watch ended; the link probe restarts it');
      }
    })();
  }

  private stopWatch(): void {
    this.gen++;
    this.watcher?.iter.stop();
    this.watcher = undefined;
  }

  private onEntry(e: KvWatchEntry): void {
    if (e.revision <= this.cursor) return; // already seen (a resumed watch)
    this.cursor = e.revision;
    const userId = userOf(e.key);
    if (userId === undefined) {
      this.o.logger.warn({ bucket: this.o.bucket, key: e.key }, 'a key in the status bucket that is not a user key was ignored');
      return;
    }
    const snapshot = e.revision <= this.floor;
    if (e.operation !== 'PUT') {
      // Deleted or purged by hand: the user reads as never seen again.
      this.index.delete(userId);
      if (!snapshot) this.emit({ userId, version: 0 });
      return;
    }
    let rec;
    try {
      rec = decodeRecord(this.o.bucket, e.key, e.value);
    } catch (err) {
      this.o.logger.error({ err, bucket: this.o.bucket, key: e.key, revision: e.revision }, 'invalid status value in the bucket: not applied');
      return;
    }
    const known = this.index.get(userId);
    const seen = Math.max(known?.rev ?? 0, this.floor);
    this.setDue(userId, rec.due, e.revision);
    if (snapshot) return;
    const st = rec.st;
    const isEvent = st !== null && eventRevision(rec, e.revision) > seen;
    this.emit({ userId, version: st?.version ?? 0, event: isEvent ? toRecord(userId, st, st.updatedAt, rec.aw) : undefined });
  }

  private emit(item: StatusFeedItem): void {
    for (const l of [...this.listeners]) {
      try {
        l(item);
      } catch (err) {
        this.o.logger.error({ err }, 'status feed listener threw');
      }
    }
  }

  /** Records the user's next deadline (and, from the watch, the revision seen). */
  setDue(userId: UserId, due: number | null, rev?: number): void {
    const k = this.index.get(userId);
    if (!k) this.index.set(userId, { rev: rev ?? 0, due });
    else {
      if (rev !== undefined) k.rev = rev;
      if (k.due === due) return;
      k.due = due;
    }
    if (due !== null) this.heap.push({ at: due, userId });
  }

  /** Users whose deadline is at or before `now`, at most `limit`; they leave the index's deadlines until visited. */
  takeDue(now: number, limit: number): { users: UserId[]; more: boolean } {
    const users: UserId[] = [];
    for (;;) {
      const top = this.heap.peek();
      if (!top || top.at > now) return { users, more: false };
      if (users.length >= limit) return { users, more: true };
      this.heap.pop();
      const k = this.index.get(top.userId);
      if (!k || k.due !== top.at) continue; // a stale heap entry
      k.due = null;
      users.push(top.userId);
    }
  }

  subscribe(listener: (item: StatusFeedItem) => void, onState?: (state: NatsFeedState) => void): () => void {
    // Distinct wrappers: the same function subscribed twice is delivered twice and removed once per call.
    const l = (item: StatusFeedItem): void => listener(item);
    const s = onState ? (state: NatsFeedState): void => onState(state) : undefined;
    this.listeners.add(l);
    if (s) {
      this.stateListeners.add(s);
      if (!this.up) s('interrupted');
    }
    return () => {
      this.listeners.delete(l);
      if (s) this.stateListeners.delete(s);
    };
  }

  private setUp(up: boolean, reason: unknown): void {
    if (this.up === up || this.closed) return;
    this.up = up;
    this.lostAt = up ? undefined : Date.now();
    if (up) this.o.logger.info({ bucket: this.o.bucket }, `status feed: ${this.o.where} reachable again, watch resumed`);
    else this.o.logger.warn({ err: reason, bucket: this.o.bucket }, `status feed: ${this.o.where} cannot be reached; reads are stale, writes fail`);
    for (const s of [...this.stateListeners]) {
      try {
        s(up ? 'resumed' : 'interrupted');
      } catch (err) {
        this.o.logger.error({ err }, 'status feed state listener threw');
      }
    }
  }

  /** The link is gone (a failed call found it): report it now rather than at the next probe. */
  noteUnavailable(err: unknown): void {
    if (!this.up) return;
    void this.probe(err);
  }

  /**
   * Asks the hub about the watch's consumer (or, while down, starts a new
   * watch): unreachable → interrupted; reachable again → resumed; the
   * consumer gone (the hub restarted) → a new watch from the last revision.
   */
  probe(hint?: unknown): Promise<void> {
    return (this.probing ??= this.runProbe(hint).finally(() => {
      this.probing = undefined;
    }));
  }

  private async runProbe(hint: unknown): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.up || !this.watcher) {
        this.stopWatch();
        await this.startWatch();
        this.setUp(true, undefined);
        return;
      }
      const consumer = (this.watcher.iter as { _data?: unknown })._data as { info?: (cached?: boolean) => Promise<unknown> } | undefined;
      if (typeof consumer?.info === 'function') await consumer.info(false);
      else if (hint !== undefined) throw hint;
    } catch (err) {
      if (this.closed) return;
      if (isNatsUnavailable(err)) {
        this.stopWatch();
        this.setUp(false, err);
      } else if ((err as { name?: string }).name === 'ConsumerNotFoundError') {
        // The hub lost the watch's consumer (it restarted): resume from the last revision seen.
        this.stopWatch();
        await this.startWatch().catch((e: unknown) => this.setUp(false, e));
      } else {
        this.o.logger.warn({ err, bucket: this.o.bucket }, 'status link probe failed');
      }
    }
  }

  private async followConnection(): Promise<void> {
    for await (const s of this.o.nc.status()) {
      if (this.closed) return;
      if (s.type === 'disconnect') {
        this.stopWatch();
        this.setUp(false, new StatusLinkDownError(`the connection to the NATS server ${s.server} was lost`));
      } else if (s.type === 'reconnect') void this.probe();
    }
  }

  close(): void {
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.stopWatch();
    this.listeners.clear();
    this.stateListeners.clear();
  }
}
