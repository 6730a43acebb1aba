import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import {
  CHANNEL_EVENTS,
  EVENTS,
  STATUS_EVENTS,
  isErrorCode,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type StatusRecord,
  type StatusSetAck,
  type StatusUpdate,
} from 'realtime-message-protocol/core';
import { ACTIVITY_EVENTS, ActivityThrottle, type ActivityTarget } from './activity.js';
import { Emitter } from './emitter.js';
import { RealtimeError } from './errors.js';
import type { RoomHost, RoomLink } from './host.js';
import { PresenceRoom, type RoomOptions } from './room.js';
import type { ConnectionChangeReason, ConnectionState, StateChange } from './state.js';
import { StatusWatches, type StatusWatch } from './status.js';
import { Subscription, type SubscriptionHost, type SubscriptionLink, type SubscriptionOptions } from './subscription.js';
import { backoffDelay, defaultTimers, type BackoffOptions, type Timers } from './timers.js';

/**
 * A token, or a function called before every (re)connect so an expiring
 * token can be refreshed; a function that returns undefined connects
 * without one. The attempt waits for the function.
 */
export type TokenProvider = string | (() => string | undefined | Promise<string | undefined>);

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface RealtimeClientOptions {
  /** Server URL, e.g. `https://presence.example.com`. */
  url: string;
  /** JWT for servers that require auth. @default none */
  token?: TokenProvider;
  /** Reconnection with exponential backoff and full jitter. @default { enabled: true, minDelayMs: 500, maxDelayMs: 10000, maxAttempts: Infinity } */
  reconnect?: BackoffOptions & { enabled?: boolean; maxAttempts?: number };
  /** @default ['websocket'] */
  transports?: Array<'websocket' | 'polling' | 'webtransport'>;
  /** Socket.IO path. @default '/socket.io' */
  path?: string;
  /** Longest wait for an ack. @default 10000 */
  ackTimeoutMs?: number;
  /** Longest wait for one connection attempt. @default 10000 */
  connectTimeoutMs?: number;
  /** Creates the socket (tests, custom transports). @default socket.io-client's `io` */
  socketFactory?: (url: string, options: Partial<ManagerOptions & SocketOptions>) => ClientSocket;
  /** @default the global timers */
  timers?: Timers;
  /** Random source of the jitter. @default Math.random */
  random?: () => number;
  /**
   * The user `setStatus` and activity reports act for on a server without
   * auth (open mode). With a token the server uses its `sub`. @default the
   * user this client joined its rooms as
   */
  userId?: string;
  /** Activity is reported to the server at most once per this interval (automatic away). @default 30000 */
  activityIntervalMs?: number;
}

export interface ClientEvents {
  /** The connection state changed, and why. */
  state: (change: StateChange<ConnectionState, ConnectionChangeReason>) => void;
  /** A connection attempt failed, or the server sent a notice before disconnecting. */
  error: (error: RealtimeError) => void;
}

/**
 * A connection to a realtime-message server. Reconnects by itself (backoff
 * with full jitter, a fresh token on every attempt) and rejoins every room.
 *
 * @example
 * const client = new RealtimeClient({ url: 'http://localhost:3000', token: () => fetchToken() });
 * const room = await client.joinRoom('doc-1', { userId: 'ada', state: { typing: false } });
 * room.on('sync', () => render(room.members()));
 * await client.shutdown();
 */
