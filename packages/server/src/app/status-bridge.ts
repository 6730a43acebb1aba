import { LRUCache } from 'lru-cache';
import type { PresenceEvent } from 'realtime-message-protocol';
import { ANONYMOUS_USER_ID } from '../core/channels/presence-info.js';
import type { Logger } from '../core/shared/logger.js';
import { LogSummary } from '../core/shared/log-summary.js';
import { silentLogger } from '../core/shared/logger.js';
import { retryInBackground } from '../core/shared/retry.js';
import type { LocalJoin } from '../core/presence/options.js';
import type { ReapedConnection } from '../core/presence/engine.js';
import type { ConnectionChange } from '../core/status/service.js';

/** What the bridge needs of presence: every leave of every room on every node, this node's own joins, and (optional) what this node's reaper ended. */
export interface PresenceFeed {
  subscribe(listener: (event: PresenceEvent) => void, options: { only: 'leave' }): Promise<() => Promise<void>>;
  onJoined(listener: (joined: LocalJoin) => void): () => void;
  onReaped?(listener: (ended: readonly ReapedConnection[]) => void): () => void;
}

/** What the bridge needs of status. */
export interface ConnectionSink {
  connection(change: ConnectionChange): Promise<void>;
  /** Ends of connections the store reports applied (`StatusService.onConnectionEnded`); undefined when it reports none. */
  onConnectionEnded?(listener: (ended: { conn: string; rank: number }) => void): (() => void) | undefined;
}

export interface StatusBridgeOptions {
  logger?: Logger;
  /** Connections whose last applied (epoch, live) this node remembers, to skip repeats and stop retries. @default 100000 */
  rememberConnections?: number;
  /** Delays between the attempts to apply a change the store refused (an outage); then it is given up and logged. @default [100, 500, 2000, 5000] */
  retryDelaysMs?: readonly number[];
  /** Most changes waiting for a retry at once; beyond, new failures are given up at once (and logged). @default 10000 */
  maxPendingRetries?: number;
  /** Waits between attempts to subscribe to the presence feed while storage is down; the last repeats. @default [500, 1000, 2000] */
  feedRetryDelaysMs?: readonly number[];
  /** Resolve only after the first attempt to subscribe to the presence feed (`false`: at once). @default true */
  waitForFeed?: boolean;
  /**
   * How long a node holds its copy of a `leave` (reason `leave` or
   * `disconnect`) of a connection another node holds, waiting for the store to report it
   * applied (then the copy is dropped); plus up to half as much again at
   * random, so that the copies of the other nodes do not all go at once.
   * 0: every copy goes at once. @default 1000
   */
  foreignLeaveDelayMs?: number;
  /** Most copies held at once; beyond, a copy goes at once. @default 10000 */
  maxHeldLeaves?: number;
}

/**
 * Makes user status follow presence (SPEC §7 "connected").
 *
 * - A connection becomes live where it joined: the node whose presence
 *   service made the join (new, rejoined or resumed) reports it, once,
 *   straight from the join's result (`PresenceService.onJoined`). Other nodes
 *   do nothing for it, so a join costs one status write in the cluster, not
 *   one per node. If that node crashes before reporting, its sockets died
 *   with it and the connection's presence expiry ends it below.
 * - A connection ends on every node: each node sees every `leave` of every
 *   room from every node (leave, end of disconnect grace, expiry found by any
 *   reaper, also of a crashed node). Leaves must not be lost to a crash of
 *   the node that made them (no other event would end the connection), so
 *   every node can apply them and the store makes that idempotent. With a
 *   store that reports the ends it applied (Redis), only the node that held
 *   the connection, or whose reaper ended it, reports at once; the others
 *   hold their copy (`foreignLeaveDelayMs`) and drop it when the store
 *   reports the end, so a leave costs one status write, not one per node.
 *
 * The status store keeps, per connection, the highest (epoch, ended) it saw
 * and ignores the rest, and publishes an event only in the one script that
 * moves the user's live count across zero; so changes applied late, twice or
 * in another order (a leave before its join) produce exactly one status event
 * per change. A change the store refused (an outage) is retried a few times
 * with backoff, until a later change of the same connection supersedes it.
 */
