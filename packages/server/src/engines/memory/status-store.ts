import type { UserId } from 'realtime-message-protocol';
import { effective, toRecord, nextDeadline, type Effective, type StatusState } from '../../core/status/model.js';
import type { StatusCommand, StatusFeedItem, StatusStore, StatusWriteResult, SweepCommand, SweepResult } from '../../core/status/store.js';
import { applyDue, applyWrite, sameEffective } from '../../core/status/transitions.js';
import { MinHeap } from './min-heap.js';

interface ConnMark {
  epoch: number;
  live: boolean;
  /** When it ended (for forgetting ended marks). */
  endedAt: number;
}

interface UserEntry {
  state: StatusState | undefined;
  /** The effective status and message of the last event: changes are measured against it. */
  published: Effective;
  conns: Map<string, ConnMark>;
  live: number;
  /** The deadline the heap holds for this user (heap entries with another `at` are stale). */
  due: number | null;
}

export interface MemoryStatusStoreOptions {
  /**
   * How long the mark of an ended connection is kept, so that a late or
   * repeated event of it (another node applying the same presence event
   * later) is recognised and ignored. Must exceed the spread of event
   * delivery between nodes. @default 600000
   */
  connRetentionMs?: number;
}

/**
 * User status in this process: the embedded default, and the reference the
 * Redis store is held to by the conformance suite. Several services ("nodes")
 * may share one instance; each write is applied synchronously, so it is
 * atomic with its change detection and its event.
 */
export class MemoryStatusStore implements StatusStore {
  readonly kind = 'memory';
  private readonly users = new Map<UserId, UserEntry>();
  private readonly heap = new MinHeap<{ at: number; userId: UserId }>();
  private readonly listeners = new Set<(item: StatusFeedItem) => void>();
  private readonly connRetentionMs: number;
  private closed = false;

  constructor(options: MemoryStatusStoreOptions = {}) {
    this.connRetentionMs = options.connRetentionMs ?? 600_000;
  }

  /** Users with a record or connection marks (for tests). */
  get userCount(): number {
    return this.users.size;
  }

  async read(userIds: readonly UserId[]): Promise<Array<StatusState | undefined>> {
    return userIds.map((id) => {
      const s = this.users.get(id)?.state;
      return s ? { ...s } : undefined;
    });
  }

  async write(cmd: StatusCommand): Promise<StatusWriteResult> {
    let u = this.users.get(cmd.userId);
    if (!u) {
      if (cmd.type === 'activity') return { state: undefined };
      u = { state: undefined, published: { status: 'offline', message: null }, conns: new Map(), live: 0, due: null };
      this.users.set(cmd.userId, u);
    }
    if (cmd.type === 'conn') this.mark(u, cmd.conn, cmd.epoch, cmd.live, cmd.now);
    const next = applyWrite(u.state, cmd, u.live > 0);
    if (!next) {
      if (!u.state && u.conns.size === 0) this.users.delete(cmd.userId);
      return { state: u.state ? { ...u.state } : undefined };
    }
    return this.commit(cmd.userId, u, next, cmd.now, cmd.awayAfterMs);
  }

  /** Keeps the highest (epoch, ended) per connection; the live count moves only when a mark changes liveness. */
  private mark(u: UserEntry, conn: string, epoch: number, live: boolean, now: number): void {
    const m = u.conns.get(conn);
    if (m && (epoch < m.epoch || (epoch === m.epoch && (live || !m.live)))) return;
    if (m?.live) u.live -= 1;
    if (live) u.live += 1;
    u.conns.set(conn, { epoch, live, endedAt: now });
    // Forget old ended marks of this user (bounded by what one user does in the retention window).
    for (const [k, v] of u.conns) if (!v.live && now - v.endedAt > this.connRetentionMs) u.conns.delete(k);
  }

  private commit(userId: UserId, u: UserEntry, next: StatusState, now: number, awayAfterMs: number): StatusWriteResult {
    const eff = effective(next, now, awayAfterMs);
    let event;
    if (!sameEffective(eff, u.published)) {
      next.seq += 1;
      u.published = eff;
      event = toRecord(userId, next, now, awayAfterMs);
    }
    u.state = next;
    const due = nextDeadline(next, now, awayAfterMs);
    if (due !== null && due !== u.due) this.heap.push({ at: due, userId });
    u.due = due;
    const item: StatusFeedItem = { userId, version: next.version, event };
    for (const l of [...this.listeners]) l(item);
    return { state: { ...next }, event };
  }

  async sweep(cmd: SweepCommand): Promise<SweepResult> {
    const result: SweepResult = { visited: 0, events: 0, more: false };
    for (;;) {
      const top = this.heap.peek();
      if (!top || top.at > cmd.now) break;
      if (result.visited >= cmd.limit) {
        result.more = true;
        break;
      }
      this.heap.pop();
      const u = this.users.get(top.userId);
      if (!u?.state || u.due !== top.at) continue; // stale heap entry
      u.due = null;
      result.visited++;
      const next = applyDue(u.state, cmd.now, cmd.nodeId);
      const eff = effective(next ?? u.state, cmd.now, cmd.awayAfterMs);
      if (!next && sameEffective(eff, u.published)) {
        const due = nextDeadline(u.state, cmd.now, cmd.awayAfterMs);
        if (due !== null) this.heap.push({ at: due, userId: top.userId });
        u.due = due;
        continue;
      }
      const state = next ?? { ...u.state, version: u.state.version + 1, updatedAt: cmd.now, nodeId: cmd.nodeId };
      if (this.commit(top.userId, u, state, cmd.now, cmd.awayAfterMs).event) result.events++;
    }
    return result;
  }

  async subscribe(listener: (item: StatusFeedItem) => void): Promise<() => Promise<void>> {
    // A distinct wrapper per call, so the same function subscribed twice is delivered twice and removed once per call.
    const l = (item: StatusFeedItem): void => listener(item);
    this.listeners.add(l);
    return async () => {
      this.listeners.delete(l);
    };
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('the memory status store was closed');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }
}
