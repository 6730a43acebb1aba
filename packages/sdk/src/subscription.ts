import {
  CHANNEL_EVENTS,
  type ChannelHistoryAck,
  type ChannelPublication,
  type ChannelPublishAck,
  type ChannelSubscribeAck,
  type ChannelUnsubscribeAck,
  type HistoryResult,
  type JsonValue,
  type Publication,
  type StreamPosition,
} from 'realtime-message-protocol/core';
import { Emitter } from './emitter.js';
import { RealtimeError } from './errors.js';
import { resubscribeErrorAction } from './policy.js';
import type { StateChange } from './state.js';
import type {
  SubscriptionChangeReason,
  SubscriptionEvents,
  SubscriptionHistoryOptions,
  SubscriptionHost,
  SubscriptionLink,
  SubscriptionOptions,
  SubscriptionState,
  UnsubscribedContext,
} from './subscription-types.js';
import { backoffDelay } from './timers.js';

export type * from './subscription-types.js';

/** Backoff of resubscribes that failed with a transient code (`unavailable`, `timeout`, ...). */
const RETRY = { minDelayMs: 500, maxDelayMs: 10_000 };

/** A live publication received while subscribing (applied once the ack is), or the server's notice that it ended the subscription. */
type Buffered = ChannelPublication | 'resubscribe';

type Waiter = { resolve: () => void; reject: (e: Error) => void };

function asError(err: unknown): RealtimeError {
  return err instanceof RealtimeError ? err : new RealtimeError('internal', err instanceof Error ? err.message : String(err));
}

/**
 * One channel of this client (SPEC §8): publications in offset order,
 * exactly once, across reconnects. After every reconnect, and when the
 * server ends the subscription (`channel:resubscribe`), it subscribes again
 * from `position` and the server recovers what was missed; a live
 * publication that does not follow `position` (a gap, another epoch) is
 * never applied: it resubscribes from `position` instead. When the missed
 * publications cannot be recovered, `subscribed` says `recovered: false`
 * and the app reloads.
 *
 * Created by {@link RealtimeClient.createSubscription} (attach listeners,
 * then `subscribe()`) or {@link RealtimeClient.subscribe}. One per channel
 * and client; single use: after `unsubscribe()` create a new one.
 *
 * @example
 * const sub = client.createSubscription('chat:lobby', { since: saved });
 * sub.on('subscribed', ({ wasRecovering, recovered }) => { if (wasRecovering && !recovered) reload(); });
 * sub.on('publication', (p) => { show(p.data); save(sub.position); });
 * await sub.subscribe();
 * await sub.publish({ text: 'hello' });
 */
export class Subscription {
  private readonly bus = new Emitter<SubscriptionEvents>();
  /** `idle`, `subscribing`, `subscribed` or `unsubscribed`. */
  readonly state: SubscriptionState = 'idle';
  private pos: StreamPosition | undefined;
  /** Set when a `stale_epoch` made the position unusable: the next subscribe goes without one but counts as recovering. */
  private lostPosition = false;
  /** Bumped on every disconnect: answers that belong to an older connection are ignored. */
  private gen = 0;
  /** The subscribe chain in flight (of connection `gen`), if any. */
  private inflight: { gen: number } | undefined;
  private running: Promise<unknown> | undefined;
  /** Collects live items from the moment a subscribe request is sent until its ack is applied. */
  private buffer: Buffered[] | undefined;
  private retryTimer: unknown;
  private failures = 0;
  private everSubscribed = false;
  private readyWaiters = new Set<Waiter>();
  private closing: Promise<void> | undefined;
  private readonly link: SubscriptionLink;

  private constructor(
    private readonly host: SubscriptionHost,
    /** The channel's name. */
    readonly channel: string,
    private readonly options: SubscriptionOptions,
  ) {
    this.link = {
      publication: (p) => this.onLive(p),
      resubscribe: () => this.onLive('resubscribe'),
      unsubscribed: () => this.end('server'),
      connected: () => this.onConnected(),
      disconnected: () => this.onDisconnected(),
      dispose: () => this.end('shutdown'),
    };
  }

