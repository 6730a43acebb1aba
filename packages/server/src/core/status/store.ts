import type { ManualStatus, StatusRecord, UserId } from 'realtime-message-protocol';
import type { StatusState } from './model.js';

/** What every write carries besides its own fields: one clock and one node id rule a cluster of services. */
export interface StatusContext {
  now: number;
  /** The node making the change (reported as `nodeId`). */
  nodeId: string;
  /** Automatic away after this long without activity; 0 = off. Needed by the store to detect changes atomically. */
  awayAfterMs: number;
}

/** One write of a user's record, applied atomically with the change detection and its event. */
export type StatusCommand = StatusContext & { userId: UserId } & (
    | {
        type: 'set';
        /** A manual status, or null to clear it (`PUT online`). */
        manual: ManualStatus | null;
        manualExpiresAt: number | null;
        /** Keep-alive until then (`PUT online` with ttlSeconds); undefined keeps the current one. */
        keepAliveUntil?: number | undefined;
        /** The new message, null to clear it, undefined to keep it. */
        message?: string | null | undefined;
        messageExpiresAt: number | null;
      }
    /** `DELETE`: manual status and message cleared. */
    | { type: 'clear' }
    /** Reported activity (automatic away). */
    | { type: 'activity' }
    /**
     * A presence connection of the user became live (`live`) or ended, at
     * `epoch`. Idempotent and order-free per connection: a store keeps the
     * highest (epoch, ended) per `conn` and ignores anything not above it, so
     * every node may apply every presence event, in any order, and the
     * connection count changes once per real change.
     */
    | {
        type: 'conn';
        conn: string;
        epoch: number;
        live: boolean;
        /** `false`: the caller does not use the result's `state` (nor `event`); a store may then leave them out. @default true */
        stateWanted?: boolean | undefined;
      }
  );

export type StatusCommandType = StatusCommand['type'];

/** What one write did. */
export interface StatusWriteResult {
  /** The user's state after the write; undefined when the write changed nothing for a user never seen. */
  state: StatusState | undefined;
  /** The status event this write published (exactly one per change), if the effective status or message changed. */
  event?: StatusRecord | undefined;
}

/**
 * What a store delivers to every node for every write of a record: the
 * version (caches drop what is older) and, when the effective status or
 * message changed, the status event. Per user, in the order of the writes.
 */
export interface StatusFeedItem {
  userId: UserId;
  version: number;
  event?: StatusRecord | undefined;
  /**
   * The end of a presence connection this write applied: its id and rank
   * (epoch × 2 + 1). A store may report it (Redis does) so that the other
   * nodes drop their own copy of the leave; the version is then the record's
   * current one, unchanged when the live count did not cross zero.
   */
  ended?: { conn: string; rank: number } | undefined;
}

/** See {@link StatusStore.subscribe}. */
export type StatusFeedState = 'interrupted' | 'resumed';

export interface SweepCommand extends StatusContext {
  /** Most users to visit in one call; the rest wait for the next. */
  limit: number;
  /** The sweeper's period (a claim of a sweeper that died expires after a small multiple of it). */
  intervalMs: number;
}

export interface SweepResult {
  /** Users whose deadline was due and who were visited. */
  visited: number;
  /** Status events emitted. */
  events: number;
  /** True when due work is left because `limit` was reached: call again now. */
  more: boolean;
}

/**
 * Storage of user status. Each write is one atomic step that also decides
 * whether the effective status or message changed and, if so, publishes the
 * one status event for it: so however many nodes apply the same presence
 * events or sweep the same deadlines, each change yields exactly one event.
 *
 * Stores trust their inputs (validated by {@link StatusService}); every time
 * is passed in.
 */
export interface StatusStore {
  /** `memory`, `redis`, `redis-cluster`. */
  readonly kind: string;
  /** Its feed reports every applied end of a presence connection (`StatusFeedItem.ended`). */
  readonly reportsEnds?: boolean;
  /** Each user's state in request order; undefined for a user never seen. */
  read(userIds: readonly UserId[]): Promise<Array<StatusState | undefined>>;
  write(cmd: StatusCommand): Promise<StatusWriteResult>;
  /** Visits users whose deadline passed (expiries, automatic away) and emits their events; safe on every node at once. */
  sweep(cmd: SweepCommand): Promise<SweepResult>;
  /**
   * Delivers every write of every user from every node, in order per user,
   * until the returned function is called. A store whose feed can drop items
   * (a subscriber connection that broke) reports it through `onState`:
   * `interrupted` as soon as items may be lost, `resumed` once the feed
   * delivers every item again (after re-subscribing); whatever was written
   * in between was not delivered. A store that never loses items never calls it.
   */
  subscribe(listener: (item: StatusFeedItem) => void, onState?: (state: StatusFeedState) => void): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  /** True when `err` means the store cannot be reached (clients get `unavailable`). @default never */
  isUnavailable?(err: unknown): boolean;
  /** Releases what the store opened itself. */
  close(): Promise<void>;
}
