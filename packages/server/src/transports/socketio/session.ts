import type { Socket } from 'socket.io';
import { PresenceError, type Channel, type ConnId, type RoomId, type UpdateForm, type UserId } from 'realtime-message-protocol';
import type { ChannelSubscription } from '../../core/channels/subscription.js';
import type { Unsubscribe } from '../../core/shared/hub.js';
import type { RateLimitDeps } from './middleware.js';
import { ByteBudget, type TokenBucket } from '../shared/rate-limit.js';
import { RequestQueue } from '../shared/request-queue.js';
import { SmallMap } from './small-map.js';

/** A socket of the caller's own Server, whatever its event maps. */
export type AnySocket = Socket<any, any, any, any>;

/** A listener the transport puts on sockets; shared by every socket, it gets the socket as `this`. */
export type SocketListener = (this: AnySocket, ...args: unknown[]) => void;

const NO_LISTENERS: ReadonlyArray<readonly [string, SocketListener]> = [];
const NO_FORMS: ReadonlyMap<RoomId, UpdateForm> = new Map();

/**
 * The Socket.IO room a member socket is in for each presence room, so that
 * the application can address members with `io.to(socketRoomOf(roomId))`
 * (across nodes only with a Socket.IO adapter installed; presence itself
 * does not need one).
 */
export const socketRoomOf = (roomId: string): string => `presence:${roomId}`;

/** A socket's presence in one room. */
export interface Membership {
  roomId: RoomId;
  userId: UserId;
  connId: ConnId;
  epoch: number;
}

/**
 * The user a socket counts as in its node's user count (`/api/info`'s
 * `num_users`): the user of its first membership, else its token's user,
 * else `''` (anonymous), as {@link SocketSession.syncData} publishes them on
 * `socket.data`.
 */
export function primaryUser(socket: AnySocket): string {
  const data = socket.data as { presenceUserId?: unknown; presenceRooms?: unknown } | undefined;
  const rooms = data?.presenceRooms;
  if (Array.isArray(rooms)) for (const r of rooms as Array<{ userId?: unknown } | undefined>) if (typeof r?.userId === 'string') return r.userId;
  return typeof data?.presenceUserId === 'string' ? data.presenceUserId : '';
}

/**
 * A node's Socket.IO sockets by {@link primaryUser}: how many of them each
 * user has. Kept up to date by the sessions (and the sockets the transport
 * found connected), so that the distinct users of a node are known without
 * walking its sockets.
 */
export class UserCounts {
  private readonly counts = new Map<string, number>();
  /** Distinct users (the anonymous `''` included). */
  get size(): number {
    return this.counts.size;
  }
  has(user: string): boolean {
    return this.counts.has(user);
  }
  add(user: string): void {
    this.counts.set(user, (this.counts.get(user) ?? 0) + 1);
  }
  remove(user: string): void {
    const n = this.counts.get(user) ?? 0;
    if (n > 1) this.counts.set(user, n - 1);
    else this.counts.delete(user);
  }
}

/** Limits of a transport that its sessions read, and its user count (one object per transport). */
export interface SessionLimits {
  /** Most requests of one socket queued or running at once. */
  maxPending: number;
  /** The node's sockets by primary user, which sessions keep up to date while counted ({@link SocketSession.count}). */
  users: UserCounts;
  /** Snapshot bytes per second one socket may pull through joins (a burst of 4 s), or undefined for no limit. */
  snapshotBytesPerSecond: number | undefined;
  /** What the rate-limit middleware of every socket shares, or undefined without a rate limit. */
  rateLimit: RateLimitDeps | undefined;
}

/**
 * What the transport knows of one Socket.IO connection: its memberships and
 * their room feeds, who it is, its request queue, its rate bucket and the
 * timer that closes it when its token expires.
 */