export class RealtimeClient {
  private readonly bus = new Emitter<ClientEvents>();
  /** The connection state: `disconnected`, `connecting`, `connected` or `reconnecting`. */
  readonly state: ConnectionState = 'disconnected';
  /** The underlying socket.io-client socket (for application events of your own). */
  readonly socket: ClientSocket;
  private readonly opts: Required<Omit<RealtimeClientOptions, 'token' | 'socketFactory' | 'reconnect' | 'userId'>> & {
    reconnect: Required<NonNullable<RealtimeClientOptions['reconnect']>>;
  };
  private readonly token: TokenProvider | undefined;
  private readonly userId: string | undefined;
  private readonly status: StatusWatches;
  private readonly activity: ActivityThrottle;
  private readonly rooms = new Map<string, { room: PresenceRoom; link: RoomLink }>();
  private readonly subs = new Map<string, { sub: Subscription; link: SubscriptionLink }>();
  /** Channels whose ended subscription the server has not confirmed yet: a new one waits for it. */
  private readonly leaving = new Map<string, Promise<void>>();
  private readonly subHost: SubscriptionHost;
  /** What rooms see of this client (see host.ts): kept off the public API. */
  private readonly host: RoomHost;
  private attempt = 0;
  private reconnectTimer: unknown;
  private closed = false;
  private connecting: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(options: RealtimeClientOptions) {
    this.token = options.token;
    this.userId = options.userId;
    this.opts = {
      url: options.url,
      transports: options.transports ?? ['websocket'],
      path: options.path ?? '/socket.io',
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      timers: options.timers ?? defaultTimers,
      random: options.random ?? Math.random,
      activityIntervalMs: options.activityIntervalMs ?? 30_000,
      reconnect: {
        enabled: options.reconnect?.enabled ?? true,
        minDelayMs: options.reconnect?.minDelayMs ?? 500,
        maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
        maxAttempts: options.reconnect?.maxAttempts ?? Infinity,
      },
    };
    const factory = options.socketFactory ?? ((url, o) => io(url, o) as ClientSocket);
    this.socket = factory(this.opts.url, {
      autoConnect: false,
      // Reconnection is ours: full jitter, and the token is fetched again on every attempt.
      reconnection: false,
      forceNew: true,
      transports: this.opts.transports,
      path: this.opts.path,
      timeout: this.opts.connectTimeoutMs,
      auth: (cb: (data: object) => void) => {
        this.resolveToken().then(
          (token) => cb(token === undefined ? {} : { token }),
          (err: unknown) => {
            this.bus.emit('error', new RealtimeError('unauthorized', `token provider failed: ${err instanceof Error ? err.message : String(err)}`));
            cb({});
          },
        );
      },
    });
    this.host = {
      timers: this.opts.timers,
      connected: () => this.socket.connected,
      connect: () => this.connect(),
      request: (event, payload) => this.request(event, payload),
      send: (event, payload) => void (this.socket as unknown as { emit(e: string, p: unknown): void }).emit(event, payload),
      detach: (roomId, link) => {
        if (this.rooms.get(roomId)?.link === link) this.rooms.delete(roomId);
      },
    };
    this.subHost = {
      timers: this.opts.timers,
      random: this.opts.random,
      ackTimeoutMs: this.opts.ackTimeoutMs,
      connected: () => this.socket.connected,
      connect: () => this.connect(),
      request: (event, payload) => this.request(event, payload),
      detach: (channel, link, done) => {
        if (this.subs.get(channel)?.link === link) this.subs.delete(channel);
        const settled: Promise<void> = done.finally(() => {
          if (this.leaving.get(channel) === settled) this.leaving.delete(channel);
        });
        this.leaving.set(channel, settled);
      },
      leaving: (channel) => this.leaving.get(channel) ?? Promise.resolve(),
    };
    this.socket.on('connect', () => this.onConnect());
    this.socket.on('disconnect', (reason) => this.onDisconnect(reason));
    this.socket.on('connect_error', (err: Error & { data?: { code?: unknown; message?: unknown } }) => {
      const code = isErrorCode(err.data?.code) ? err.data.code : 'disconnected';
      this.bus.emit('error', new RealtimeError(code, typeof err.data?.message === 'string' ? err.data.message : err.message));
      this.scheduleReconnect('error');
    });
    this.socket.on(EVENTS.event, (e) => this.rooms.get(e.roomId)?.link.event(e));
    this.socket.on(EVENTS.message, (m) => this.rooms.get(m.roomId)?.link.message(m));
    this.socket.on(EVENTS.resync, (n) => this.rooms.get(n.roomId)?.link.resync());
    this.socket.on(CHANNEL_EVENTS.publication, (p) => this.subs.get(p.channel)?.link.publication(p));
    this.socket.on(CHANNEL_EVENTS.resubscribe, (n) => this.subs.get(n.channel)?.link.resubscribe());
    // The server ended a subscription on the application's request (the server API's unsubscribe).
    this.socket.on(CHANNEL_EVENTS.unsubscribed, (n) => this.subs.get(n.channel)?.link.unsubscribed());
    this.socket.on(EVENTS.error, (n) => this.bus.emit('error', new RealtimeError(n.code, n.message)));
    this.status = new StatusWatches({ connected: () => this.socket.connected, connect: () => this.connect(), request: (e, p) => this.request(e, p) });
    this.socket.on(STATUS_EVENTS.event, (r) => this.status.event(r));
    this.activity = new ActivityThrottle(
      () => {
        if (this.socket.connected) (this.socket as unknown as { emit(e: string, p: unknown): void }).emit(STATUS_EVENTS.activity, this.userId === undefined ? {} : { userId: this.userId });
      },
      this.opts.activityIntervalMs,
      this.opts.timers,
    );
  }

