import { PresenceError } from 'realtime-message-protocol';
import { ANONYMOUS_USER_ID } from '../../../core/channels/presence-info.js';
import { CLIENT_ERRORS, CentrifugoDisconnect, CentrifugoError, DISCONNECTS } from '../codes.js';
import { replyJson, type ConnectRequest, type RefreshRequest } from '../codec.js';
import type { CentrifugoConnection } from '../connection.js';
import { TokenError, connectionCredentials, type ConnectionCredentials } from '../tokens.js';
import { activate, closeSub, openSub, type OpenedSub } from './subscribe.js';

function anonymous(): ConnectionCredentials {
  return { user: '', expiresAt: undefined, info: undefined, data: undefined, meta: undefined, subs: new Map() };
}

/** A token's refusal: expired → 109 (the client gets a new token and reconnects); invalid → close 3500. */
function tokenFailure(err: unknown): unknown {
  if (!(err instanceof TokenError)) return err;
  return err.kind === 'expired' ? CentrifugoError.of(CLIENT_ERRORS.tokenExpired) : CentrifugoDisconnect.of(DISCONNECTS.invalidToken, err.message);
}

/**
 * Who connects: a connection token (Centrifugo's claims) when one is sent;
 * without one, the extensions' `authenticate` (where a connect proxy plugs
 * in: its result in the shape of the token's claims), or anonymous when no
 * extension authenticates (open mode).
 */
async function credentials(conn: CentrifugoConnection, req: ConnectRequest): Promise<ConnectionCredentials> {
  const { ctx } = conn;
  if (req.token) {
    if (!ctx.tokens) throw CentrifugoDisconnect.of(DISCONNECTS.invalidToken, 'the server has no token keys (AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL)');
    try {
      return await ctx.tokens.connection(req.token);
    } catch (err) {
      throw tokenFailure(err);
    }
  }
  if (!ctx.extensions.authenticates) return anonymous();
  let verified;
  try {
    verified = await ctx.extensions.authenticate({ transport: 'centrifugo', token: undefined, headers: conn.transportHeaders, remoteAddress: conn.remoteAddress, connection: conn });
  } catch (err) {
    // No credentials where the server needs them: Centrifugo's "client credentials not found".
    if (err instanceof PresenceError && err.code === 'unauthorized') throw CentrifugoDisconnect.of(DISCONNECTS.badRequest, 'client credentials not found');
    throw tokenFailure(err);
  }
  if (!verified) return anonymous();
  const creds = connectionCredentials({ ...verified.claims, sub: verified.userId });
  if (verified.expiresAt !== undefined) creds.expiresAt = verified.expiresAt;
  return creds;
}

/** `expires` and `ttl` of a reply: only when the client refreshes (not when an extension refreshes on the server, as with Centrifugo's refresh proxy). */
function ttlOf(conn: CentrifugoConnection, expiresAt: number | undefined): { expires?: true; ttl?: number } {
  if (expiresAt === undefined || conn.ctx.extensions.refreshesOnServer('centrifugo')) return {};
  return { expires: true, ttl: Math.max(1, Math.ceil((expiresAt - Date.now()) / 1_000)) };
}

