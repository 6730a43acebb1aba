import type { StatusCommand } from './store.js';
import { effective, isConnected, manualInForce, type Effective, type StatusState } from './model.js';

/**
 * The reference semantics of a store write, for stores written in
 * TypeScript (memory). The Redis scripts implement the same steps in Lua.
 * `before` is the user's state (undefined: never seen), `connected` whether
 * the user has a live presence connection after the write (the store tracks
 * connections itself; see {@link StatusCommand} `conn`). Returns the new
 * state, or undefined when nothing changed.
 */
export function applyWrite(before: StatusState | undefined, cmd: StatusCommand, connected: boolean): StatusState | undefined {
  const now = cmd.now;
  const s: StatusState = before
    ? { ...before }
    : { version: 0, seq: 0, connected: false, keepAliveUntil: null, manual: null, manualExpiresAt: null, message: null, messageExpiresAt: null, lastSeen: null, lastActivity: null, updatedAt: now, nodeId: cmd.nodeId };
  const wasConnected = before ? isConnected(before, now) : false;
  const wasInvisible = before ? manualInForce(before, now) === 'offline' : false;
  switch (cmd.type) {
    case 'conn': {
      if (before && before.connected === connected) return undefined;
      if (!before && !connected) return undefined;
      s.connected = connected;
      if (connected) s.lastActivity = now;
      break;
    }
    case 'set': {
      s.manual = cmd.manual;
      s.manualExpiresAt = cmd.manual === null ? null : cmd.manualExpiresAt;
      if (cmd.keepAliveUntil !== undefined) {
        s.keepAliveUntil = cmd.keepAliveUntil;
        s.lastActivity = now;
      }
      if (cmd.message !== undefined) {
        s.message = cmd.message === '' ? null : cmd.message;
        s.messageExpiresAt = s.message === null ? null : cmd.messageExpiresAt;
      }
      break;
    }
    case 'clear':
      s.manual = null;
      s.manualExpiresAt = null;
      s.message = null;
      s.messageExpiresAt = null;
      break;
    case 'activity':
      if (!before) return undefined;
      s.lastActivity = now;
      break;
  }
  settleConnection(s, now, wasConnected, wasInvisible);
  s.version += 1;
  s.updatedAt = now;
  s.nodeId = cmd.nodeId;
  return s;
}

/**
 * lastSeen is the end of the last connected period: it moves whenever the
 * user is connected and visible at a write (so it holds the start or end of
 * a connected period), and never while invisible (SPEC: invisible freezes
 * it). Going invisible while connected ends the visible period now.
 */
function settleConnection(s: StatusState, now: number, wasConnected: boolean, wasInvisible: boolean): void {
  const connected = isConnected(s, now);
  const invisible = manualInForce(s, now) === 'offline';
  if ((connected || wasConnected) && !(invisible && wasInvisible)) s.lastSeen = now;
}

/**
 * A sweeper's visit at `now`: expired keep-alive, manual status and message
 * are dropped. A keep-alive that ran out with no live connection ends the
 * connected period at its deadline (lastSeen), unless invisible. Returns the
 * new state, or undefined when nothing was due.
 */
export function applyDue(before: StatusState, now: number, nodeId: string): StatusState | undefined {
  const s = { ...before };
  let changed = false;
  if (s.keepAliveUntil !== null && s.keepAliveUntil <= now) {
    if (!s.connected && manualInForce(before, s.keepAliveUntil - 1) !== 'offline') s.lastSeen = s.keepAliveUntil;
    s.keepAliveUntil = null;
    changed = true;
  }
  if (s.manual !== null && s.manualExpiresAt !== null && s.manualExpiresAt <= now) {
    s.manual = null;
    s.manualExpiresAt = null;
    changed = true;
  }
  if (s.message !== null && s.messageExpiresAt !== null && s.messageExpiresAt <= now) {
    s.message = null;
    s.messageExpiresAt = null;
    changed = true;
  }
  if (!changed) return undefined;
  s.version += 1;
  s.updatedAt = now;
  s.nodeId = nodeId;
  return s;
}

export function sameEffective(a: Effective, b: Effective): boolean {
  return a.status === b.status && a.message === b.message;
}

export { effective };
