import { channelParts, type ChannelParts } from 'realtime-message-protocol';
import { ChannelNamespaces, type ChannelAction, type NamespaceOptions } from '../../../core/channels/namespaces.js';
import { CLIENT_ERRORS, CentrifugoDisconnect, CentrifugoError, DISCONNECTS } from '../codes.js';
import type { CentrifugoConnection } from '../connection.js';

export interface ResolvedChannel {
  channel: string;
  ns: NamespaceOptions;
  parts: ChannelParts;
}

/**
 * The channel of a command: an empty one closes with 3501 (Centrifugo's
 * rule); a bad name is 107, an unknown namespace 102 (from the core).
 */
export function resolveChannel(conn: CentrifugoConnection, channel: string): ResolvedChannel {
  if (channel === '') throw CentrifugoDisconnect.of(DISCONNECTS.badRequest, 'empty channel');
  const r = conn.ctx.channels.resolve(channel);
  return { channel: r.channel, ns: r.options, parts: channelParts(r.channel) };
}

/**
 * Whether the namespace lets this connection do `action` on the channel
 * (Centrifugo's order without tokens and proxies: `..._for_client`, or
 * `..._for_subscriber` while subscribed, `..._for_anonymous` for anonymous
 * users). A channel subscribed with a token is treated as public, so that a
 * private channel's subscriber gets the namespace's subscriber permissions.
 */
export function permitted(conn: CentrifugoConnection, r: ResolvedChannel, action: ChannelAction): boolean {
  const sub = conn.subs.get(r.channel);
  const parts = sub?.token ? { ...r.parts, private: false } : r.parts;
  return ChannelNamespaces.permits(r.ns, parts, action, { user: conn.user, subscribed: sub !== undefined });
}

export function requirePermission(conn: CentrifugoConnection, r: ResolvedChannel, action: ChannelAction): void {
  if (!permitted(conn, r, action)) {
    throw CentrifugoError.of(CLIENT_ERRORS.permissionDenied, `${action} on channel '${r.channel}' is not allowed for ${conn.user === '' ? 'anonymous connections' : `user '${conn.user}'`} by its namespace options`);
  }
}
