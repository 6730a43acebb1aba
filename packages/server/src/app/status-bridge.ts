import { LRUCache } from 'lru-cache';
import type { PresenceEvent } from 'realtime-message-protocol';
import type { Logger } from '../core/shared/logger.js';
import { LogSummary } from '../core/shared/log-summary.js';
import type { ConnectionChange } from '../core/status/service.js';

/** What the bridge needs of presence: every event of every room on every node (`PresenceService.subscribe(listener)`). */
export interface PresenceFeed {
  subscribe(listener: (event: PresenceEvent) => void): Promise<() => Promise<void>>;
}

/** What the bridge needs of status. */
export interface ConnectionSink {
  connection(change: ConnectionChange): Promise<void>;
}

export interface StatusBridgeOptions {
  logger?: Logger;
  /** Connections whose last applied (epoch, live) this node remembers, to skip repeated `update` events. @default 100000 */
  rememberConnections?: number;
}

/**
 * Makes user status follow presence (SPEC §7 "connected"): every presence
 * event of every room, from every node, becomes a connection change of its
 * user: `join` and `update` (a resume, a state patch) say the connection is
 * live at its epoch, `leave` (leave, end of disconnect grace, expiry found by
 * any node's reaper, also of a crashed node) that it ended.
 *
 * Every node's bridge applies every event. The status store keeps, per
 * connection, the highest (epoch, ended) it saw and ignores the rest, and
 * publishes an event only in the one script that moves the user's live count
 * across zero; so N nodes applying the same events, late, twice or in another
 * order per room, produce exactly one status event per change, and a node
 * that missed an event (a subscriber reconnect) is covered by the others.
 *
 * `update` events (state patches) are frequent and change nothing once the
 * connection is known live at that epoch: the bridge remembers the last
 * (epoch, live) it applied per connection and skips repeats.
 */
export async function bridgePresenceToStatus(presence: PresenceFeed, status: ConnectionSink, options: StatusBridgeOptions = {}): Promise<() => Promise<void>> {
  const applied = new LRUCache<string, string>({ max: options.rememberConnections ?? 100_000 });
  const failures = options.logger ? new LogSummary(options.logger, 'status bridge could not apply a presence event') : undefined;
  const off = await presence.subscribe((event) => {
    const live = event.type !== 'leave';
    // Control characters cannot occur in ids, so the separator keeps (room, conn) pairs apart.
    const conn = `${event.roomId}\u001f${event.connId}`;
    const mark = `${event.epoch}:${live ? 1 : 0}`;
    if (applied.get(conn) === mark) return;
    applied.set(conn, mark);
    status.connection({ userId: event.userId, conn, epoch: event.epoch, live }).catch((err: unknown) => {
      // Another node applies the same event; this one retries nothing (the next event of the connection carries the state).
      applied.delete(conn);
      failures?.note('apply', { err: err instanceof Error ? err.message : String(err), userId: event.userId });
    });
  });
  return async () => {
    failures?.stop();
    await off();
  };
}
