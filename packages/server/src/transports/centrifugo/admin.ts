import type { DisconnectCommand, UnsubscribeCommand } from '../../core/shared/control.js';
import { UNSUBSCRIBES } from './codes.js';
import { pushJson } from './codec.js';
import { closeSub } from './commands/subscribe.js';
import type { CentrifugoConnection } from './connection.js';

/** Whether a connection is one the command names: its user, and its client id when `client` (or `session`, the same id here: this server has no other session ids) is given. */
function targets(conn: CentrifugoConnection, cmd: { user: string; client?: string | undefined; session?: string | undefined }): boolean {
  if (conn.state !== 'connected' || conn.user !== cmd.user) return false;
  const id = cmd.client ?? cmd.session;
  return id === undefined || id === conn.client;
}

/**
 * The server API's disconnect on this node's Centrifugo connections: each
 * one of the user (not whitelisted) is closed with the command's code and
 * reason, which centrifuge-js reports in its `disconnected` event (3500+
 * codes: it does not reconnect), and leaves presence at once (no disconnect
 * grace). Returns how many were closed.
 */
export function disconnectCentrifugo(connections: Iterable<CentrifugoConnection>, cmd: DisconnectCommand): number {
  const keep = new Set(cmd.whitelist ?? []);
  let n = 0;
  for (const conn of [...connections]) {
    if (!targets(conn, cmd) || keep.has(conn.client)) continue;
    // A reason longer than a close frame holds (123 bytes) is cut rather than refused.
    // Presence is left at once ('shutdown' closes skip the disconnect grace), as Centrifugo removes a disconnected client.
    conn.close(cmd.code, Buffer.byteLength(cmd.reason) <= 123 ? cmd.reason : Buffer.from(cmd.reason).subarray(0, 123).toString('utf8').replace(/\uFFFD$/, ''), 'shutdown');
    n++;
  }
  return n;
}

/**
 * The server API's unsubscribe on this node's Centrifugo connections: the
 * subscription ends (presence left at once) and the client gets an
 * `unsubscribe` push with code 2000 "server unsubscribe" (it does not
 * subscribe again by itself). Returns how many ended.
 */
export async function unsubscribeCentrifugo(connections: Iterable<CentrifugoConnection>, cmd: UnsubscribeCommand): Promise<number> {
  const ended: Array<Promise<void>> = [];
  for (const conn of [...connections]) {
    if (!targets(conn, cmd)) continue;
    const s = conn.subs.get(cmd.channel);
    if (!s) continue;
    conn.subs.delete(cmd.channel);
    conn.send(pushJson('unsubscribe', cmd.channel, UNSUBSCRIBES.server));
    ended.push(closeSub(conn, s, 'leave'));
  }
  await Promise.all(ended);
  return ended.length;
}