export async function bridgePresenceToStatus(presence: PresenceFeed, status: ConnectionSink, options: StatusBridgeOptions = {}): Promise<() => Promise<void>> {
  // Per connection, its last applied (epoch, live) as one number (see `rank`): a string per connection cost more.
  const applied = new LRUCache<string, number>({ max: options.rememberConnections ?? 100_000 });
  const failures = options.logger ? new LogSummary(options.logger, 'status bridge could not apply a presence change') : undefined;
  const delays = options.retryDelaysMs ?? [100, 500, 2_000, 5_000];
  const maxPending = options.maxPendingRetries ?? 10_000;
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const apply = (userId: string, conn: string, epoch: number, live: boolean, attempt: number): void => {
    const mark = rank(epoch, live);
    // A retry superseded by a later change of the connection (or by its leave) has nothing left to do.
    if (attempt > 0 && applied.get(conn) !== mark) return;
    status.connection({ userId, conn, epoch, live }).catch((err: unknown) => {
      const delay = delays[attempt];
      if (stopped || delay === undefined || timers.size >= maxPending) {
        if (applied.get(conn) === mark) applied.delete(conn);
        failures?.note(delay === undefined ? 'gave up after retries' : 'gave up (too many retries pending)', { err: err instanceof Error ? err.message : String(err), userId });
        return;
      }
      const t = setTimeout(() => {
        timers.delete(t);
        if (!stopped) apply(userId, conn, epoch, live, attempt + 1);
      }, delay);
      t.unref();
      timers.add(t);
    });
  };

  const report = (userId: string, roomId: string, connId: string, epoch: number, live: boolean): void => {
    // Anonymous Centrifugo connections are present as one reserved user, which has no status.
    if (userId === ANONYMOUS_USER_ID) return;
    // Control characters cannot occur in ids, so the separator keeps (room, conn) pairs apart.
    const conn = `${roomId}\u001f${connId}`;
    const mark = rank(epoch, live);
    const prev = applied.get(conn);
    // Never move a connection back (nor apply a change twice).
    if (prev !== undefined && prev >= mark) return;
    applied.set(conn, mark);
    apply(userId, conn, epoch, live, 0);
  };

  // The node that holds a connection (it reported the join: its `applied` holds the live mark of that
  // epoch) reports its leave, or the end of its disconnect grace, at once; so does the node whose reaper
  // ended it (a timeout, or a grace whose node is gone). Every other node holds its copy for a while and
  // drops it when the store reports the end applied; the copies are kept so that a crash of that node
  // before its report cannot lose the leave.
  const wantHold = Math.max(0, options.foreignLeaveDelayMs ?? 1_000);
  const maxHeld = options.maxHeldLeaves ?? 10_000;
  const held = new Map<string, { timer: NodeJS.Timeout; rank: number; send: () => void }>();
  const offEnded = wantHold > 0 ? status.onConnectionEnded?.((e) => {
    // Remembered even when no copy is held yet: on a Cluster the report may come before the leave itself.
    if ((applied.get(e.conn) ?? -1) < e.rank) applied.set(e.conn, e.rank);
    const h = held.get(e.conn);
    if (h === undefined || e.rank < h.rank) return;
    clearTimeout(h.timer);
    held.delete(e.conn);
  }) : undefined;
  // Ends this node's reaper made whose leave has not arrived yet (the script's reply and the feed race).
  const reapedHere = new Map<string, number>();
  const offReaped = wantHold > 0 && offEnded ? presence.onReaped?.((ended) => {
    for (const e of ended) {
      const conn = `${e.roomId}\u001f${e.connId}`;
      const mark = rank(e.epoch, false);
      const h = held.get(conn);
      if (h !== undefined && h.rank === mark) {
        clearTimeout(h.timer);
        held.delete(conn);
        h.send();
      } else if ((applied.get(conn) ?? -1) < mark) {
        if (reapedHere.size >= maxHeld) reapedHere.delete(reapedHere.keys().next().value!);
        reapedHere.set(conn, mark);
      }
    }
  }) : undefined;
  // Without the store's reports (memory: one node; NATS) a held copy would only go later: none is held.
  // Without the reaper's (an engine that does not report them), timeouts go at once from every node.
  const holdMs = offEnded ? wantHold : 0;
  const onLeave = (event: { userId: string; roomId: string; connId: string; epoch: number; reason: string }): void => {
    const conn = `${event.roomId}\u001f${event.connId}`;
    const known = applied.get(conn);
    const mark = rank(event.epoch, false);
    const reaped = reapedHere.get(conn) === mark;
    if (reaped) reapedHere.delete(conn);
    const send = (): void => report(event.userId, event.roomId, event.connId, event.epoch, false);
    if (holdMs === 0 || reaped || (event.reason === 'timeout' && !offReaped) || known === rank(event.epoch, true) || held.size >= maxHeld) {
      send();
      return;
    }
    if (known !== undefined && known >= mark) return; // already applied (reported by the store, or here)
    const prev = held.get(conn);
    if (prev !== undefined) {
      if (prev.rank >= mark) return;
      clearTimeout(prev.timer);
    }
    const timer = setTimeout(() => {
      held.delete(conn);
      if (!stopped) send();
    }, holdMs + Math.floor(Math.random() * (holdMs / 2)));
    timer.unref();
    held.set(conn, { timer, rank: mark, send });
  };

  // Joins are reported from now on, whatever the feed does: they need the store, not the feed.
  const offJoined = presence.onJoined((j) => report(j.userId, j.roomId, j.connId, j.epoch, true));
  // Leaves need the feed. Storage down at start: the subscription is retried in the background
  // (this resolves after the first attempt, so a caller whose storage is up misses nothing after it).
  let firstAttempt: () => void = () => undefined;
  const attempted = new Promise<void>((resolve) => (firstAttempt = resolve));
  const feed = retryInBackground(
    () => {
      const p = presence.subscribe(
        (event) => {
          if (event.type === 'leave') onLeave(event);
        },
        { only: 'leave' },
      );
      void p.then(firstAttempt, firstAttempt);
      return p;
    },
    { logger: options.logger ?? silentLogger, what: 'status bridge (presence leaves)', delaysMs: options.feedRetryDelaysMs ?? [500, 1_000, 2_000] },
  );
  if (options.waitForFeed !== false) await attempted;
  return async () => {
    stopped = true;
    offJoined();
    offEnded?.();
    offReaped?.();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const h of held.values()) clearTimeout(h.timer);
    held.clear();
    failures?.stop();
    feed.stop();
    await (await feed.result)?.();
  };
}

/** A connection's change as one number in the store's order: (e, live) < (e, ended) < (e+1, live). */
function rank(epoch: number, live: boolean): number {
  return epoch * 2 + (live ? 0 : 1);
}
