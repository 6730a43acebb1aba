import type { Server } from 'socket.io';
import type { JsonValue } from 'realtime-message-protocol';
import type { PresenceEngine, RoomFeedItem } from '../core/presence/engine.js';
import { PresenceService, presenceSources, type PresenceOptions, type PresenceTopics } from '../core/presence/service.js';
import { Hub } from '../core/shared/hub.js';
import type { HealthCheck } from '../core/shared/health.js';
import { silentLogger } from '../core/shared/logger.js';
import type { RedisClient } from '../engines/redis/backend.js';
import type { BackendLogOptions } from '../engines/redis/backend-log.js';
import { Extensions, type Extension } from '../extensions/extension.js';
import { tokenAuth, type TokenVerifier } from '../extensions/jwt.js';
import { PresenceMetrics } from '../observability/metrics.js';
import { primaryUser, type AnySocket, type Membership } from '../transports/socketio/session.js';
import { attachSocketIo, type SocketIoLimits } from '../transports/socketio/transport.js';
import { backendsOf, createBackends, type Backends } from './backends.js';
import { StatusService, type StatusServiceOptions } from '../core/status/service.js';
import type { StatusStore } from '../core/status/store.js';
import { bridgePresenceToStatus } from './status-bridge.js';
import { retryInBackground } from '../core/shared/retry.js';
import { ChannelService, type ChannelServiceOptions } from '../core/channels/service.js';
import { ChannelFeeds, channelSources, type ChannelHub, type ChannelTopics } from '../core/channels/feeds.js';
import { ChannelNamespaces } from '../core/channels/namespaces.js';
import type { ChannelBroker, ChannelPresencePort } from '../core/channels/broker.js';
import { clientInfoOf } from '../core/channels/presence-info.js';
import type { ClientInfo } from 'realtime-message-protocol';
import type { ControlBus } from '../core/shared/control.js';

/** A Socket.IO server of any event maps. */
type AnyServer = Server<any, any, any, any>;

export interface AuthorizeContext {
  socket: AnySocket;
  /** The user the socket acts as (the token's `sub` when auth is on). */
  userId: string;
  roomId: string;
  action: 'join' | 'message';
  /** The custom event name, for `message`. */
  event?: string;
}

export interface InitPresenceOptions extends Omit<PresenceOptions, 'engine' | 'hub'>, SocketIoLimits {
  /** The application's own Socket.IO server. */
  io: AnySocket['server'] | AnyServer;
  /** An ioredis client (or Cluster): presence is shared by every node on it. Not closed by dispose(). */
  redis?: RedisClient;
  /** A dedicated SSUBSCRIBE client for `redis`; not closed by dispose(). @default a duplicate of `redis`, closed by dispose() */
  subscriber?: RedisClient;
  /** An explicit engine instead of `redis`/memory. Not closed by dispose(). */
  engine?: PresenceEngine;
  /** Key and channel prefix in Redis. @default 'rm:' */
  keyPrefix?: string;
  /**
   * The backend log (docs/channels.md, "Backend log"): every channel
   * publication and user status event also appended to one of `partitions`
   * Redis Streams (`<prefix>log:<p>`), each bounded by `maxLen` (`MAXLEN ~`,
   * default 100000), for the application's workers (consumer groups). Needs
   * `redis`; not with an explicit `engine`. @default off
   */
  backendLog?: BackendLogOptions;
  /** Redis: least time between two heartbeat calls (`RedisEngineOptions.heartbeatWindowMs`). @default 2 */
  heartbeatWindowMs?: number;
  /** Redis: least time between two sends of the status bridge's connection changes (`RedisStatusStoreOptions.connWindowMs`). @default 5 */
  statusWindowMs?: number;
  /** Namespace to serve. @default '/' */
  namespace?: string;
  /** Verifies `handshake.auth.token`; when set, every connection needs a valid token and acts as its user. @default open mode */
  verifyToken?: TokenVerifier;
  /** In-process allow/deny for joins and custom messages. @default allow */
  authorize?: (ctx: AuthorizeContext) => boolean | Promise<boolean>;
  /** More extensions (hooks every transport runs), after the ones `verifyToken` and `authorize` make. @default none */
  extensions?: readonly Extension[];
  /** Metrics sink. @default a new PresenceMetrics with its own registry */
  metrics?: PresenceMetrics;
  /** Run the reaper on this node. @default true */
  startReaper?: boolean;
  /**
   * User status (SPEC §7) on the same storage, following presence, or
   * `false` to leave it out. With an explicit `engine`, status needs
   * `status.store` (otherwise it is left out).
   * @default on, with the defaults of StatusServiceOptions
   */
  status?: (Partial<Omit<StatusServiceOptions, 'store'>> & { store?: StatusStore }) | false;
  /**
   * Channels (SPEC §8) on the same storage, or `false` to leave them out.
   * With an explicit `engine`, channels need `channels.broker` (otherwise
   * they are left out). `namespaces` comes from a channels config
   * (`ChannelNamespaces.fromConfig(json)`).
   * @default on, every channel open (ChannelNamespaces.defaults())
   */
  channels?: (Partial<Omit<ChannelServiceOptions, 'broker' | 'hub' | 'presence'>> & { broker?: ChannelBroker }) | false;
}

