import { CentrifugoDisconnect, DISCONNECTS } from '../codes.js';
import type { Command } from '../codec.js';
import type { CentrifugoConnection } from '../connection.js';
import { onHistory, onPresence, onPresenceStats, onPublish, onRpc, onSend } from './channel.js';
import { onConnect, onRefresh } from './connect.js';
import { onSubRefresh, onSubscribe, onUnsubscribe } from './subscribe.js';

function badRequest(why: string): CentrifugoDisconnect {
  return CentrifugoDisconnect.of(DISCONNECTS.badRequest, why);
}

/**
 * Runs one command (never a pong: the connection answers those at once).
 * Centrifugo's rules: an unknown method (and `ping`, which has no handler)
 * closes with 3501, as does any command before a successful connect, a
 * second connect, or a command of a connection whose connect failed.
 */
export async function dispatch(conn: CentrifugoConnection, cmd: Command): Promise<void> {
  if (cmd.method === undefined) throw badRequest('unknown method');
  if (cmd.method === 'connect') {
    if (conn.state !== 'new') throw badRequest(conn.state === 'connected' ? 'client already authenticated' : 'connect after a failed connect');
    return onConnect(conn, cmd.id, cmd.req);
  }
  if (conn.state !== 'connected') throw badRequest(`${cmd.method} before a successful connect`);
  switch (cmd.method) {
    case 'subscribe':
      return onSubscribe(conn, cmd.id, cmd.req);
    case 'unsubscribe':
      return onUnsubscribe(conn, cmd.id, cmd.req);
    case 'publish':
      return onPublish(conn, cmd.id, cmd.req);
    case 'presence':
      return onPresence(conn, cmd.id, cmd.req);
    case 'presence_stats':
      return onPresenceStats(conn, cmd.id, cmd.req);
    case 'history':
      return onHistory(conn, cmd.id, cmd.req);
    case 'send':
      return onSend(conn, cmd.id, cmd.req);
    case 'rpc':
      return onRpc(conn, cmd.id, cmd.req);
    case 'refresh':
      return onRefresh(conn, cmd.id, cmd.req);
    case 'sub_refresh':
      return onSubRefresh(conn, cmd.id, cmd.req);
  }
}