export class SocketSession {
  /** The socket's memberships by room (a SmallMap: most sockets are in one room). */
  readonly rooms = new SmallMap<RoomId, Membership>();
  /** Hub registrations by room: held from the start of a join until the socket leaves the room. */
  private readonly feeds = new SmallMap<RoomId, Unsubscribe>();
  // Allocated on first use: most sockets never watch a status, subscribe to a
  // channel or ask for patch updates, and an empty Map or Set costs ~150 bytes.
  private forms: Map<RoomId, UpdateForm> | undefined;
  private channelSubs: Map<Channel, ChannelSubscription> | undefined;
  private subscribingTo: Set<Channel> | undefined;
  private watchedUsers: Set<UserId> | undefined;
  /** The connection whose leave this socket asked for, while the leave is in flight: its own leave event is not sent (the ack says it). */
  leavingConn: ConnId | undefined;
  /**
   * The connId this socket's latest join gives a new connection, until its
   * join event came: that event is not sent (the ack told the client). On
   * Redis it may come before or after the join's answer.
   */
  ownJoin: ConnId | undefined;
  /**
   * How this socket gets `update` events, by room (the join's `updates`; set
   * with {@link setUpdateForm}). Set before the join follows the room, so
   * events that arrive before the ack already have the form the client asked
   * for; absent = `state`.
   */
  get updateForms(): ReadonlyMap<RoomId, UpdateForm> {
    return this.forms ?? NO_FORMS;
  }
  /** Channel subscriptions of this socket (`channel:subscribe`). */
  get channels(): Map<Channel, ChannelSubscription> {
    return (this.channelSubs ??= new Map());
  }
  /** Channels whose subscribe is in flight (a second one is `already_subscribed`). */
  get subscribing(): Set<Channel> {
    return (this.subscribingTo ??= new Set());
  }
  /** Users whose status this socket watches (`status:subscribe`). */
  get watched(): Set<UserId> {
    return (this.watchedUsers ??= new Set());
  }
  /** The request queue while requests are queued or running: made on demand, dropped when idle (an idle connection holds none). */
  private q: RequestQueue | undefined;
  /** Which of the transport's event listeners are on the socket (bits; see the transport's `install`). */
  installed = 0;
  /** Listeners the transport may have put on the socket (a list shared by every socket), removed at detach. */
  handlers: ReadonlyArray<readonly [string, SocketListener]> = NO_LISTENERS;
  expiryTimer: NodeJS.Timeout | undefined;
  private budget: ByteBudget | undefined;
  /** The user this socket is counted as in `limits.users`, or undefined while it is not counted (before {@link count}, after {@link detach}). */
  private countedAs: string | undefined;
  /**
   * Snapshot bytes this socket may still pull (joins answer with a room
   * snapshot); undefined without a snapshot limit. Made when first needed and
   * forgotten once it has refilled ({@link dropIdleQueue}): a full budget is
   * the same as a new one.
   */
  get snapshotBudget(): ByteBudget | undefined {
    const rate = this.limits.snapshotBytesPerSecond;
    return rate ? (this.budget ??= new ByteBudget(rate, rate * 4, Date.now())) : undefined;
  }

  constructor(
    readonly socket: AnySocket,
    /** The token's user when auth is on: the socket may act only as this user. */
    readonly authUserId: string | undefined,
    readonly bucket: TokenBucket | undefined,
    /** The transport's limits (one object shared by every session). */
    readonly limits: SessionLimits,
  ) {}

  /**
   * The socket's requests, run one after another in arrival order (see
   * RequestQueue). Take it for each request; after each request settles, call
   * {@link dropIdleQueue}. Order holds across queues: a new one is only made
   * when nothing is queued or running.
   */
  get queue(): RequestQueue {
    return (this.q ??= new RequestQueue(this.limits.maxPending));
  }

  /** Forgets the queue once nothing is queued or running, and a snapshot budget that refilled (call after a request settled). */
  dropIdleQueue(): void {
    if (this.q?.pending === 0) this.q = undefined;
    if (this.budget?.full(Date.now())) this.budget = undefined;
  }