  /** @internal the client's factory: the subscription, and the link through which the client drives it. */
  static _create(host: SubscriptionHost, channel: string, options: SubscriptionOptions): [Subscription, SubscriptionLink] {
    const sub = new Subscription(host, channel, options);
    return [sub, sub.link];
  }

  /**
   * `{ offset, epoch }` of the last publication applied (or of the stream
   * when subscribed, before any): persist it and pass it back as `since`.
   * Undefined before the first subscribe ack (then it is the `since` option).
   */
  get position(): StreamPosition | undefined {
    const p = this.pos ?? this.options.since;
    return p && { offset: p.offset, epoch: p.epoch };
  }

  on<K extends keyof SubscriptionEvents>(event: K, listener: SubscriptionEvents[K]): () => void {
    return this.bus.on(event, listener);
  }

  off<K extends keyof SubscriptionEvents>(event: K, listener: SubscriptionEvents[K]): void {
    this.bus.off(event, listener);
  }

  private get w(): { -readonly [K in 'state']: Subscription[K] } {
    return this;
  }

  private setState(next: SubscriptionState, reason: SubscriptionChangeReason): void {
    if (next === this.state) return;
    const change: StateChange<SubscriptionState, SubscriptionChangeReason> = { newState: next, oldState: this.state, reason };
    this.w.state = next;
    if (next === 'subscribed') this.settleWaiters();
    this.bus.emit('state', change);
  }

  /**
   * Subscribes (connecting first if needed). Resolves once the ack is
   * applied: `subscribed` was emitted, then every recovered publication.
   * Rejects with the server's code (`forbidden`, `invalid_payload`,
   * `already_subscribed`, ...); the subscription is then `unsubscribed`.
   */
  async subscribe(): Promise<void> {
    if (this.state !== 'idle') throw new RealtimeError(this.state === 'unsubscribed' ? 'closed' : 'already_subscribed', `subscribe() was called already on '${this.channel}'`);
    this.setState('subscribing', 'subscribe');
    try {
      await this.host.leaving(this.channel);
      await this.host.connect();
      const out = await this.run(false);
      if (out === 'done') return;
      throw out instanceof RealtimeError ? out : new RealtimeError((this.state as SubscriptionState) === 'unsubscribed' ? 'closed' : 'disconnected', `the subscribe to '${this.channel}' was interrupted`);
    } catch (err) {
      this.end('error', false);
      throw asError(err);
    }
  }

  /**
   * Publishes to the channel; resolves with the publication's position.
   * While a resubscribe is under way it waits for it (at most the ack timeout).
   */
  async publish(data: JsonValue, options: { tags?: Record<string, string> } = {}): Promise<StreamPosition> {
    await this.ready();
    const res = await this.host.request<ChannelPublishAck>(CHANNEL_EVENTS.publish, { channel: this.channel, data, ...(options.tags ? { tags: options.tags } : {}) });
    if (!res.ok) throw new RealtimeError(res.error.code, res.error.message);
    return { offset: res.offset, epoch: res.epoch };
  }

  /**
   * Reads the channel's history and its current position. Note the server's
   * default `limit` of 0 (the position only).
   * @example const { publications } = await sub.history({ limit: 10, reverse: true }); // the newest 10
   */
  async history(options: SubscriptionHistoryOptions = {}): Promise<HistoryResult> {
    await this.ready();
    const res = await this.host.request<ChannelHistoryAck>(CHANNEL_EVENTS.history, { channel: this.channel, ...options });
    if (!res.ok) throw new RealtimeError(res.error.code, res.error.message);
    return { publications: res.publications, offset: res.offset, epoch: res.epoch };
  }

  /** Ends the subscription (for good: `unsubscribed`, reason `unsubscribe`); resolves once the server has ended it. */
  async unsubscribe(): Promise<void> {
    this.end('unsubscribe');
    await this.closing;
  }

