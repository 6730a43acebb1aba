import type { ClientInfo } from 'realtime-message-protocol';
import { CLIENT_ERRORS, CentrifugoDisconnect, CentrifugoError, DISCONNECTS } from '../codes.js';
import { replyJson, wireClientInfo, wirePublication, type ChannelRequest, type HistoryRequest, type PublishRequest, type RpcRequest, type SendRequest } from '../codec.js';
import type { CentrifugoConnection } from '../connection.js';
import { requirePermission, resolveChannel } from './access.js';

/** The publisher's ClientInfo: its user, connection id, `conn_info` and (while subscribed) `chan_info`. */
function publisher(conn: CentrifugoConnection, channel: string): ClientInfo {
  const info: ClientInfo = { user: conn.user, client: conn.client };
  if (conn.info !== undefined) info.connInfo = conn.info;
  const chanInfo = conn.subs.get(channel)?.chanInfo;
  if (chanInfo !== undefined) info.chanInfo = chanInfo;
  return info;
}

export async function onPublish(conn: CentrifugoConnection, id: number, req: PublishRequest): Promise<void> {
  const r = resolveChannel(conn, req.channel);
  if (req.data === undefined) throw CentrifugoError.of(CLIENT_ERRORS.badRequest, 'publish needs data');
  const action = { transport: 'centrifugo' as const, userId: conn.user, action: 'publish' as const, target: r.channel, data: req.data, connection: conn };
  // The namespace options decide, unless a hook does (Centrifugo's publish proxy).
  if (!conn.ctx.extensions.decides(action)) requirePermission(conn, r, 'publish');
  const outcome = await conn.ctx.extensions.check(action);
  // A hook may replace the data (the publish proxy's result `data`) or ask not to keep it (`skip_history`).
  const data = outcome?.data !== undefined ? outcome.data : req.data;
  await conn.ctx.channels.publish(r.channel, data, { info: publisher(conn, r.channel), ...(outcome?.skipHistory === true ? { skipHistory: true } : {}) });
  conn.send(replyJson(id, 'publish', {}));
}

/** `history`: `limit` 0 gives only the position, -1 up to the cap, larger ones are capped (Centrifugo's client history limit). */
export async function onHistory(conn: CentrifugoConnection, id: number, req: HistoryRequest): Promise<void> {
  const r = resolveChannel(conn, req.channel);
  requirePermission(conn, r, 'history');
  const max = conn.ctx.limits.historyMaxLimit;
  const limit = req.limit === undefined ? 0 : req.limit > max ? max : req.limit;
  const since = req.since ? { offset: req.since.offset ?? 0, epoch: req.since.epoch ?? '' } : undefined;
  const res = await conn.ctx.channels.history(r.channel, { limit, reverse: req.reverse ?? false, ...(since ? { since } : {}) });
  // publications, epoch and offset are always present, as Centrifugo serializes them.
  conn.send(replyJson(id, 'history', { publications: res.publications.map(wirePublication), epoch: res.epoch, offset: res.offset }));
}

export async function onPresence(conn: CentrifugoConnection, id: number, req: ChannelRequest): Promise<void> {
  const r = resolveChannel(conn, req.channel);
  requirePermission(conn, r, 'presence');
  const clients = await conn.ctx.channels.presence(r.channel);
  const presence = Object.fromEntries(Object.entries(clients).map(([client, info]) => [client, wireClientInfo(info)]));
  conn.send(replyJson(id, 'presence', { presence }));
}

export async function onPresenceStats(conn: CentrifugoConnection, id: number, req: ChannelRequest): Promise<void> {
  const r = resolveChannel(conn, req.channel);
  requirePermission(conn, r, 'presence');
  const stats = await conn.ctx.channels.presenceStats(r.channel);
  conn.send(replyJson(id, 'presence_stats', { num_clients: stats.numClients, num_users: stats.numUsers }));
}

/**
 * `rpc`: answered by the extensions' `onRpc` hooks (where the RPC proxy
 * plugs in); with none answering, 108 "not available", as Centrifugo
 * answers without an RPC proxy.
 */
export async function onRpc(conn: CentrifugoConnection, id: number, req: RpcRequest): Promise<void> {
  const method = req.method ?? '';
  const out = await conn.ctx.extensions.rpc({ transport: 'centrifugo', userId: conn.user, action: 'rpc', target: method, event: method, data: req.data, connection: conn });
  if (out === undefined) throw CentrifugoError.of(CLIENT_ERRORS.notAvailable, `no handler for rpc method '${method}'`);
  // null: an answer without data (the RPC proxy's empty result), sent as Centrifugo does, without `data`.
  conn.send(replyJson(id, 'rpc', out === null ? {} : { data: out }));
}

/** `send` (asynchronous message, no reply): Centrifugo without a message handler closes with 3508. */
export function onSend(_conn: CentrifugoConnection, _id: number, _req: SendRequest): Promise<void> {
  return Promise.reject(CentrifugoDisconnect.of(DISCONNECTS.notAvailable, 'send is not handled by this server'));
}