export interface PresenceRuntime {
  readonly service: PresenceService;
  readonly metrics: PresenceMetrics;
  /** What decides readiness: the storage behind presence. */
  readonly health: readonly HealthCheck[];
  /** User status of this node (following presence), unless turned off with `status: false`. */
  readonly status: StatusService | undefined;
  /** Channels of this node (publish, history, subscribe), unless turned off with `channels: false`. */
  readonly channels: ChannelService | undefined;
  /** This node's connections and channel subscriptions (what the server API's `/api/info`, `/api/channels` and `/api/disconnect` use). */
  readonly local: LocalNode;
  /** The engine's node-to-node control bus (the server API's cluster-wide operations); undefined with the memory engine or an explicit `engine`. */
  readonly control: ControlBus | undefined;
  /**
   * Sends a custom event from the server application to every member socket
   * of a room, on every node, through the engine's pub/sub (ordered with the
   * room's presence events; no Socket.IO adapter needed). Throws at once on a
   * bad room id, event name or payload; the returned promise settles when the
   * engine took the message (a failure is also logged, so it may be ignored).
   * @example runtime.broadcast('doc-1', 'doc:saved', { version: 7 })
   */
  broadcast(roomId: string, event: string, data: JsonValue): Promise<void>;
  /** The socket's presence in a room (or its only room), if it joined. */
  membership(socket: AnySocket, roomId?: string): Membership | undefined;
  /**
   * Stops serving presence: removes the handlers, (by default) makes every
   * local connection leave at once with reason `disconnect` so other nodes
   * see it immediately, stops the reaper and unsubscribes. With
   * `leave: 'grace'` each local connection gets the disconnect grace instead
   * (a drain: its client may resume it on another node with no leave and no
   * join seen); with `leave: false` presence is left as it is. The caller's
   * `io` and Redis client stay usable.
   */
  dispose(opts?: { leave?: boolean | 'grace' }): Promise<void>;
}

/** A node's distinct users (a count kept up to date, not a copy). */
export interface LocalUsers {
  has(user: string): boolean;
  readonly size: number;
}

/** This node's share of the deployment: its Socket.IO connections (of the served namespace) and channel subscriptions. */
export interface LocalNode {
  /** Connected sockets on this node, and their distinct users (sockets without a user count as one anonymous user, `''`). */
  clients(): { numClients: number; numUsers: number; users: LocalUsers };
  /** Live channel subscriptions on this node (sockets and in-process subscribers), by channel. */
  channels(): ReadonlyMap<string, number>;
  /**
   * Disconnects this node's sockets of `user` (the token's `sub`, or the
   * user the socket joined its rooms as): all of them, or only `client` (a
   * socket id or a presence connId), except those in `whitelist`. The
   * client sees Socket.IO's `io server disconnect` and does not reconnect on
   * its own. Returns how many sockets were disconnected.
   */
  disconnectUser(user: string, opts?: { client?: string | undefined; whitelist?: readonly string[] | undefined }): number;
  /** Ends `user`'s subscriptions to `channel` on this node (only `client`'s, a socket id or presence connId, when given); each client is told (`channel:unsubscribed`). Returns how many ended. */
  unsubscribeUser(user: string, channel: string, client?: string): Promise<number>;
}

/** The ids of a socket as the transport publishes them on `socket.data`: its user (or undefined) and its presence connIds. */
function socketIdentity(socket: AnySocket): { user: string | undefined; users: string[]; connIds: string[] } {
  const data = (socket.data ?? {}) as { presenceUserId?: unknown; presenceRooms?: unknown };
  const rooms = Array.isArray(data.presenceRooms) ? (data.presenceRooms as Array<{ userId?: unknown; connId?: unknown }>) : [];
  const users = rooms.map((r) => r.userId).filter((u): u is string => typeof u === 'string');
  if (typeof data.presenceUserId === 'string') users.push(data.presenceUserId);
  return { user: users[0], users, connIds: rooms.map((r) => r.connId).filter((c): c is string => typeof c === 'string') };
}

/** The distinct primary users of a namespace's sockets, by walking them (what {@link LocalNode.clients} counts; once disposed it walks). */
export function countUsers(nsp: { readonly sockets: ReadonlyMap<string, AnySocket> }): Set<string> {
  const users = new Set<string>();
  for (const socket of nsp.sockets.values()) users.add(primaryUser(socket));
  return users;
}

