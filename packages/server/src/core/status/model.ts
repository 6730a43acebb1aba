import type { ManualStatus, StatusRecord, UserId, UserStatus } from 'realtime-message-protocol';

/**
 * What a store keeps of one user: the inputs of the effective status, not the
 * status itself (SPEC §7: the status is computed when read). The Redis
 * scripts (engines/redis/scripts/status-lua.ts) compute the same functions as
 * this file; the conformance suite holds both to the same answers.
 */
export interface StatusState {
  /** Rises by one per write of the record (cache invalidation orders by it). */
  version: number;
  /** Rises by one per status event (a change of the effective status or message). */
  seq: number;
  /** At least one live presence connection (any room, any node). */
  connected: boolean;
  /** A REST keep-alive (`PUT online` with ttlSeconds) keeps the user connected until then. */
  keepAliveUntil: number | null;
  manual: ManualStatus | null;
  manualExpiresAt: number | null;
  message: string | null;
  messageExpiresAt: number | null;
  lastSeen: number | null;
  lastActivity: number | null;
  updatedAt: number;
  nodeId: string;
}

/** The part of the record that status events follow: one event per change of either. */
export interface Effective {
  status: UserStatus;
  message: string | null;
}

const active = (until: number | null, now: number): boolean => until === null || until > now;

export function isConnected(s: StatusState, now: number): boolean {
  return s.connected || (s.keepAliveUntil !== null && s.keepAliveUntil > now);
}

export function manualInForce(s: StatusState, now: number): ManualStatus | null {
  return s.manual !== null && active(s.manualExpiresAt, now) ? s.manual : null;
}

/** SPEC §7's four rules, in order. `awayAfterMs` 0 turns automatic away off. */
export function effective(s: StatusState | undefined, now: number, awayAfterMs: number): Effective {
  if (!s) return { status: 'offline', message: null };
  const message = s.message !== null && active(s.messageExpiresAt, now) ? s.message : null;
  if (!isConnected(s, now)) return { status: 'offline', message };
  const manual = manualInForce(s, now);
  if (manual) return { status: manual, message };
  if (awayAfterMs > 0 && s.lastActivity !== null && now - s.lastActivity >= awayAfterMs) return { status: 'away', message };
  return { status: 'online', message };
}

/**
 * `lastSeen` of a user who is not connected now. A keep-alive that ran out
 * ended a connected period at its own end, even before the sweeper recorded
 * it (a read between the expiry and the sweep, or a cached state on another
 * node, would otherwise report the time of the PUT); an invisible user's
 * `lastSeen` stays frozen.
 */
function settledLastSeen(s: StatusState, now: number): number | null {
  const until = s.keepAliveUntil;
  if (s.connected || until === null || until > now) return s.lastSeen;
  const invisibleThen = s.manual === 'offline' && (s.manualExpiresAt === null || s.manualExpiresAt >= until);
  if (invisibleThen) return s.lastSeen;
  return s.lastSeen === null ? until : Math.max(s.lastSeen, until);
}

/** The record a read (or an event) reports at `now`: {@link effective}'s rules, computed without intermediate objects (every cached read runs it). */
export function toRecord(userId: UserId, s: StatusState | undefined, now: number, awayAfterMs: number): StatusRecord {
  if (!s) return { userId, status: 'offline', message: null, manual: false, expiresAt: null, messageExpiresAt: null, lastSeen: null, updatedAt: null, nodeId: null, seq: 0 };
  const message = s.message !== null && active(s.messageExpiresAt, now) ? s.message : null;
  const connected = isConnected(s, now);
  const manual = manualInForce(s, now);
  let status: UserStatus;
  if (!connected) status = 'offline';
  else if (manual !== null) status = manual;
  else if (awayAfterMs > 0 && s.lastActivity !== null && now - s.lastActivity >= awayAfterMs) status = 'away';
  else status = 'online';
  const visible = connected && manual !== 'offline';
  return {
    userId,
    status,
    message,
    manual: manual !== null,
    expiresAt: manual !== null ? s.manualExpiresAt : null,
    messageExpiresAt: message !== null ? s.messageExpiresAt : null,
    lastSeen: visible ? now : settledLastSeen(s, now),
    updatedAt: s.updatedAt,
    nodeId: s.nodeId,
    seq: s.seq,
  };
}

/**
 * The next time the effective status or message of `s` may change on its own
 * (an expiry, automatic away), or null. The store's sweeper visits the user
 * then; an early visit is harmless (it changes nothing), a late one delays
 * the event.
 */
export function nextDeadline(s: StatusState, now: number, awayAfterMs: number): number | null {
  let next: number | null = null;
  const consider = (t: number | null): void => {
    if (t !== null && t > now && (next === null || t < next)) next = t;
  };
  consider(s.keepAliveUntil);
  if (s.manual !== null) consider(s.manualExpiresAt);
  if (s.message !== null) consider(s.messageExpiresAt);
  if (awayAfterMs > 0 && s.lastActivity !== null && isConnected(s, now)) consider(s.lastActivity + awayAfterMs);
  return next;
}
