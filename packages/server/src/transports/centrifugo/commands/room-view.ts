import type { JsonValue, RoomSnapshot } from 'realtime-message-protocol';
import type { RoomFeedItem } from '../../../core/presence/engine.js';
import { clientInfoOf } from '../../../core/channels/presence-info.js';
import { wireClientInfo, type WireClientInfo } from '../codec.js';

/** Most room connections one subscription remembers for its leave pushes; beyond, a leave carries `user` and `client` only. */
export const MAX_REMEMBERED = 10_000;

type State = Record<string, JsonValue>;

/**
 * What a subscriber with join/leave pushes knows of its channel's room: per
 * connection its user and state, from the room's join snapshot and the join
 * and update events that follow, so that a `leave` push carries the same
 * `ClientInfo` (`conn_info`, `chan_info`) as the `join` did, as in
 * Centrifugo (a room's leave event carries no state). Bounded by
 * {@link MAX_REMEMBERED}.
 */
export class RoomView {
  private readonly known = new Map<string, { userId: string; state: State }>();
  /** Connections that left before the join snapshot was applied (so the snapshot does not bring them back); undefined once applied. */
  private left: Set<string> | undefined = new Set();

  /** The join's snapshot: connections not already known from events, and not gone since. */
  applySnapshot(snapshot: RoomSnapshot): void {
    const left = this.left;
    this.left = undefined;
    for (const c of snapshot.connections) {
      if (left?.has(c.connId) || this.known.has(c.connId)) continue;
      this.remember(c.connId, c.userId, c.state);
    }
  }

  /** The `ClientInfo` of a join or leave event, as the push carries it; undefined for other items. */
  infoOf(item: RoomFeedItem): WireClientInfo | undefined {
    switch (item.type) {
      case 'join':
        this.remember(item.connId, item.userId, item.state);
        return wireClientInfo(clientInfoOf(item.userId, item.connId, item.state));
      case 'update':
        if (this.known.has(item.connId)) this.known.set(item.connId, { userId: item.userId, state: item.state });
        return undefined;
      case 'leave': {
        const was = this.known.get(item.connId);
        this.known.delete(item.connId);
        this.left?.add(item.connId);
        return wireClientInfo(clientInfoOf(item.userId, item.connId, was?.state));
      }
      default:
        return undefined;
    }
  }

  private remember(connId: string, userId: string, state: State): void {
    if (this.known.size < MAX_REMEMBERED || this.known.has(connId)) this.known.set(connId, { userId, state });
  }
}
