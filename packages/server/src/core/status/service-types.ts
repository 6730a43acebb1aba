import type { StatusRecord } from 'realtime-message-protocol';
import type { StatusCommandType } from './store.js';

/** The types the status service's API uses beside its options. */

export type StatusOp = 'read' | StatusCommandType | 'sweep' | 'subscribe';

/** A presence connection of a user starting or ending: what the composition root's bridge reports. */
export interface ConnectionChange {
  userId: string;
  /** Identifies the connection across nodes (room + connId). */
  conn: string;
  /** The connection's epoch (presence fencing): later incarnations are higher. */
  epoch: number;
  live: boolean;
}

export type StatusListener = (event: StatusRecord) => void;

/**
 * What {@link StatusService.getManyOrStale} answers: fresh records, or
 * records from this node's cache while the store cannot be reached.
 */
export type StatusRead =
  | { users: StatusRecord[]; stale: false }
  | {
      users: StatusRecord[];
      stale: true;
      /**
       * Since when this node may have missed changes (ms since epoch): the
       * records are exact as of then (and their expiries are applied as of
       * now). The moment the feed broke, or now when only the store read failed.
       */
      since: number;
    };