/** A channel Hub that counts the live subscriptions per channel it carries. */
function countingHub(hub: ChannelHub, counts: Map<string, number>): ChannelHub {
  const add = (id: string, n: number): void => {
    const v = (counts.get(id) ?? 0) + n;
    if (v > 0) counts.set(id, v);
    else counts.delete(id);
  };
  return {
    async subscribe(kind, id, listener) {
      const off = await hub.subscribe(kind, id, listener);
      add(id, 1);
      let done = false;
      return async () => {
        if (!done) add(id, -1);
        done = true;
        await off();
      };
    },
  };
}

/** The extensions the documented `verifyToken` and `authorize` options stand for. */
export function legacyExtensions(options: Pick<InitPresenceOptions, 'verifyToken' | 'authorize' | 'extensions'>): Extensions {
  const list: Extension[] = [];
  if (options.verifyToken) list.push(tokenAuth(options.verifyToken));
  const authorize = options.authorize;
  if (authorize) {
    list.push({
      name: 'authorize',
      authorize: (ctx) => {
        // The documented callback knows joins and custom messages of Socket.IO sockets.
        if (ctx.action !== 'join' && ctx.action !== 'message') return true;
        return authorize({ socket: ctx.connection as AnySocket, userId: ctx.userId, roomId: ctx.target, action: ctx.action, ...(ctx.event !== undefined ? { event: ctx.event } : {}) });
      },
    });
  }
  list.push(...(options.extensions ?? []));
  return new Extensions(list);
}

/**
 * How long a room whose last local member left stays subscribed at the engine: members that churn (leave and join
 * again, a page reload) do not cost an unsubscribe and a subscribe round trip before their join each time.
 */
export const PRESENCE_LINGER_MS = 5_000;

/** The node's one Hub: presence topics over the engine and, with `channelFeeds`, channel topics; deliveries counted in `metrics`. */
export function presenceHub(engine: PresenceEngine, metrics: PresenceMetrics, logger = silentLogger, channelFeeds?: ChannelFeeds): Hub<PresenceTopics & ChannelTopics> {
  const sources = { ...presenceSources(engine), ...(channelFeeds ? channelSources(channelFeeds) : {}) } as ConstructorParameters<typeof Hub<PresenceTopics & ChannelTopics>>[0];
  return new Hub<PresenceTopics & ChannelTopics>(sources, {
    logger,
    lingerMs: { presence: PRESENCE_LINGER_MS },
    onDeliver: (_kind, item) => {
      if (_kind !== 'presence') return;
      metrics.eventReceived((item as RoomFeedItem).type);
    },
  });
}

/** A channel's presence is the presence room of the same name: both protocols see one set of members (ClientInfo as core/channels/presence-info.ts maps it). */
export function channelPresence(service: PresenceService): ChannelPresencePort {
  return {
    async presence(channel) {
      const snap = await service.snapshot(channel);
      return Object.fromEntries(snap.connections.map((c): [string, ClientInfo] => [c.connId, clientInfoOf(c.userId, c.connId, c.state)]));
    },
    async stats(channel) {
      const snap = await service.snapshot(channel);
      return { numClients: snap.connections.length, numUsers: snap.members.length };
    },
  };
}

/**
 * Wires the presence protocol (docs/protocol.md) onto the caller's own
 * Socket.IO server. Without `redis` it uses the in-process memory engine.
 * Composition only: the storage comes from {@link createBackends}, the
 * protocol from the Socket.IO transport, the hooks from the extensions.
 *
 * @example
 * const io = new Server(httpServer);
 * const presence = await initPresence({ io, redis: new Redis(process.env.REDIS_URL) });
 * io.on('connection', (socket) => socket.on('chat:message', ...)); // your own handlers beside it
 * // later: await presence.dispose();
 */
