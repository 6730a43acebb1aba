import type { UserId } from '../shared/ids.js';

/** A user's effective status: computed when read (SPEC §7). */
export type UserStatus = 'online' | 'away' | 'busy' | 'offline';
export const USER_STATUSES: readonly UserStatus[] = ['online', 'away', 'busy', 'offline'];

/** A status a user may set by hand; `offline` means invisible. */
export type ManualStatus = Exclude<UserStatus, 'online'>;

/** Limits of the status API. */
export const STATUS_LIMITS = {
  /** Longest status message, in UTF-16 code units. */
  maxMessageLength: 100,
  /** Longest `ttlSeconds` / `messageTtlSeconds` (7 days). */
  maxTtlSeconds: 604_800,
} as const;

/**
 * One user's status as every read and every `status:event` reports it.
 *
 * @example
 * { userId: 'ada', status: 'busy', message: 'in a meeting', manual: true, expiresAt: 1795400000000,
 *   messageExpiresAt: null, lastSeen: 1795396794402, updatedAt: 1795396790000, nodeId: 'eu-1', seq: 7 }
 */
export interface StatusRecord {
  userId: UserId;
  /** The effective status at the time of the read (or of the change, in an event). */
  status: UserStatus;
  /** The user's message, whatever the status, until it expires; null when there is none. */
  message: string | null;
  /** True when `status` comes from a manual status (away, busy, offline = invisible) that has not expired. */
  manual: boolean;
  /** When the manual status runs out (ms since the Unix epoch); null when it does not, or there is none. */
  expiresAt: number | null;
  /** When the message runs out; null when it does not, or there is none. */
  messageExpiresAt: number | null;
  /**
   * End of the last connected period; while connected (and not invisible),
   * the time of the read. Frozen while invisible. Null for a user never seen.
   */
  lastSeen: number | null;
  /** Last change of the record; null for a user never seen. */
  updatedAt: number | null;
  /** The node that made the last change; null for a user never seen. */
  nodeId: string | null;
  /**
   * Per-user change counter: rises by one per status event (a change of the
   * effective status or message). A watcher ignores events whose `seq` is not
   * above the record it already holds. 0 for a user never changed.
   */
  seq: number;
  /**
   * Present (true) only on a record a node answered from its cache while the
   * status storage could not be reached (SPEC §10): exact as of the loss,
   * with expiries applied as of the read. Never on events.
   */
  stale?: true;
}

/** The payload of a pushed `status:event`: the user's record right after the change. */
export type StatusEvent = StatusRecord;

/** Body of `PUT /api/v2/presence/{userId}` and `status:set`. */
export interface StatusUpdate {
  status: UserStatus;
  /** Sets the message; `null` clears it; absent keeps it. */
  message?: string | null | undefined;
  /** Manual status: expires after this long. `online`: keeps a socket-less user connected this long. */
  ttlSeconds?: number | undefined;
  /** The message expires after this long. */
  messageTtlSeconds?: number | undefined;
}
