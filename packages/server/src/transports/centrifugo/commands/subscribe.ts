import { PresenceError, type JsonValue } from 'realtime-message-protocol';
import type { ChannelFeedItem } from '../../../core/channels/feeds.js';
import type { RoomFeedItem } from '../../../core/presence/engine.js';
import { CLIENT_ERRORS, CentrifugoDisconnect, CentrifugoError, DISCONNECTS, UNSUBSCRIBES } from '../codes.js';
import { pushJson, replyJson, wirePublication, type ChannelRequest, type SubRefreshRequest, type SubscribeRequest, type WirePublication } from '../codec.js';
import { timerAt, type CentrifugoConnection, type ChannelSub } from '../connection.js';
import { TokenError, type SubscriptionCredentials, type SubscriptionOverride } from '../tokens.js';
import { ChannelNamespaces } from '../../../core/channels/namespaces.js';
import { presenceStateOf, presenceUserOf } from '../../../core/channels/presence-info.js';
import { requirePermission, resolveChannel } from './access.js';
import { RoomView } from './room-view.js';

/** What opens a subscription: a client's subscribe, or a server-side subscription at connect. */
export interface OpenParams {
  channel: string;
  serverSide: boolean;
  /** The position the client asks to recover from. */
  recover?: { offset: number; epoch: string } | undefined;
  /** What the client asks for (client-side subscriptions). */
  positioned?: boolean | undefined;
  recoverable?: boolean | undefined;
  joinLeave?: boolean | undefined;
  /** Bit 2: answer 112 instead of `recovered: false`. */
  flag?: number | undefined;
  /** A subscription token's (or server-side options') `override`. */
  override?: SubscriptionOverride | undefined;
  token?: boolean | undefined;
  chanInfo?: JsonValue | undefined;
  /** The subscribe reply's `data`. */
  data?: JsonValue | undefined;
  expiresAt?: number | undefined;
}

/** Centrifugo's `SubscribeResult`, with only the fields Centrifugo sets. */
export interface SubscribeResult {
  expires?: true;
  ttl?: number;
  recoverable?: true;
  positioned?: true;
  epoch?: string;
  offset?: number;
  recovered?: true;
  was_recovering?: true;
  publications?: WirePublication[];
  data?: JsonValue;
}

export interface OpenedSub {
  sub: ChannelSub;
  result: SubscribeResult;
}

function onChannelItem(conn: CentrifugoConnection, s: ChannelSub, item: ChannelFeedItem): void {
  if (s.closed) return;
  if (item.type === 'publication') {
    conn.send(pushJson('pub', s.channel, wirePublication(item.publication)));
    return;
  }
  // The core cannot keep this subscription gap-free: the client resubscribes from its position (2500), or reconnects (3010) for a server-side one.
  if (s.serverSide) {
    conn.close(DISCONNECTS.insufficientState.code, DISCONNECTS.insufficientState.reason);
    return;
  }
  if (conn.subs.get(s.channel) === s) conn.subs.delete(s.channel);
  void closeSub(conn, s, 'disconnect');
  conn.send(pushJson('unsubscribe', s.channel, UNSUBSCRIBES.insufficientState));
}

function onRoomItem(conn: CentrifugoConnection, s: ChannelSub, item: RoomFeedItem): void {
  if (s.closed || !s.room || (item.type !== 'join' && item.type !== 'leave' && item.type !== 'update')) return;
  // The connection's ClientInfo (conn_info, chan_info), on its leave as on its join.
  const info = s.room.infoOf(item);
  if (!info) return; // an update: remembered, not pushed
  const msg = pushJson(item.type === 'leave' ? 'leave' : 'join', s.channel, { info });
  if (s.held) {
    // Before the subscribe reply is written; bounded, as a burst of joins must not grow without limit.
    if (s.held.length < 1_000) s.held.push(msg);
  } else {
    conn.send(msg);
  }
}