export function initPresence(options: InitPresenceOptions): PresenceRuntime {
  if (typeof options !== 'object' || options === null || typeof (options.io as { of?: unknown } | undefined)?.of !== 'function') {
    throw new TypeError('initPresence needs { io }: your Socket.IO Server');
  }
  const logger = options.logger ?? silentLogger;
  const metrics = options.metrics ?? new PresenceMetrics();
  if (options.engine && options.backendLog && options.backendLog.partitions > 0) throw new TypeError('backendLog needs `redis` (the backends made here), not an explicit `engine`');
  const backends: Backends = options.engine
    ? backendsOf(options.engine)
    : createBackends({ redis: options.redis, subscriber: options.subscriber, keyPrefix: options.keyPrefix, backendLog: options.backendLog, heartbeatWindowMs: options.heartbeatWindowMs, statusWindowMs: options.statusWindowMs, logger });
  const channelOptions = options.channels === false ? undefined : (options.channels ?? {});
  const channelBroker = channelOptions?.broker ?? backends.channels;
  const channelNamespaces = channelOptions?.namespaces ?? ChannelNamespaces.defaults();
  const channelFeeds = channelOptions && channelBroker ? new ChannelFeeds({ broker: channelBroker, namespaces: channelNamespaces, positionCheckMs: channelOptions.positionCheckMs, clock: options.clock, logger }) : undefined;
  const hub = presenceHub(backends.presence, metrics, logger, channelFeeds);
  const service = new PresenceService({
    ...options,
    engine: backends.presence,
    hub,
    logger,
    observe: (op, ms, outcome) => {
      metrics.observeEngine(op, outcome, ms);
      options.observe?.(op, ms, outcome);
    },
    observeReap: (result) => {
      metrics.observeReap(result);
      options.observeReap?.(result);
    },
  });
  const statusOptions = options.status === false ? undefined : (options.status ?? {});
  const statusStore = statusOptions?.store ?? backends.status;
  const status =
    statusOptions && statusStore
      ? new StatusService({
          clock: options.clock,
          logger,
          ...statusOptions,
          store: statusStore,
          observeEvent: (event) => {
            metrics.tallies.statusEvents.inc();
            statusOptions.observeEvent?.(event);
          },
        })
      : undefined;
  if (status) metrics.statusCacheSource = () => status.cacheStats;
  const channelCounts = new Map<string, number>();
  const channels =
    channelOptions && channelBroker
      ? new ChannelService({ clock: options.clock, logger, ...channelOptions, namespaces: channelNamespaces, broker: channelBroker, hub: countingHub(hub, channelCounts), presence: channelPresence(service) })
      : undefined;
  const nsp = (options.io as AnyServer).of(options.namespace ?? '/');
  const local: LocalNode = {
    clients() {
      // Runs every few seconds (node info): the transport's count, kept up to date, instead of a walk over every socket.
      const users = transport.users() ?? countUsers(nsp);
      return { numClients: nsp.sockets.size, numUsers: users.size, users };
    },
    channels: () => channelCounts,
    disconnectUser(user, opts = {}) {
      const keep = new Set(opts.whitelist ?? []);
      let n = 0;
      for (const socket of [...nsp.sockets.values()]) {
        const id = socketIdentity(socket);
        if (!id.users.includes(user)) continue;
        const ids = [socket.id, ...id.connIds];
        if (opts.client !== undefined && !ids.includes(opts.client)) continue;
        if (ids.some((c) => keep.has(c))) continue;
        transport.kick(socket);
        n++;
      }
      return n;
    },
    unsubscribeUser: (user, channel, client) => transport.unsubscribeUser(user, channel, client),
  };
  const transport = attachSocketIo({
    nsp,
    service,
    extensions: legacyExtensions(options),
    metrics,
    logger,
    clock: options.clock,
    rateLimit: options.rateLimit,
    maxRoomsPerSocket: options.maxRoomsPerSocket,
    maxMessageBytes: options.maxMessageBytes,
    maxPendingRequests: options.maxPendingRequests,
    maxOutboundBytes: options.maxOutboundBytes,
    snapshotBytesPerSecond: options.snapshotBytesPerSecond,
    maxWatchedUsersPerSocket: options.maxWatchedUsersPerSocket,
    statusReads: options.statusReads,
    status,
    channels,
    maxChannelsPerSocket: options.maxChannelsPerSocket,
  });
  if (options.startReaper !== false) service.start();
  // The bridge and the feed start in the background; a failure (storage down at start) is logged, and status reads go to the store meanwhile.
  // Storage down at start: the status feed is retried in the background until it works (status events are off on this
  // node meanwhile); the bridge reports joins at once and retries its own feed subscription.
  const statusStart = status
    ? retryInBackground(() => status.start({ sweep: options.startReaper !== false }), { logger, what: 'user status feed', delaysMs: [500, 1_000, 2_000] })
    : undefined;
  const bridge = status ? bridgePresenceToStatus(service, status, { logger, waitForFeed: false }) : undefined;
  let disposing: Promise<void> | undefined;
  return {
    service,
    metrics,
    health: backends.health,
    status,
    channels,
    local,
    control: backends.control,
    broadcast: (roomId, event, data) => transport.broadcast(roomId, event, data),
    membership: (socket, roomId) => transport.membership(socket, roomId),
    dispose: (opts) =>
      (disposing ??= (async () => {
        await transport.dispose(opts);
        statusStart?.stop();
        await statusStart?.result;
        await (await bridge)?.();
        await status?.dispose();
        await channels?.dispose();
        channelFeeds?.dispose();
        await service.dispose();
        await hub.dispose();
        await backends.close();
      })()),
  };
}

