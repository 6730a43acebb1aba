import type { Channel, Publication, RecoveryResult, StreamPosition } from 'realtime-message-protocol';
import type { Unsubscribe } from '../shared/hub.js';
import type { ChannelFeedItem } from './feeds.js';

/** Receives a subscription's live publications, or the one `unrecoverable` notice that ends it. */
export type ChannelListener = (event: ChannelFeedItem) => void;

export interface SubscribeOptions {
  /** Recover from this position: the result holds every publication after it (`recovered: true`) or none (`recovered: false`). */
  since?: StreamPosition | undefined;
  /**
   * Hold live publications until `start()` is called (after the subscribe
   * reply was written, so that no publication overtakes it). Without it,
   * live delivery starts on the next turn of the event loop.
   * @default false
   */
  manualStart?: boolean | undefined;
  /** Most live publications held before `start()`; beyond it the subscription ends as `unrecoverable` (`gap`). @default 10000 */
  maxBuffered?: number | undefined;
}

/**
 * One subscriber's view of a channel: the result of its subscribe (position,
 * recovered publications) and, from `start()`, the live publications that
 * follow it: in offset order, each once, with nothing missing. Live
 * publications that arrived while the subscribe read history are held and
 * merged by offset (those the read already covered are dropped).
 * Publications without history (offset 0) are handed on as they come,
 * without moving the position.
 */
export class ChannelSubscription {
  /** True when `since` was given and every publication after it is in {@link publications}. */
  recovered = false;
  /** True when the subscribe asked to recover (`since` given). */
  readonly wasRecovering: boolean;
  /** The publications recovered after `since` (empty unless `recovered`). */
  publications: Publication[] = [];
  /** The stream position once {@link publications} are applied; live publications continue from it. */
  offset = 0;
  epoch = '';
  private state: 'opening' | 'holding' | 'live' | 'closed' = 'opening';
  private held: ChannelFeedItem[] = [];
  private overflow = false;
  private off: Unsubscribe | undefined;
  private readonly maxBuffered: number;

  constructor(
    readonly channel: Channel,
    private readonly listener: ChannelListener,
    private readonly options: SubscribeOptions,
    private readonly onClose: (sub: ChannelSubscription) => void,
  ) {
    this.wasRecovering = options.since !== undefined;
    this.maxBuffered = options.maxBuffered ?? 10_000;
  }

  /** The stream position the subscriber is at (after the last publication handed to it). */
  get position(): StreamPosition {
    return { offset: this.offset, epoch: this.epoch };
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Registers with the Hub first (so nothing published from now on is
   * missed), then reads the position (or recovers); what arrives meanwhile
   * is held. Called once by the service.
   */
  async open(register: (listener: (item: ChannelFeedItem) => void) => Promise<Unsubscribe>, read: (since: StreamPosition | undefined) => Promise<RecoveryResult>): Promise<void> {
    this.off = await register((item) => this.onItem(item));
    if (this.closed) {
      await this.off(); // unsubscribed while registering
      return;
    }
    try {
      const res = await read(this.options.since);
      this.recovered = res.recovered && this.wasRecovering;
      this.publications = res.publications;
      this.offset = res.offset;
      this.epoch = res.epoch;
    } catch (err) {
      this.state = 'closed';
      await this.off();
      throw err;
    }
    if (this.closed) return; // unsubscribed while reading
    this.state = 'holding';
    if (!this.options.manualStart) setImmediate(() => this.start());
  }

  /** Starts live delivery: the held publications that follow the result, then every new one. Idempotent. */
  start(): void {
    if (this.state !== 'holding') return;
    this.state = 'live';
    const held = this.held;
    this.held = [];
    if (this.overflow) {
      this.end({ type: 'unrecoverable', channel: this.channel, reason: 'gap', position: this.position });
      return;
    }
    for (const item of held) {
      if (this.state !== 'live') return;
      this.handle(item);
    }
  }

  private onItem(item: ChannelFeedItem): void {
    if (this.state === 'live') {
      this.handle(item);
    } else if (this.state !== 'closed' && !this.overflow) {
      if (this.held.length >= this.maxBuffered) {
        this.overflow = true;
        this.held = [];
      } else {
        this.held.push(item);
      }
    }
  }

  private handle(item: ChannelFeedItem): void {
    if (item.type === 'unrecoverable') {
      // A jump forward to where the subscriber already is (its own read was newer than the feed's): nothing was missed.
      if (item.reason !== 'rewound' && item.position.epoch === this.epoch && item.position.offset <= this.offset) return;
      this.end({ ...item, position: item.position });
      return;
    }
    const p = item.publication;
    // Without history (offset 0): not in the stream, so neither a gap nor a duplicate; the position stays.
    if (p.offset === 0) {
      this.listener(item);
      return;
    }
    // Another epoch without a notice first: a late publication of the stream the subscriber's read already replaced.
    if (p.epoch !== this.epoch || p.offset <= this.offset) return;
    if (p.offset !== this.offset + 1) {
      // The feed is gap-free from before this subscriber's read, so this cannot happen; never hand on a gap if it does.
      this.end({ type: 'unrecoverable', channel: this.channel, reason: 'gap', position: { offset: p.offset, epoch: p.epoch } });
      return;
    }
    this.offset = p.offset;
    this.listener(item);
  }

  private end(notice: ChannelFeedItem): void {
    void this.unsubscribe();
    this.listener(notice);
  }

  /** Stops the subscription (the last one of the channel on this node unsubscribes at the broker). Idempotent. */
  async unsubscribe(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.held = [];
    this.onClose(this);
    await this.off?.();
  }
}