/**
 * Opens a subscription over the core: the channel subscription (with
 * recovery from `recover`; live publications held until {@link activate}),
 * and presence in the room of the same name (when the namespace has
 * `presence` or `join_leave`; anonymous connections as the reserved user
 * `ANONYMOUS_USER_ID`, with `conn_info` and `chan_info` in the state: see
 * core/channels/presence-info.ts), following the room's feed first when
 * the subscriber gets join/leave pushes. Permissions are checked
 * by the caller. Undefined when the connection closed meanwhile.
 */
export async function openSub(conn: CentrifugoConnection, p: OpenParams): Promise<OpenedSub | undefined> {
  const { ctx } = conn;
  const r = resolveChannel(conn, p.channel);
  const { ns } = r;
  const ov = p.override;
  // The permissions of a subscriber (Centrifugo checks presence for join_leave as if subscribed); a token subscription makes a private channel public.
  const parts = p.token ? { ...r.parts, private: false } : r.parts;
  const asSubscriber = (action: 'history' | 'presence'): boolean => ChannelNamespaces.permits(ns, parts, action, { user: conn.user, subscribed: true });
  const historyOk = ns.history && asSubscriber('history');
  const recoverable = (ov?.force_recovery?.value ?? ns.forceRecovery) || (p.recoverable === true && (ns.allowRecovery || historyOk));
  const positioned = recoverable || (ov?.force_positioning?.value ?? ns.forcePositioning) || (p.positioned === true && (ns.allowPositioning || historyOk));
  const presenceOn = ov?.presence?.value ?? ns.presence;
  const joinLeave = ov?.join_leave?.value ?? ns.joinLeave;
  const pushJoinLeave = (ov?.force_push_join_leave?.value ?? ns.forcePushJoinLeave) || (p.joinLeave === true && joinLeave && asSubscriber('presence'));
  const since = recoverable && p.recover ? p.recover : undefined;
  const s: ChannelSub = {
    channel: r.channel,
    serverSide: p.serverSide,
    token: p.token === true,
    positioned,
    recoverable,
    pushJoinLeave,
    chanInfo: p.chanInfo,
    core: undefined,
    presence: undefined,
    offFeed: undefined,
    room: undefined,
    expiresAt: p.expiresAt,
    expiry: undefined,
    held: [],
    closed: false,
  };
  try {
    s.core = await ctx.channels.subscribe(r.channel, (item) => onChannelItem(conn, s, item), { since, manualStart: true });
    if ((presenceOn || joinLeave) && conn.state !== 'closed') {
      if (pushJoinLeave) {
        s.room = new RoomView();
        s.offFeed = await ctx.presence.subscribeFeed(r.channel, (item) => onRoomItem(conn, s, item));
      }
      const j = await ctx.presence.join({ roomId: r.channel, userId: presenceUserOf(conn.user), state: presenceStateOf(conn.info, s.chanInfo) });
      s.room?.applySnapshot(j.snapshot);
      s.presence = { roomId: j.snapshot.roomId, connId: j.connId, epoch: j.epoch };
    }
  } catch (err) {
    await closeSub(conn, s, 'leave');
    throw err;
  }
  if (conn.state === 'closed') {
    await closeSub(conn, s, 'disconnect');
    return undefined;
  }
  const core = s.core;
  if (since && !core.recovered && ((p.flag ?? 0) & 2) !== 0) {
    await closeSub(conn, s, 'leave');
    throw CentrifugoError.of(CLIENT_ERRORS.unrecoverablePosition);
  }
  conn.subs.set(r.channel, s);
  const result: SubscribeResult = {};
  // With a server-side refresh (Centrifugo's sub_refresh proxy) the client is not told about the expiry.
  if (s.expiresAt !== undefined && !p.serverSide && !ctx.extensions.refreshesOnServer('centrifugo', r.channel)) Object.assign(result, { expires: true, ttl: Math.max(1, Math.ceil((s.expiresAt - Date.now()) / 1_000)) });
  if (recoverable) result.recoverable = true;
  if (positioned) {
    result.positioned = true;
    result.epoch = core.epoch;
    // Recovered: the client's own offset, and it advances through the publications (as Centrifugo replies).
    result.offset = since && core.recovered ? since.offset : core.offset;
  }
  if (since) {
    result.was_recovering = true;
    if (core.recovered) {
      result.recovered = true;
      if (core.publications.length > 0) result.publications = core.publications.map(wirePublication);
    }
  }
  if (p.data !== undefined) result.data = p.data;
  return { sub: s, result };
}