  /** Connects if needed and waits while a subscribe is under way (bounded by the ack timeout). */
  private async ready(): Promise<void> {
    await this.host.connect();
    if (this.state !== 'subscribing') return;
    await new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve: () => (this.host.timers.clearTimeout(timer), resolve()),
        reject: (e) => (this.host.timers.clearTimeout(timer), reject(e)),
      };
      const timer = this.host.timers.setTimeout(() => {
        this.readyWaiters.delete(w);
        reject(new RealtimeError('timeout', `'${this.channel}' was not subscribed again within ${this.host.ackTimeoutMs} ms`));
      }, this.host.ackTimeoutMs);
      this.readyWaiters.add(w);
    });
  }

  private settleWaiters(error?: RealtimeError): void {
    const waiters = [...this.readyWaiters];
    this.readyWaiters.clear();
    for (const w of waiters) (error ? w.reject(error) : w.resolve());
  }

  private stale(gen: number): boolean {
    return gen !== this.gen || this.state !== 'subscribing';
  }

  /**
   * One subscribe (after ending the server's subscription first when asked),
   * at most one per connection at a time. Applies the ack; answers `done`,
   * `stale` (the connection changed, or the subscription ended, meanwhile),
   * or the error.
   */
  private run(unsubscribeFirst: boolean): Promise<'done' | 'stale' | RealtimeError> {
    const gen = this.gen;
    if (this.inflight?.gen === gen || this.state !== 'subscribing' || !this.host.connected()) return Promise.resolve('stale');
    const token = (this.inflight = { gen });
    const p = this.attempt(gen, token, unsubscribeFirst).then(
      (out) => out,
      (err: unknown) => asError(err),
    );
    this.running = p;
    void p.then((out) => {
      if (this.inflight === token) this.inflight = undefined;
      if (out instanceof RealtimeError && this.everSubscribed && !this.stale(gen)) this.failed(out);
    });
    return p;
  }

  private async attempt(gen: number, token: { gen: number }, unsubscribeFirst: boolean): Promise<'done' | 'stale' | RealtimeError> {
    if (unsubscribeFirst) {
      const res = await this.host.request<ChannelUnsubscribeAck>(CHANNEL_EVENTS.unsubscribe, { channel: this.channel });
      if (!res.ok) return new RealtimeError(res.error.code, res.error.message);
      if (this.stale(gen)) return 'stale';
    }
    const since = this.lostPosition ? undefined : (this.pos ?? this.options.since);
    const wasRecovering = since !== undefined || this.lostPosition;
    this.buffer = [];
    const res = await this.host.request<ChannelSubscribeAck>(CHANNEL_EVENTS.subscribe, since ? { channel: this.channel, since } : { channel: this.channel });
    if (this.stale(gen)) return 'stale';
    if (!res.ok) return new RealtimeError(res.error.code, res.error.message);
    // Done before applying: a gap found while applying starts the next chain at once.
    if (this.inflight === token) this.inflight = undefined;
    this.lostPosition = false;
    this.failures = 0;
    this.everSubscribed = true;
    this.applyAck(res, wasRecovering);
    return 'done';
  }

  /**
   * The ack of a (re)subscribe: `subscribed`, then the recovered
   * publications, then the live ones that arrived meanwhile (those not
   * after the position are dropped; a gap resubscribes).
   */
  private applyAck(res: Extract<ChannelSubscribeAck, { ok: true }>, wasRecovering: boolean): void {
    const recovered = wasRecovering && res.recovered;
    // Not recovered (or nothing to recover from): the app starts (or reloads) at the stream's position.
    if (recovered) this.pos = { offset: this.pos?.offset ?? this.options.since!.offset, epoch: res.epoch };
    else this.pos = { offset: res.offset, epoch: res.epoch };
    const buffered = this.buffer ?? [];
    this.buffer = undefined;
    this.setState('subscribed', 'subscribe');
    this.bus.emit('subscribed', { channel: this.channel, wasRecovering, recovered, offset: res.offset, epoch: res.epoch });
    for (const p of recovered ? res.publications : []) {
      if (this.state !== 'subscribed') return;
      if (this.deliver(p, res.epoch, true) === 'gap') return this.resubscribe('gap');
    }
    if (this.state !== 'subscribed') return;
    // The ack's position is the stream's top once the recovery is applied.
    if (this.pos.offset < res.offset) return this.resubscribe('gap');
    for (const item of buffered) {
      if (this.state !== 'subscribed') return;
      this.onLive(item);
    }
  }

  /** Applies one publication if it is the next one; a duplicate is dropped, a gap is reported and not applied. */
  private deliver(p: Publication, epoch: string, recovered: boolean): 'applied' | 'duplicate' | 'gap' {
    const pos = this.pos!;
    // Offset 0: published without history; not in the stream, so the position stays.
    const transient = p.offset === 0 && !recovered;
    if (!transient && epoch === pos.epoch && p.offset <= pos.offset) return 'duplicate';
    if (!transient && (epoch !== pos.epoch || p.offset !== pos.offset + 1)) return 'gap';
    if (!transient) this.pos = { offset: p.offset, epoch };
    this.bus.emit('publication', {
      channel: this.channel,
      offset: p.offset,
      epoch,
      data: p.data,
      ...(p.info ? { info: p.info } : {}),
      ...(p.tags ? { tags: p.tags } : {}),
      recovered,
    });
    return 'applied';
  }

  /** A pushed publication or `channel:resubscribe` notice. */
  private onLive(item: Buffered): void {
    if (this.state === 'subscribing') {
      // Collected only once our subscribe is sent: earlier ones belong to a subscription that is being replaced.
      this.buffer?.push(item);
      return;
    }
    if (this.state !== 'subscribed') return;
    if (item === 'resubscribe') return this.resubscribe('resubscribe');
    if (this.deliver(item, item.epoch, false) === 'gap') this.resubscribe('gap');
  }

  /** Subscribes again from the position; after a gap the server still holds the old subscription, so it is ended first. */
  private resubscribe(reason: 'gap' | 'resubscribe'): void {
    this.setState('subscribing', reason);
    this.buffer = undefined;
    void this.run(reason === 'gap');
  }

  private onConnected(): void {
    // The first subscribe is driven by subscribe() itself.
    if (this.state === 'subscribing' && this.everSubscribed) void this.run(false);
  }

  private onDisconnected(): void {
    this.gen++;
    this.buffer = undefined;
    this.clearRetry();
    if (this.state === 'subscribed') this.setState('subscribing', 'disconnect');
  }

  /** A resubscribe failed (see {@link resubscribeErrorAction}). */
  private failed(err: RealtimeError): void {
    const action = resubscribeErrorAction(err.code);
    if (action === 'wait') return;
    if (action === 'stop') {
      this.bus.emit('error', err);
      this.end('error');
      return;
    }
    if (action === 'reset') this.lostPosition = true;
    if (action === 'retry') this.bus.emit('error', err);
    const delay = backoffDelay(this.failures++, RETRY, this.host.random);
    this.retryTimer = this.host.timers.setTimeout(() => {
      this.retryTimer = undefined;
      void this.run(action === 'unsubscribe_first');
    }, delay);
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) this.host.timers.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * Ends the subscription for good: state `unsubscribed`, `unsubscribed`
   * emitted (unless the first subscribe failed: its caller gets the error),
   * the server told (after a subscribe in flight landed, so the unsubscribe
   * follows it), and the client stops routing the channel here.
   */
  private end(reason: UnsubscribedContext['reason'], emit = true): void {
    if (this.state === 'unsubscribed') return;
    const wasActive = this.state !== 'idle';
    this.clearRetry();
    this.buffer = undefined;
    this.setState('unsubscribed', reason);
    this.settleWaiters(new RealtimeError('closed', `the subscription to '${this.channel}' ended`));
    if (emit && wasActive) this.bus.emit('unsubscribed', { channel: this.channel, reason });
    const running = this.running;
    this.closing = (async () => {
      if (reason === 'shutdown' || !wasActive) return;
      await running;
      if (!this.host.connected()) return;
      await this.host.request<ChannelUnsubscribeAck>(CHANNEL_EVENTS.unsubscribe, { channel: this.channel }).catch(() => {});
    })();
    this.host.detach(this.channel, this.link, this.closing);
    if (reason === 'shutdown') this.bus.clear();
  }
}
