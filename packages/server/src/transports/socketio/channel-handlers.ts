import {
  CHANNEL_EVENTS,
  PresenceError,
  type Channel,
  type ChannelHistoryAck,
  type ChannelPublishAck,
  type ChannelResubscribeNotice,
  type ChannelSubscribeAck,
  type ChannelUnsubscribeAck,
} from 'realtime-message-protocol';
import type { ChannelClient } from '../../core/channels/namespaces.js';
import type { ChannelService, PublishOptions } from '../../core/channels/service.js';
import type { ChannelSubscription } from '../../core/channels/subscription.js';
import { parse, sendGuarded, type Handler, type HandlerContext } from './handlers.js';
import type { SocketSession } from './session.js';

/** What the channel handlers need besides the presence context. */
export interface ChannelContext {
  service: ChannelService;
  /** Most channels one socket may be subscribed to at once. */
  maxChannelsPerSocket: number;
}

function channelsOf(ctx: HandlerContext): ChannelContext {
  if (!ctx.channels) throw new PresenceError('forbidden', 'channels are turned off on this server');
  return ctx.channels;
}

/**
 * Who the socket is for channel permissions: the token's `sub` when auth
 * is on; in open mode the user it joined its rooms as, else anonymous
 * (`''`, which namespaces allow or refuse with `allow_*_for_anonymous`).
 */
function userOf(session: SocketSession): string {
  if (session.authUserId !== undefined) return session.authUserId;
  // One user across the socket's rooms, else anonymous (no set or array made: this runs for every publish).
  let user: string | undefined;
  for (const m of session.rooms.values()) {
    if (user === undefined) user = m.userId;
    else if (m.userId !== user) return '';
  }
  return user ?? '';
}

function clientOf(session: SocketSession, channel: string): ChannelClient {
  return { user: userOf(session), subscribed: session.channels.has(channel as Channel) };
}

export const onChannelSubscribe: Handler = async (ctx, session, raw): Promise<ChannelSubscribeAck> => {
  const channels = channelsOf(ctx);
  const p = parse(channels.service.schemas.subscribe, raw);
  if (session.channels.has(p.channel) || session.subscribing.has(p.channel)) {
    throw new PresenceError('already_subscribed', `this socket is subscribed to '${p.channel}' already`);
  }
  if (session.channels.size + session.subscribing.size >= channels.maxChannelsPerSocket) {
    throw new PresenceError('forbidden', `a socket may be subscribed to at most ${channels.maxChannelsPerSocket} channels; unsubscribe one first`);
  }
  const user = userOf(session);
  const action = { transport: 'socket.io' as const, userId: user, action: 'subscribe' as const, target: p.channel, connection: session.socket };
  // A hook that decides (a subscribe proxy) replaces the namespace permissions, as in Centrifugo.
  const decided = ctx.extensions.decides(action);
  await ctx.extensions.check(action);
  session.subscribing.add(p.channel);
  let sub: ChannelSubscription;
  try {
    sub = await channels.service.subscribe(
      p.channel,
      (item) => {
        if (item.type === 'publication') {
          sendGuarded(ctx, session, CHANNEL_EVENTS.publication, item.publication);
          return;
        }
        // The core ended the subscription: it can no longer be kept gap-free.
        if (session.channels.get(item.channel) === sub) session.channels.delete(item.channel);
        const notice: ChannelResubscribeNotice = { channel: item.channel, reason: item.reason };
        sendGuarded(ctx, session, CHANNEL_EVENTS.resubscribe, notice);
      },
      { since: p.since, manualStart: true },
      decided ? undefined : { user },
    );
  } finally {
    session.subscribing.delete(p.channel);
  }
  if (!session.socket.connected || ctx.disposed()) {
    await sub.unsubscribe();
    throw new PresenceError('not_joined', 'the socket disconnected during the subscribe');
  }
  session.channels.set(p.channel, sub);
  // Live publications start after the ack is on its way, so none overtakes it.
  setImmediate(() => sub.start());
  return { ok: true, channel: p.channel, offset: sub.offset, epoch: sub.epoch, recovered: sub.recovered, publications: sub.publications };
};