/** Starts live delivery once the reply is queued: held publications, then held join/leave pushes; arms the expiry. */
export function activate(conn: CentrifugoConnection, s: ChannelSub): void {
  if (s.closed) return;
  const held = s.held ?? [];
  s.held = undefined;
  s.core?.start();
  for (const m of held) conn.send(m);
  armSubExpiry(conn, s);
}

/** The subscription is over: a server-side one closes the connection (3006), a client-side one is unsubscribed (2501). */
function expireSub(conn: CentrifugoConnection, s: ChannelSub): void {
  if (s.serverSide) {
    conn.close(DISCONNECTS.subscriptionExpired.code, DISCONNECTS.subscriptionExpired.reason);
    return;
  }
  if (conn.subs.get(s.channel) === s) conn.subs.delete(s.channel);
  void closeSub(conn, s, 'leave');
  conn.send(pushJson('unsubscribe', s.channel, UNSUBSCRIBES.expired));
}

/** The server-side refresh of a subscription at its expiry (Centrifugo's sub_refresh proxy). */
async function refreshSubOnServer(conn: CentrifugoConnection, s: ChannelSub): Promise<void> {
  if (s.closed) return;
  try {
    const out = await conn.ctx.extensions.refresh({ transport: 'centrifugo', userId: conn.user, channel: s.channel, connection: conn });
    if (s.closed || conn.state === 'closed') return;
    if (!out || out.expired || out.expiresAt === undefined || out.expiresAt <= Date.now()) {
      expireSub(conn, s);
      return;
    }
    s.expiresAt = out.expiresAt;
    if (out.info !== undefined) s.chanInfo = out.info as JsonValue;
    armSubExpiry(conn, s);
  } catch (err) {
    if (err instanceof CentrifugoDisconnect) conn.close(err.code, err.reason);
    else {
      conn.ctx.problems.note('subscription refresh failed', { err, channel: s.channel });
      conn.close(DISCONNECTS.internal.code, DISCONNECTS.internal.reason);
    }
  }
}

function armSubExpiry(conn: CentrifugoConnection, s: ChannelSub): void {
  s.expiry?.clear();
  s.expiry = undefined;
  if (s.expiresAt === undefined) return;
  if (conn.ctx.extensions.refreshesOnServer('centrifugo', s.channel)) {
    s.expiry = timerAt(s.expiresAt, () => void refreshSubOnServer(conn, s));
    return;
  }
  // Client-side: the client refreshes at ttl; without a refresh within the delay it is unsubscribed (2501); server-side: 3006.
  s.expiry = timerAt(s.expiresAt + conn.ctx.limits.expiredCloseDelayMs, () => {
    if (s.closed || s.expiresAt === undefined || s.expiresAt > Date.now()) return;
    expireSub(conn, s);
  });
}

/**
 * Ends a subscription: the core subscription, the room feed, and presence:
 * `leave` at once (unsubscribe), `disconnect` with the grace (connection
 * lost), or `shutdown` (the server stops: leave now, reason disconnect).
 */
