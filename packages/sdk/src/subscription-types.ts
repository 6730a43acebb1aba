import type { ChannelPublication, ClientInfo, JsonValue, StreamPosition } from 'realtime-message-protocol/core';
import type { RealtimeError } from './errors.js';
import type { StateChange } from './state.js';
import type { Timers } from './timers.js';

/** States of a channel {@link Subscription}: `idle` until `subscribe()`, `unsubscribed` for good. */
export type SubscriptionState = 'idle' | 'subscribing' | 'subscribed' | 'unsubscribed';

/**
 * Why a subscription's state changed:
 * - `subscribe`: `subscribe()` was called, or the server acknowledged a (re)subscribe;
 * - `disconnect`: the connection dropped; it resubscribes from `position` when it is back;
 * - `gap`: a live publication did not follow `position` (offset or epoch); it resubscribes from `position` and never applies the gap;
 * - `resubscribe`: the server ended the subscription (`channel:resubscribe`); it resubscribes from `position`;
 * - `unsubscribe`: `unsubscribe()` was called;
 * - `server`: the server ended it on the application's request (`channel:unsubscribed`, e.g. the server API's `unsubscribe`);
 * - `shutdown`: the client was shut down;
 * - `error`: the first subscribe failed, or the server refused a resubscribe for good.
 */
export type SubscriptionChangeReason = 'subscribe' | 'disconnect' | 'gap' | 'resubscribe' | 'unsubscribe' | 'server' | 'shutdown' | 'error';

export interface SubscriptionOptions {
  /**
   * Recover from this position (one the app persisted from `position`): the
   * publications after it are emitted before `subscribe()` resolves, or the
   * `subscribed` event says `recovered: false` (reload from your own source).
   * @default none: start at the channel's current position
   */
  since?: StreamPosition;
}

/** A publication as a subscription emits it. */
export interface PublicationContext {
  channel: string;
  /** Its place in the channel's stream; `position` equals `{ offset, epoch }` once it is emitted. 0: published without history (not in the stream, live only, the position unchanged). */
  offset: number;
  epoch: string;
  data: JsonValue;
  /** Who published it (absent for the server HTTP API and the application in process). */
  info?: ClientInfo;
  tags?: Record<string, string>;
  /** True when it was missed while not subscribed and came with a (re)subscribe's recovery; false for a live one. */
  recovered: boolean;
}

/** The `subscribed` event: a (re)subscribe was acknowledged. */
export interface SubscribedContext {
  channel: string;
  /** Whether the subscribe asked for the publications after a position (after a reconnect, a gap, or with `since`). */
  wasRecovering: boolean;
  /**
   * With `wasRecovering`: true when every missed publication follows (as
   * `publication` events with `recovered: true`); false when they could
   * not be recovered (history lost or too short): reload from your own
   * source. Always false without `wasRecovering`.
   */
  recovered: boolean;
  /** The channel's position once the recovered publications are applied. */
  offset: number;
  epoch: string;
}

/** Why a subscription ended. */
export interface UnsubscribedContext {
  channel: string;
  /** `unsubscribe()`; `server`: the server ended it on the application's request (it does not subscribe again); `shutdown`; `error`: a resubscribe was refused for good. */
  reason: 'unsubscribe' | 'server' | 'shutdown' | 'error';
}

export interface SubscriptionEvents {
  /** A publication, in offset order, exactly once (live, or recovered after a reconnect). */
  publication: (publication: PublicationContext) => void;
  /** A (re)subscribe was acknowledged; emitted before the publications it recovered. */
  subscribed: (context: SubscribedContext) => void;
  /** The subscription ended (it does not come back). */
  unsubscribed: (context: UnsubscribedContext) => void;
  /** The subscription's state changed, and why. */
  state: (change: StateChange<SubscriptionState, SubscriptionChangeReason>) => void;
  /** A resubscribe failed: it is retried (`unavailable`, `timeout`, ...) or the subscription ends (`forbidden`, ...). */
  error: (error: RealtimeError) => void;
}

/** Options of {@link Subscription.history}. */
export interface SubscriptionHistoryOptions {
  /** Exclusive: publications after (with `reverse`, before) this position. @default the oldest (newest) retained */
  since?: StreamPosition;
  /** Most publications; 0 reads only the position, -1 as many as the server allows (300 by default). @default 0 */
  limit?: number;
  /** Newest first. @default false */
  reverse?: boolean;
}

/** What a subscription needs from its connection (implemented by the client). */
export interface SubscriptionHost {
  readonly timers: Timers;
  readonly random: () => number;
  /** Longest wait of `publish` and `history` for a resubscribe in progress. */
  readonly ackTimeoutMs: number;
  connected(): boolean;
  connect(): Promise<void>;
  request<T>(event: string, payload: unknown): Promise<T>;
  /** Stops routing the channel to this subscription; `done` settles once the server has ended it. */
  detach(channel: string, link: SubscriptionLink, done: Promise<void>): void;
  /** Settles once an earlier subscription of the channel was ended on the server. */
  leaving(channel: string): Promise<void>;
}

/** What the client calls on a subscription. */
export interface SubscriptionLink {
  publication(p: ChannelPublication): void;
  /** The server ended the subscription (`channel:resubscribe`): subscribe again. */
  resubscribe(): void;
  /** The server ended the subscription for good (`channel:unsubscribed`). */
  unsubscribed(): void;
  /** The client is connected (again). */
  connected(): void;
  /** The transport dropped. */
  disconnected(): void;
  /** The client shuts down. */
  dispose(): void;
}
