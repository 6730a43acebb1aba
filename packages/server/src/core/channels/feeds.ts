import type { Channel, ChannelPublication, StreamPosition } from 'realtime-message-protocol';
import { systemClock, type Clock } from '../shared/clock.js';
import type { TopicSource, Unsubscribe } from '../shared/hub.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { newEpoch, type ChannelBroker } from './broker.js';
import type { ChannelNamespaces } from './namespaces.js';

/**
 * What a channel's feed hands to the node's subscribers: publications in
 * offset order with no gap and no duplicate, or a notice that continuity was
 * lost (`epoch_changed`: the stream was reset, its history is gone;
 * `gap`: publications were missed and history no longer holds them;
 * `rewound`: storage came back from an older snapshot). After
 * the notice the feed continues from `position`; a subscriber must start
 * again from there (reload, or recover and get `recovered: false`).
 */
export type ChannelFeedItem =
  | { type: 'publication'; publication: ChannelPublication }
  | { type: 'unrecoverable'; channel: Channel; reason: UnrecoverableReason; position: StreamPosition };

/** Why continuity was lost: the stream was reset (new epoch), publications were missed beyond history, or storage went back to an older snapshot. */
export type UnrecoverableReason = 'epoch_changed' | 'gap' | 'rewound';

export interface ChannelFeedsOptions {
  broker: ChannelBroker;
  namespaces: ChannelNamespaces;
  /** Most publications one history read fetches when filling a gap (it pages until the gap is closed). @default 300 */
  fillPageSize?: number;
  /**
   * Period of the check of every followed channel's position against the
   * stream (one read per channel): finds publications whose pub/sub message
   * was lost with nothing published after them. 0 = off. @default 10000
   */
  positionCheckMs?: number;
  /** Most live publications held while a gap is being filled; beyond it they are dropped and re-read from history. @default 10000 */
  maxPending?: number;
  /** First retry delay of a failed history read (doubling, with jitter, up to 5 s). @default 100 */
  retryMs?: number;
  clock?: Clock;
  logger?: Logger;
}

type Job = { kind: 'pub'; p: ChannelPublication } | { kind: 'check' };