export async function closeSub(conn: CentrifugoConnection, s: ChannelSub, how: 'leave' | 'disconnect' | 'shutdown'): Promise<void> {
  if (s.closed) return;
  s.closed = true;
  s.held = undefined;
  s.expiry?.clear();
  await Promise.allSettled([s.core?.unsubscribe(), s.offFeed?.()]);
  const m = s.presence;
  s.presence = undefined;
  if (!m) return;
  const presence = conn.ctx.presence;
  try {
    if (how === 'leave') await presence.leaveParsed(m);
    else if (how === 'shutdown') await presence.leaveParsed(m, { reason: 'disconnect' });
    else await presence.disconnectParsed(m);
  } catch (err) {
    // not_joined: already gone; stale_epoch: not ours any more. Both are fine here.
    if (!(err instanceof PresenceError) || err.code === 'internal' || err.code === 'unavailable') conn.ctx.problems.note('presence cleanup failed', { err, channel: s.channel });
  }
}

/** Keeps the connection's presence alive in each room; a connection the room lost (expired, storage reset) joins again. */
export async function heartbeatAll(conn: CentrifugoConnection): Promise<void> {
  const { presence } = conn.ctx;
  await Promise.all(
    [...conn.subs.values()].map(async (s) => {
      const m = s.presence;
      if (!m || s.closed) return;
      try {
        await presence.heartbeatParsed(m);
      } catch (err) {
        if (!(err instanceof PresenceError) || (err.code !== 'not_joined' && err.code !== 'stale_epoch')) return;
        try {
          const j = await presence.join({ roomId: m.roomId, userId: presenceUserOf(conn.user), connId: m.connId, state: presenceStateOf(conn.info, s.chanInfo) });
          if (s.closed) await presence.leaveParsed({ roomId: m.roomId, connId: j.connId, epoch: j.epoch }).catch(() => undefined);
          else s.presence = { roomId: m.roomId, connId: j.connId, epoch: j.epoch };
        } catch (again) {
          conn.ctx.problems.note('presence rejoin failed', { err: again, channel: s.channel });
        }
      }
    }),
  );
}

/** Verifies a subscription token for this connection and channel: expired → 109, invalid → 103, for another user, channel or client → close 3500. */
async function subscriptionToken(conn: CentrifugoConnection, token: string, channel: string): Promise<SubscriptionCredentials> {
  const { tokens } = conn.ctx;
  if (!tokens) throw CentrifugoError.of(CLIENT_ERRORS.permissionDenied, 'the server has no token keys to verify subscription tokens');
  let c: SubscriptionCredentials;
  try {
    c = await tokens.subscription(token);
  } catch (err) {
    if (err instanceof TokenError) throw err.kind === 'expired' ? CentrifugoError.of(CLIENT_ERRORS.tokenExpired) : CentrifugoError.of(CLIENT_ERRORS.permissionDenied, err.message);
    throw err;
  }
  if (c.channel !== channel) throw CentrifugoDisconnect.of(DISCONNECTS.invalidToken, 'the subscription token is for another channel');
  if (c.user !== conn.user) throw CentrifugoDisconnect.of(DISCONNECTS.invalidToken, 'the subscription token is for another user');
  if (c.client !== undefined && c.client !== conn.client) throw CentrifugoDisconnect.of(DISCONNECTS.invalidToken, 'the subscription token is for another connection');
  return c;
}