  /** Resolves once every request queued so far has settled (or released). */
  drain(): Promise<void> {
    return this.q ? this.q.drain() : Promise.resolve();
  }

  /** The membership a request is about: its `roomId`, or the socket's only room. */
  membership(roomId: RoomId | undefined): Membership {
    if (roomId !== undefined) {
      const m = this.rooms.get(roomId);
      if (!m) throw new PresenceError('not_joined', `this socket has not joined room '${roomId}'`);
      return m;
    }
    if (this.rooms.size === 1) return this.rooms.values().next().value!;
    if (this.rooms.size === 0) throw new PresenceError('not_joined', 'this socket has not joined any room');
    throw new PresenceError('invalid_payload', 'roomId is required when the socket is in several rooms');
  }

  /** Sets how this socket gets `update` events of a room: `patch`, or the full `state` (the default). */
  setUpdateForm(roomId: RoomId, form: UpdateForm | undefined): void {
    if (form === 'patch') (this.forms ??= new Map()).set(roomId, form);
    else this.forms?.delete(roomId);
  }

  /** Publishes the memberships on `socket.data` for the application's own handlers. */
  syncData(): void {
    // Memberships are never changed once made (a join makes a new one): frozen, the
    // application gets them as they are instead of a copy per socket.
    const list = [...this.rooms.values()].map((m) => Object.freeze(m));
    const data = this.socket.data as Record<string, unknown>;
    data.presenceRooms = list;
    data.presenceRoomId = list.length === 1 ? list[0]!.roomId : undefined;
    data.presenceUserId = list.length === 1 ? list[0]!.userId : this.authUserId;
    const was = this.countedAs;
    if (was === undefined) return;
    const now = primaryUser(this.socket);
    if (now === was) return;
    this.limits.users.remove(was);
    this.limits.users.add(now);
    this.countedAs = now;
  }

  /** Counts the socket in the node's user count as its primary user (once connected; {@link syncData} follows its changes, {@link detach} ends it). */
  count(): void {
    if (this.countedAs !== undefined) return;
    this.countedAs = primaryUser(this.socket);
    this.limits.users.add(this.countedAs);
  }

  /** The rooms whose feed this socket follows (joined, or joining). */
  feedRooms(): RoomId[] {
    return [...this.feeds.keys()];
  }

  /** Starts receiving a room's feed through `subscribe` (the node's Hub) and enters the room's Socket.IO room. */
  async follow(roomId: RoomId, subscribe: () => Promise<Unsubscribe>): Promise<void> {
    if (this.feeds.has(roomId)) return;
    const off = await subscribe();
    this.feeds.set(roomId, off);
    await this.socket.join(socketRoomOf(roomId));
  }

  /** Stops receiving a room's feed (the Hub unsubscribes the node when this was its last listener). */
  async unfollow(roomId: RoomId): Promise<void> {
    this.forms?.delete(roomId);
    const off = this.feeds.get(roomId);
    if (!off) return;
    this.feeds.delete(roomId);
    void this.socket.leave(socketRoomOf(roomId));
    await off();
  }

  /** Forgets a membership that ended (left, fenced, gone) if it is still the current one. */
  drop(m: Membership): void {
    if (this.rooms.get(m.roomId) !== m) return;
    this.rooms.delete(m.roomId);
    if (this.ownJoin === m.connId) this.ownJoin = undefined;
    void this.unfollow(m.roomId);
    this.syncData();
  }

  /** Removes everything the transport attached to the socket, and the socket from the node's user count. */
  detach(): void {
    if (this.countedAs !== undefined) this.limits.users.remove(this.countedAs);
    this.countedAs = undefined;
    for (const [event, fn] of this.handlers) this.socket.off(event, fn as (...args: unknown[]) => void);
    this.handlers = NO_LISTENERS;
    this.installed = 0;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }
}
