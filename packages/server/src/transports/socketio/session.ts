import type { Socket } from 'socket.io';
import { PresenceError, type Channel, type ConnId, type RoomId, type UpdateForm, type UserId } from 'realtime-message-protocol';
import type { ChannelSubscription } from '../../core/channels/subscription.js';
import type { Unsubscribe } from '../../core/shared/hub.js';
import type { ByteBudget, TokenBucket } from '../shared/rate-limit.js';
import { RequestQueue } from '../shared/request-queue.js';

/** A socket of the caller's own Server, whatever its event maps. */
export type AnySocket = Socket<any, any, any, any>;

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
 * What the transport knows of one Socket.IO connection: its memberships and
 * their room feeds, who it is, its request queue, its rate bucket and the
 * timer that closes it when its token expires.
 */
export class SocketSession {
  readonly rooms = new Map<RoomId, Membership>();
  /** Hub registrations by room: held from the start of a join until the socket leaves the room. */
  readonly feeds = new Map<RoomId, Unsubscribe>();
  /**
   * How this socket gets `update` events, by room (the join's `updates`).
   * Set before the join follows the room, so events that arrive before the
   * ack already have the form the client asked for; absent = `state`.
   */
  readonly updateForms = new Map<RoomId, UpdateForm>();
  /** Channel subscriptions of this socket (`channel:subscribe`). */
  readonly channels = new Map<Channel, ChannelSubscription>();
  /** Channels whose subscribe is in flight (a second one is `already_subscribed`). */
  readonly subscribing = new Set<Channel>();
  /** Users whose status this socket watches (`status:subscribe`). */
  readonly watched = new Set<UserId>();
  readonly queue: RequestQueue;
  /** Listeners this transport put on the socket, removed at dispose. */
  readonly handlers: Array<[string, (...args: unknown[]) => void]> = [];
  expiryTimer: NodeJS.Timeout | undefined;
  /** Snapshot bytes this socket may still pull (joins answer with a room snapshot). */
  snapshotBudget: ByteBudget | undefined;

  constructor(
    readonly socket: AnySocket,
    /** The token's user when auth is on: the socket may act only as this user. */
    readonly authUserId: string | undefined,
    readonly bucket: TokenBucket | undefined,
    maxPending: number,
  ) {
    this.queue = new RequestQueue(maxPending);
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

  /** Publishes the memberships on `socket.data` for the application's own handlers. */
  syncData(): void {
    const list = [...this.rooms.values()].map((m) => ({ ...m }));
    const data = this.socket.data as Record<string, unknown>;
    data.presenceRooms = list;
    data.presenceRoomId = list.length === 1 ? list[0]!.roomId : undefined;
    data.presenceUserId = list.length === 1 ? list[0]!.userId : this.authUserId;
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
    this.updateForms.delete(roomId);
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
    void this.unfollow(m.roomId);
    this.syncData();
  }

  /** Removes everything the transport attached to the socket. */
  detach(): void {
    for (const [event, fn] of this.handlers) this.socket.off(event, fn);
    this.handlers.length = 0;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }
}