export async function onConnect(conn: CentrifugoConnection, id: number, req: ConnectRequest): Promise<void> {
  const { ctx } = conn;
  conn.state = 'connecting';
  const opened: OpenedSub[] = [];
  // Known before the credentials: connect hooks (the connect proxy) read them.
  conn.connectRequest = req;
  conn.name = req.name;
  conn.clientVersion = req.version;
  conn.headers = req.headers ?? {};
  try {
    const creds = await credentials(conn, req);
    // The presence rooms' name for anonymous connections: a token or a connect proxy naming it would pass for them.
    if (creds.user === ANONYMOUS_USER_ID) throw CentrifugoDisconnect.of(DISCONNECTS.invalidToken, `user id '${ANONYMOUS_USER_ID}' is reserved for anonymous connections`);
    if (creds.expiresAt !== undefined && creds.expiresAt <= Date.now()) throw CentrifugoError.of(CLIENT_ERRORS.tokenExpired);
    await ctx.extensions.connect({ transport: 'centrifugo', token: req.token, headers: conn.transportHeaders, remoteAddress: conn.remoteAddress, connection: conn, userId: creds.user });
    conn.user = creds.user;
    conn.info = creds.info;
    conn.meta = creds.meta;
    conn.connectData = creds.data;
    conn.expiresAt = creds.expiresAt;
    if (creds.subs.size > ctx.limits.maxChannelsPerConnection) {
      throw CentrifugoDisconnect.of(DISCONNECTS.channelLimit, `${creds.subs.size} server-side subscriptions; the limit is ${ctx.limits.maxChannelsPerConnection}`);
    }
    // Server-side subscriptions, recovered from the positions the client sent in `subs`.
    for (const [channel, o] of creds.subs) {
      const pos = req.subs?.[channel];
      const sub = await openSub(conn, {
        channel,
        serverSide: true,
        recover: pos?.recover ? { offset: pos.offset ?? 0, epoch: pos.epoch ?? '' } : undefined,
        override: o.override,
        chanInfo: o.info,
        data: o.data,
        expiresAt: o.expiresAt,
      });
      if (!sub) return; // closed meanwhile
      opened.push(sub);
    }
  } catch (err) {
    conn.state = 'failed';
    await Promise.all(opened.map((o) => closeSub(conn, o.sub, 'leave')));
    for (const o of opened) conn.subs.delete(o.sub.channel);
    throw err;
  }
  if (conn.state !== 'connecting') return;
  const { pingIntervalMs } = ctx.limits;
  const result = {
    client: conn.client,
    version: ctx.version,
    ...ttlOf(conn, conn.expiresAt),
    ...(conn.connectData === undefined ? {} : { data: conn.connectData }),
    ...(opened.length > 0 ? { subs: Object.fromEntries(opened.map((o) => [o.sub.channel, o.result])) } : {}),
    ...(pingIntervalMs > 0 ? { ping: Math.max(1, Math.round(pingIntervalMs / 1_000)), pong: true } : {}),
  };
  conn.send(replyJson(id, 'connect', result));
  conn.connected();
  for (const o of opened) activate(conn, o.sub);
}

/**
 * `refresh`: a new connection token for the same user (client-side refresh,
 * through centrifuge-js's getToken). Expired: close 3005; invalid or
 * another user: close 3500; with a server-side refresh (Centrifugo's
 * refresh proxy) the command is not expected: close 3501.
 */
export async function onRefresh(conn: CentrifugoConnection, id: number, req: RefreshRequest): Promise<void> {
  const { ctx } = conn;
  if (!req.token) throw CentrifugoDisconnect.of(DISCONNECTS.badRequest, 'refresh without a token');
  // Connections are refreshed on the server (Centrifugo's refresh proxy): a client refresh is not expected (Go: "server-side refresh expected").
  if (ctx.extensions.refreshesOnServer('centrifugo')) throw CentrifugoDisconnect.of(DISCONNECTS.badRequest, 'server-side refresh expected');
  if (!ctx.tokens) throw CentrifugoDisconnect.of(DISCONNECTS.invalidToken, 'the server has no token keys');
  let creds: ConnectionCredentials;
  try {
    creds = await ctx.tokens.connection(req.token);
  } catch (err) {
    if (err instanceof TokenError && err.kind === 'expired') throw CentrifugoDisconnect.of(DISCONNECTS.connectionExpired, 'refresh with an expired token');
    throw tokenFailure(err);
  }
  if (creds.user !== conn.user) throw CentrifugoDisconnect.of(DISCONNECTS.invalidToken, 'the refresh token is for another user');
  if (creds.expiresAt !== undefined && creds.expiresAt <= Date.now()) throw CentrifugoDisconnect.of(DISCONNECTS.connectionExpired, 'refresh with an expired token');
  conn.expiresAt = creds.expiresAt;
  if (creds.info !== undefined) conn.info = creds.info;
  conn.armExpiry();
  conn.send(replyJson(id, 'refresh', { client: conn.client, version: ctx.version, ...ttlOf(conn, conn.expiresAt) }));
}