export const onChannelUnsubscribe: Handler = async (ctx, session, raw): Promise<ChannelUnsubscribeAck> => {
  const channels = channelsOf(ctx);
  const p = parse(channels.service.schemas.unsubscribe, raw);
  const sub = session.channels.get(p.channel);
  session.channels.delete(p.channel);
  await sub?.unsubscribe();
  return { ok: true };
};

export const onChannelPublish: Handler = async (ctx, session, raw, release): Promise<ChannelPublishAck> => {
  const channels = channelsOf(ctx);
  const p = parse(channels.service.schemas.publish, raw);
  const client = clientOf(session, p.channel);
  const action = { transport: 'socket.io' as const, userId: client.user, action: 'publish' as const, target: p.channel, data: p.data, connection: session.socket };
  const decided = ctx.extensions.decides(action);
  // A publish proxy may replace the data (validated here as any published data), or ask not to keep it (skip_history).
  const outcome = await ctx.extensions.check(action);
  const data = outcome?.data !== undefined ? parse(channels.service.schemas.data, outcome.data) : p.data;
  const opts: PublishOptions = { info: { user: client.user, client: session.socket.id } };
  if (p.tags) opts.tags = p.tags;
  if (outcome?.skipHistory === true) opts.skipHistory = true;
  // The request passed `schemas.publish`: the service does not parse channel, data and tags again.
  const published = channels.service.publishParsed(p.channel, data, opts, decided ? undefined : client);
  // The storage command is issued (in order on the storage connection): the socket's next publish may start,
  // so a publisher with several publications in flight is not held to one round trip each.
  release?.();
  const res = await published;
  return { ok: true, offset: res.offset, epoch: res.epoch };
};

export const onChannelHistory: Handler = async (ctx, session, raw): Promise<ChannelHistoryAck> => {
  const channels = channelsOf(ctx);
  const p = parse(channels.service.schemas.history, raw);
  const res = await channels.service.history(p.channel, { since: p.since, limit: p.limit, reverse: p.reverse }, clientOf(session, p.channel));
  return { ok: true, offset: res.offset, epoch: res.epoch, publications: res.publications };
};

/**
 * Ends the subscription of a socket to `channel` on the server's side and
 * tells the client (`channel:unsubscribed`). True when it was subscribed.
 */
export async function unsubscribeBy(ctx: HandlerContext, session: SocketSession, channel: Channel): Promise<boolean> {
  const sub = session.channels.get(channel);
  if (!sub) return false;
  session.channels.delete(channel);
  await sub.unsubscribe();
  sendGuarded(ctx, session, CHANNEL_EVENTS.unsubscribed, { channel, reason: 'server' });
  return true;
}

/** The user of a socket for channels (exported for the transport's server-side unsubscribe). */
export const channelUserOf = userOf;

/** Ends every channel subscription of a socket (it disconnected, or the transport stops). */
export async function unsubscribeAll(session: SocketSession): Promise<void> {
  const subs = [...session.channels.values()];
  session.channels.clear();
  await Promise.all(subs.map((s) => s.unsubscribe()));
}

/** Events whose handler releases the socket's queue before it settles (see {@link onChannelPublish}). */
export const PIPELINED_EVENTS: ReadonlySet<string> = new Set([CHANNEL_EVENTS.publish]);

/** The client → server events of the channels protocol and their handlers. */
export const CHANNEL_HANDLERS: ReadonlyArray<readonly [event: string, handler: Handler]> = [
  [CHANNEL_EVENTS.subscribe, onChannelSubscribe],
  [CHANNEL_EVENTS.unsubscribe, onChannelUnsubscribe],
  [CHANNEL_EVENTS.publish, onChannelPublish],
  [CHANNEL_EVENTS.history, onChannelHistory],
];