interface Feed {
  channel: Channel;
  deliver: (item: ChannelFeedItem) => void;
  /** The last position handed on; undefined until the first read. */
  position: StreamPosition | undefined;
  queue: Job[];
  busy: boolean;
  closed: boolean;
  retries: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The node's feeds of channels: the `channel` source of the node's Hub. For
 * each followed channel, one broker subscription, and one place that turns
 * the broker's pub/sub (which can drop messages during a reconnect) into a
 * stream with no gap: a publication whose offset is beyond the next one
 * makes the feed hold live publications, read the missing ones from history
 * and hand on both merged by offset; when history cannot close the gap, or
 * the epoch changed, every subscriber is told (`unrecoverable`), never left
 * with a silent gap. A periodic check (and the broker's reset signal) finds
 * the publications lost at the tail, after which nothing else was published.
 * Publications without history (offset 0, `skipHistory`) are handed on in
 * arrival order and never move the position; one lost by pub/sub is lost
 * (at most once, as in Centrifugo), and one that arrives while a gap is
 * being filled comes after the publications read from history.

 *
 * @example
 * const feeds = new ChannelFeeds({ broker, namespaces });
 * const hub = new Hub({ ...presenceSources(engine), ...channelSources(feeds) });
 */
export class ChannelFeeds implements TopicSource<ChannelFeedItem> {
  private readonly broker: ChannelBroker;
  private readonly namespaces: ChannelNamespaces;
  private readonly fillPageSize: number;
  private readonly maxPending: number;
  private readonly retryMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly feeds = new Map<Channel, Feed>();
  private readonly checkTimer: NodeJS.Timeout | undefined;
  private readonly stopReset: (() => void) | undefined;

  constructor(options: ChannelFeedsOptions) {
    this.broker = options.broker;
    this.namespaces = options.namespaces;
    this.fillPageSize = options.fillPageSize ?? 300;
    this.maxPending = options.maxPending ?? 10_000;
    this.retryMs = options.retryMs ?? 100;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    const every = options.positionCheckMs ?? 10_000;
    if (every > 0) {
      this.checkTimer = setInterval(() => this.checkAll(), every);
      this.checkTimer.unref();
    }
    this.stopReset = this.broker.onResync?.(() => this.checkAll());
  }

  /** Channels followed on this node. */
  get size(): number {
    return this.feeds.size;
  }

  /** Checks every followed channel's position against its stream now (also done periodically and on a storage reset). */
  checkAll(): void {
    for (const feed of this.feeds.values()) this.enqueue(feed, { kind: 'check' });
  }

  /** The Hub calls this once per channel: subscribe at the broker, then read the stream position the feed continues from. */
  async subscribe(id: string, deliver: (item: ChannelFeedItem) => void): Promise<Unsubscribe> {
    const channel = id as Channel;
    if (this.feeds.has(channel)) throw new Error(`channel '${channel}' already has a feed; subscribe through the Hub`);
    // Busy until the first read: publications that arrive meanwhile wait in the queue.
    const feed: Feed = { channel, deliver, position: undefined, queue: [], busy: true, closed: false, retries: 0, timer: undefined };
    this.feeds.set(channel, feed);
    let off: Unsubscribe | undefined;
    try {
      off = await this.broker.subscribe(channel, (p) => this.onPublication(feed, p));
      feed.position = (await this.read(channel, undefined, 0)).position;
    } catch (err) {
      this.feeds.delete(channel);
      feed.closed = true;
      await off?.().catch(() => {});
      throw err;
    }
    feed.busy = false;
    this.drain(feed);
    return async () => {
      if (feed.closed) return;
      feed.closed = true;
      clearTimeout(feed.timer);
      if (this.feeds.get(channel) === feed) this.feeds.delete(channel);
      await off();
    };
  }

  /**
   * A live publication from the broker. The hot path (in order, nothing
   * waiting: the next offset of the same epoch, or one without offset) hands
   * it on at once, without a queue entry; anything else is queued.
   */
  private onPublication(feed: Feed, p: ChannelPublication): void {
    if (feed.closed) return;
    const pos = feed.position;
    if (pos && !feed.busy && feed.queue.length === 0) {
      if (p.offset === pos.offset + 1 && p.epoch === pos.epoch) {
        feed.position = { offset: p.offset, epoch: p.epoch };
        feed.deliver({ type: 'publication', publication: p });
        return;
      }
      if (p.offset === 0) {
        this.deliverTransient(feed, p);
        return;
      }
    }
    this.enqueue(feed, { kind: 'pub', p });
  }

  private enqueue(feed: Feed, job: Job): void {
    if (feed.closed) return;
    if (job.kind === 'check' && feed.queue.some((j) => j.kind === 'check')) return;
    feed.queue.push(job);
    if (feed.queue.length > this.maxPending) {
      // Storage has not answered for long while publications keep coming: drop what is held. Nothing is lost silently:
      // the check compares with the stream and re-reads what was dropped from history (or reports a gap).
      this.logger.warn({ channel: feed.channel, held: feed.queue.length }, 'too many live publications held while a channel read is pending; re-reading them from history');
      feed.queue = [{ kind: 'check' }];
    }
    if (!feed.busy) this.drain(feed);
  }

  /** Runs the queued jobs in order; a job that needs storage makes the feed busy until it is done. */
  private drain(feed: Feed): void {
    while (!feed.busy && !feed.closed && feed.queue.length > 0) {
      const job = feed.queue[0]!;
      // Without history (offset 0): in arrival order, whatever the position (a resync never starts from one).
      if (job.kind === 'pub' && job.p.offset === 0) {
        feed.queue.shift();
        this.deliverTransient(feed, job.p);
        continue;
      }
      if (job.kind === 'pub' && feed.position && job.p.epoch === feed.position.epoch && job.p.offset <= feed.position.offset + 1) {
        feed.queue.shift();
        if (job.p.offset === feed.position.offset + 1) {
          feed.position = { offset: job.p.offset, epoch: job.p.epoch };
          feed.deliver({ type: 'publication', publication: job.p });
        }
        continue; // an offset at or below the position: a late duplicate (already handed on from history)
      }
      // A gap, another epoch, a check, or no position yet: compare with the stream.
      feed.busy = true;
      this.resync(feed, job).then(
        () => {
          feed.busy = false;
          feed.retries = 0;
          this.drain(feed);
        },
        (err: unknown) => {
          this.logger.warn({ err, channel: feed.channel }, 'reading a channel stream to close a gap failed; retrying');
          const delay = Math.min(5_000, this.retryMs * 2 ** feed.retries++) * (0.5 + Math.random() / 2);
          feed.timer = setTimeout(() => {
            feed.busy = false;
            this.drain(feed);
          }, delay);
          feed.timer.unref();
        },
      );
    }
  }

  /**
   * Brings the feed's position up to the stream: reads what was missed (in
   * pages) and hands it on, or reports `unrecoverable` and moves to the
   * stream's position. Consumes the job at the head of the queue when done.
   */
  private async resync(feed: Feed, job: Job): Promise<void> {
    const pos = feed.position;
    const head = await this.read(feed.channel, pos?.offset, pos ? this.fillPageSize : 0);
    if (feed.closed) return;
    const top = head.position;
    if (!pos) {
      feed.position = top;
    } else if (top.epoch !== pos.epoch) {
      feed.position = top;
      feed.deliver({ type: 'unrecoverable', channel: feed.channel, reason: 'epoch_changed', position: top });
    } else if (top.offset < pos.offset) {
      // Same epoch, fewer publications: storage was restored from an older snapshot. Offsets will be reused.
      feed.position = top;
      feed.deliver({ type: 'unrecoverable', channel: feed.channel, reason: 'rewound', position: top });
    } else if (top.offset > pos.offset) {
      let page = head.publications;
      let at = pos.offset;
      for (;;) {
        if (page.length === 0 || page[0]!.offset !== at + 1) {
          // History no longer holds what was missed (trimmed, expired, removed).
          feed.position = top;
          feed.deliver({ type: 'unrecoverable', channel: feed.channel, reason: 'gap', position: top });
          break;
        }
        for (const p of page) {
          if (p.offset !== at + 1) break;
          at = p.offset;
          feed.position = { offset: at, epoch: top.epoch };
          feed.deliver({ type: 'publication', publication: { channel: feed.channel, epoch: top.epoch, ...p } });
        }
        if (at >= top.offset) break;
        const next = await this.read(feed.channel, at, this.fillPageSize);
        if (feed.closed) return;
        if (next.position.epoch !== top.epoch) {
          feed.position = next.position;
          feed.deliver({ type: 'unrecoverable', channel: feed.channel, reason: 'epoch_changed', position: next.position });
          break;
        }
        page = next.publications;
      }
    }
    // The job that started this is dealt with: a publication at or below the new position was handed on from history;
    // one of another epoch is dropped (the subscribers were told). Past the stream it would be a broker bug: dropped, not looped on.
    if (feed.queue[0] === job) {
      feed.queue.shift();
      const now = feed.position!;
      if (job.kind === 'pub' && job.p.epoch === now.epoch && job.p.offset > now.offset) {
        if (job.p.offset === now.offset + 1) {
          feed.position = { offset: job.p.offset, epoch: now.epoch };
          feed.deliver({ type: 'publication', publication: job.p });
        } else {
          this.logger.error({ channel: feed.channel, offset: job.p.offset, top: now.offset }, 'a live publication is beyond its stream; dropped');
        }
      }
    }
  }

  /**
   * A publication without history (offset 0): handed on where it stands
   * among the others, the position unchanged (it is neither a gap nor a
   * duplicate). One of another epoch says the stream was reset: check it.
   */
  private deliverTransient(feed: Feed, p: ChannelPublication): void {
    feed.deliver({ type: 'publication', publication: p });
    if (feed.position && p.epoch !== feed.position.epoch) this.enqueue(feed, { kind: 'check' });
  }

  private read(channel: Channel, sinceOffset: number | undefined, limit: number) {
    const ns = this.namespaces.lookup(channel)?.options;
    // A feed exists only for a channel the service accepted, so its namespace is known.
    const metaTtlMs = ns?.historyMetaTtlMs ?? 720 * 3_600_000;
    return this.broker.read({ channel, sinceOffset, limit, reverse: false, metaTtlMs, newEpoch: newEpoch(), now: this.clock.now() });
  }

  /** Stops the periodic check; the Hub unsubscribes the feeds. */
  dispose(): void {
    clearInterval(this.checkTimer);
    this.stopReset?.();
    for (const feed of this.feeds.values()) clearTimeout(feed.timer);
  }
}

/** The Hub topics of channels. */
export type ChannelTopics = { channel: ChannelFeedItem };

/** The part of a node's Hub channels need (a Hub of more kinds fits). */
export interface ChannelHub {
  subscribe(kind: 'channel', id: string, listener: (item: ChannelFeedItem) => void): Promise<Unsubscribe>;
}

/** The Hub source of the `channel` topics. */
export function channelSources(feeds: ChannelFeeds): { channel: TopicSource<ChannelFeedItem> } {
  return { channel: feeds };
}