export async function onSubscribe(conn: CentrifugoConnection, id: number, req: SubscribeRequest): Promise<void> {
  const { ctx } = conn;
  const r = resolveChannel(conn, req.channel);
  if (conn.subs.has(r.channel)) throw CentrifugoError.of(CLIENT_ERRORS.alreadySubscribed);
  if (conn.subs.size >= ctx.limits.maxChannelsPerConnection) throw CentrifugoError.of(CLIENT_ERRORS.limitExceeded, `a connection may be subscribed to at most ${ctx.limits.maxChannelsPerConnection} channels`);
  let tok: SubscriptionCredentials | undefined;
  let decided = false;
  const action = { transport: 'centrifugo' as const, userId: conn.user, action: 'subscribe' as const, target: r.channel, data: req.data, token: req.token || undefined, connection: conn };
  if (req.token) {
    tok = await subscriptionToken(conn, req.token, r.channel);
    if (tok.expiresAt !== undefined && tok.expiresAt <= Date.now()) throw CentrifugoError.of(CLIENT_ERRORS.expired);
  } else if (r.parts.private) {
    // Private channels need a token, whatever decides the rest.
    requirePermission(conn, r, 'subscribe');
  } else if (ctx.extensions.decides(action)) {
    // A hook decides instead of the namespace options (Centrifugo's subscribe proxy): then, as Centrifugo does,
    // only the namespace defaults and the hook's override count, not the client's positioned/recoverable/join_leave.
    decided = true;
  } else {
    requirePermission(conn, r, 'subscribe');
  }
  const outcome = await ctx.extensions.check(action);
  const opened = await openSub(conn, {
    channel: r.channel,
    serverSide: false,
    recover: req.recover ? { offset: req.offset ?? 0, epoch: req.epoch ?? '' } : undefined,
    positioned: decided ? undefined : req.positioned,
    recoverable: decided ? undefined : req.recoverable,
    joinLeave: decided ? undefined : req.join_leave,
    flag: req.flag,
    override: tok?.override ?? (outcome?.override as SubscriptionOverride | undefined),
    token: tok !== undefined,
    chanInfo: tok?.info ?? (outcome?.info as JsonValue | undefined),
    data: tok?.data ?? (outcome?.data as JsonValue | undefined),
    expiresAt: tok?.expiresAt ?? outcome?.expiresAt,
  });
  if (!opened) return;
  conn.send(replyJson(id, 'subscribe', opened.result));
  activate(conn, opened.sub);
}

export async function onUnsubscribe(conn: CentrifugoConnection, id: number, req: ChannelRequest): Promise<void> {
  if (req.channel === '') throw CentrifugoDisconnect.of(DISCONNECTS.badRequest, 'empty channel');
  const s = conn.subs.get(req.channel);
  if (s) {
    conn.subs.delete(req.channel);
    await closeSub(conn, s, 'leave');
  }
  // Unsubscribing from a channel never subscribed is answered as a success, as Centrifugo does.
  conn.send(replyJson(id, 'unsubscribe', {}));
}

/** `sub_refresh`: a new subscription token; expired → unsubscribe push 2501 (the client resubscribes with a new token). */
export async function onSubRefresh(conn: CentrifugoConnection, id: number, req: SubRefreshRequest): Promise<void> {
  if (req.channel === '' || req.token === '') throw CentrifugoDisconnect.of(DISCONNECTS.badRequest, 'sub_refresh needs a channel and a token');
  const s = conn.subs.get(req.channel);
  if (!s) throw CentrifugoError.of(CLIENT_ERRORS.permissionDenied, `not subscribed to '${req.channel}'`);
  let tok: SubscriptionCredentials;
  try {
    tok = await subscriptionToken(conn, req.token, req.channel);
  } catch (err) {
    if (!(err instanceof CentrifugoError && err.code === CLIENT_ERRORS.tokenExpired.code)) throw err;
    conn.subs.delete(s.channel);
    await closeSub(conn, s, 'leave');
    conn.send(pushJson('unsubscribe', s.channel, UNSUBSCRIBES.expired));
    throw CentrifugoError.of(CLIENT_ERRORS.expired);
  }
  s.expiresAt = tok.expiresAt;
  if (tok.info !== undefined) s.chanInfo = tok.info;
  armSubExpiry(conn, s);
  const ttl = s.expiresAt === undefined ? {} : { expires: true, ttl: Math.max(1, Math.ceil((s.expiresAt - Date.now()) / 1_000)) };
  conn.send(replyJson(id, 'sub_refresh', ttl));
}