  /** Listens to `state` and `error`; returns a function that removes the listener. */
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    return this.bus.on(event, listener);
  }

  off<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): void {
    this.bus.off(event, listener);
  }

  private async resolveToken(): Promise<string | undefined> {
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  /** The one place that changes the connection state (read-only to users, not to the client). */
  private setState(next: ConnectionState, reason: ConnectionChangeReason): void {
    if (next === this.state) return;
    const change = { newState: next, oldState: this.state, reason };
    (this as { state: ConnectionState }).state = next;
    this.bus.emit('state', change);
  }

  /** Connects (idempotent). Resolves once connected; rejects when reconnection gives up or the client shuts down. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new RealtimeError('closed', 'the client was shut down'));
    if (this.state === 'connected') return Promise.resolve();
    if (!this.connecting) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      this.connecting = { promise, resolve, reject };
      if (this.state === 'disconnected') {
        this.setState('connecting', 'connect');
        this.socket.connect();
      }
    }
    return this.connecting.promise;
  }

  private onConnect(): void {
    this.attempt = 0;
    this.setState('connected', this.state === 'reconnecting' ? 'reconnect' : 'connect');
    this.connecting?.resolve();
    this.connecting = undefined;
    for (const { link } of this.rooms.values()) link.connected();
    for (const { link } of [...this.subs.values()]) link.connected();
    this.status.connected();
  }

  private onDisconnect(reason: string): void {
    for (const { link } of this.rooms.values()) link.disconnected();
    for (const { link } of [...this.subs.values()]) link.disconnected();
    if (this.closed || reason === 'io client disconnect') {
      this.setState('disconnected', this.closed ? 'shutdown' : 'disconnect');
      return;
    }
    this.scheduleReconnect('disconnect');
  }

  /** After a lost transport (`disconnect`) or a failed attempt (`error`). */
  private scheduleReconnect(cause: 'disconnect' | 'error'): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    const r = this.opts.reconnect;
    if (!r.enabled || this.attempt >= r.maxAttempts) {
      this.setState('disconnected', cause);
      this.connecting?.reject(new RealtimeError('disconnected', `could not connect to ${this.opts.url}`));
      this.connecting = undefined;
      return;
    }
    this.setState(this.state === 'connected' || this.state === 'reconnecting' ? 'reconnecting' : 'connecting', cause);
    const delay = backoffDelay(this.attempt++, r, this.opts.random);
    this.reconnectTimer = this.opts.timers.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed) this.socket.connect();
    }, delay);
  }

  /** Sends a client event and waits for its ack (at most `ackTimeoutMs`). */
  private async request<T>(event: string, payload: unknown): Promise<T> {
    if (this.closed) throw new RealtimeError('closed', 'the client was shut down');
    if (!this.socket.connected) throw new RealtimeError('disconnected', 'not connected');
    try {
      return (await (this.socket.timeout(this.opts.ackTimeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<T> }).emitWithAck(event, payload));
    } catch {
      throw new RealtimeError('timeout', `no answer to ${event} within ${this.opts.ackTimeoutMs} ms`);
    }
  }

  /**
   * The room object of `roomId` (one per room and client), not joined yet.
   * @example
   * const room = client.createPresenceRoom('doc-1', { userId: 'ada' });
   * room.on('sync', render);
   * await room.join();
   */
  createPresenceRoom(roomId: string, options: RoomOptions): PresenceRoom {
    if (this.closed) throw new RealtimeError('closed', 'the client was shut down');
    if (this.rooms.has(roomId)) throw new RealtimeError('invalid_payload', `a room object for '${roomId}' exists already`);
    const [room, link] = PresenceRoom._create(this.host, roomId, options);
    this.rooms.set(roomId, { room, link });
    return room;
  }

  /** @deprecated use {@link createPresenceRoom} */
  createPresenceChannel(roomId: string, options: RoomOptions): PresenceRoom {
    return this.createPresenceRoom(roomId, options);
  }

  /** Connects if needed, creates the room object and joins it. Rejects with the server's code. */
  async joinRoom(roomId: string, options: RoomOptions): Promise<PresenceRoom> {
    const room = this.rooms.get(roomId)?.room ?? this.createPresenceRoom(roomId, options);
    await this.connect();
    await room.join();
    return room;
  }

  /**
   * Watches the status of some users (SPEC §7): a live map, current after
   * every reconnect. Connects if needed. Rejects with the server's code
   * (`invalid_payload`, `forbidden` past the server's watch limit, ...).
   * @example
   * const people = await client.watchStatus(['ada', 'grace']);
   * people.on('change', (record) => console.info(record.userId, record.status, record.message));
   */
  watchStatus(userIds: readonly string[]): Promise<StatusWatch> {
    if (this.closed) return Promise.reject(new RealtimeError('closed', 'the client was shut down'));
    return this.status.watch(userIds);
  }

  /**
   * Sets this client's user's status and message (`status:set`); resolves
   * with the new record. `online` clears a manual status.
   * @example await client.setStatus({ status: 'busy', message: 'in a meeting', ttlSeconds: 3600 });
   */
  async setStatus(update: StatusUpdate): Promise<StatusRecord> {
    await this.connect();
    const res = await this.request<StatusSetAck>(STATUS_EVENTS.set, this.userId === undefined ? update : { ...update, userId: this.userId });
    if (!res.ok) throw new RealtimeError(res.error.code, res.error.message);
    this.status.wrote(res.user);
    return res.user;
  }

  /**
   * The subscription object of `channel` (SPEC §8), not subscribed yet:
   * attach listeners, then `subscribe()`. One per channel and client:
   * throws `already_subscribed` while one exists (see {@link getSubscription}).
   * @example
   * const sub = client.createSubscription('chat:lobby', { since: saved });
   * sub.on('publication', (p) => show(p.data));
   * await sub.subscribe();
   */
  createSubscription(channel: string, options: SubscriptionOptions = {}): Subscription {
    if (this.closed) throw new RealtimeError('closed', 'the client was shut down');
    if (typeof channel !== 'string' || channel === '') throw new RealtimeError('invalid_payload', 'a channel name is a non-empty string');
    if (this.subs.has(channel)) throw new RealtimeError('already_subscribed', `a subscription to '${channel}' exists already; use getSubscription('${channel}') or unsubscribe it first`);
    const [sub, link] = Subscription._create(this.subHost, channel, options);
    this.subs.set(channel, { sub, link });
    return sub;
  }

  /**
   * Creates the subscription of `channel` and subscribes (connecting if
   * needed); resolves once the ack is applied. With `since`, publications
   * recovered by this first subscribe are emitted before it resolves: use
   * {@link createSubscription} to listen to them.
   * @example
   * const sub = await client.subscribe('chat:lobby');
   * sub.on('publication', (p) => show(p.offset, p.data));
   * await sub.publish({ text: 'hello' });
   */
  async subscribe(channel: string, options: SubscriptionOptions = {}): Promise<Subscription> {
    const sub = this.createSubscription(channel, options);
    await sub.subscribe();
    return sub;
  }

  /** The subscription of `channel` that has not ended, if any. */
  getSubscription(channel: string): Subscription | undefined {
    return this.subs.get(channel)?.sub;
  }

  /** Reports user activity for automatic away; cheap to call on every input event (throttled to one report per `activityIntervalMs`). */
  reportActivity(): void {
    if (!this.closed) this.activity.report();
  }

  /**
   * Reports activity whenever `target` (by default `window`) sees input
   * (pointer, keys, wheel, touch, focus). Returns a function that stops.
   * @example const stop = client.trackActivity();
   */
  trackActivity(target: ActivityTarget | undefined = (globalThis as { window?: ActivityTarget }).window): () => void {
    if (!target) throw new RealtimeError('invalid_payload', 'trackActivity needs a target with addEventListener (there is no window here)');
    const listener = (): void => this.reportActivity();
    for (const type of ACTIVITY_EVENTS) target.addEventListener(type, listener, { passive: true });
    return () => {
      for (const type of ACTIVITY_EVENTS) target.removeEventListener(type, listener);
    };
  }

  /** Leaves every room (bounded by the ack timeout), disconnects, and releases every timer and listener. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.rooms.values()].map(({ link }) => link.close()));
    this.closed = true;
    if (this.reconnectTimer !== undefined) this.opts.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const { link } of [...this.rooms.values()]) link.dispose();
    this.rooms.clear();
    for (const { link } of [...this.subs.values()]) link.dispose();
    this.subs.clear();
    this.status.dispose();
    this.activity.dispose();
    this.connecting?.reject(new RealtimeError('closed', 'the client was shut down'));
    this.connecting = undefined;
    this.socket.disconnect();
    this.socket.removeAllListeners();
    this.setState('disconnected', 'shutdown');
    this.bus.clear();
  }
}
