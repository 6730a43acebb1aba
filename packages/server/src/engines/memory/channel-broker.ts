import type { Channel, ChannelPublication, Publication, StreamPosition } from 'realtime-message-protocol';
import type { ChannelBroker, PublicationBody, PublishCommand, ReadCommand, ReadResult } from '../../core/channels/broker.js';

interface Stream {
  epoch: string;
  /** Newest offset of the epoch. */
  top: number;
  /** Ring buffer of the newest publications: `ring[(start + i) % ring.length]`, i < len; ring.length is the history size. */
  ring: Array<{ offset: number; body: PublicationBody } | undefined>;
  start: number;
  len: number;
  /** The history is dropped at this time (history_ttl after the last publish). */
  historyExpiresAt: number;
  /** The whole record (epoch, offset) is dropped at this time (history_meta_ttl after the last publish or read). */
  metaExpiresAt: number;
}

/** Streams looked at per call by the incremental sweep of expired channels. */
const SWEEP_STEP = 8;

/**
 * Channels in process memory (the embedded default): per channel a bounded
 * ring buffer of the newest `history_size` publications, dropped
 * `history_ttl` after the last publish, and an epoch with the newest
 * offset, forgotten `history_meta_ttl` after the last use (the next use then
 * starts a new epoch, as a Redis meta record that expired does). A process
 * restart starts every channel in a new epoch.
 *
 * Publications are delivered in a microtask, in offset order per channel,
 * to every subscriber (several services over one broker are several nodes).
 * Delivered and returned publications share their `data` objects: treat
 * them as read-only.
 */
export class MemoryBroker implements ChannelBroker {
  readonly kind = 'memory';
  private readonly streams = new Map<Channel, Stream>();
  private readonly listeners = new Map<Channel, Set<(p: ChannelPublication) => void>>();
  private readonly outbox: ChannelPublication[] = [];
  private flushing = false;

  /** Channels with a stream record (for tests and metrics). */
  get channelCount(): number {
    return this.streams.size;
  }

  /** The channel's stream if its record is still alive at `now` (its history dropped when that expired). */
  private live(channel: Channel, now: number): Stream | undefined {
    const s = this.streams.get(channel);
    if (!s) return undefined;
    if (s.metaExpiresAt <= now) {
      this.streams.delete(channel);
      return undefined;
    }
    if (s.historyExpiresAt <= now) this.clearHistory(s);
    return s;
  }

  private clearHistory(s: Stream): void {
    s.ring = [];
    s.start = 0;
    s.len = 0;
  }

  private ensure(channel: Channel, newEpoch: string, now: number): Stream {
    this.sweep(now);
    let s = this.live(channel, now);
    if (!s) {
      s = { epoch: newEpoch, top: 0, ring: [], start: 0, len: 0, historyExpiresAt: 0, metaExpiresAt: 0 };
      this.streams.set(channel, s);
    } else {
      // Move to the end: the sweep visits the least recently used first.
      this.streams.delete(channel);
      this.streams.set(channel, s);
    }
    return s;
  }

  /**
   * Drops a few expired records, starting with the least recently used; a
   * record that is not expired goes to the back. Bounded work per call, so
   * that memory follows the channels in use without a timer.
   */
  private sweep(now: number): void {
    let n = 0;
    for (const [channel, s] of this.streams) {
      if (n++ >= SWEEP_STEP) break;
      this.streams.delete(channel);
      if (s.metaExpiresAt > now) {
        if (s.historyExpiresAt <= now) this.clearHistory(s);
        this.streams.set(channel, s);
      }
    }
  }

  async publish(cmd: PublishCommand): Promise<StreamPosition> {
    const s = this.ensure(cmd.channel, cmd.newEpoch, cmd.now);
    if (cmd.skipHistory) {
      // Delivered in order with the others, not kept: no offset, the position does not move.
      s.metaExpiresAt = Math.max(s.metaExpiresAt, cmd.now + cmd.metaTtlMs);
      this.emit({ channel: cmd.channel, epoch: s.epoch, offset: 0, ...publicationFields(cmd.body) });
      return { offset: 0, epoch: s.epoch };
    }
    s.top += 1;
    s.metaExpiresAt = cmd.now + cmd.metaTtlMs;
    if (cmd.historySize > 0) {
      if (s.ring.length !== cmd.historySize) this.resize(s, cmd.historySize);
      const entry = { offset: s.top, body: cmd.body };
      if (s.len < s.ring.length) {
        s.ring[(s.start + s.len) % s.ring.length] = entry;
        s.len += 1;
      } else {
        s.ring[s.start] = entry;
        s.start = (s.start + 1) % s.ring.length;
      }
      s.historyExpiresAt = cmd.now + cmd.historyTtlMs;
    }
    this.emit({ channel: cmd.channel, epoch: s.epoch, offset: s.top, ...publicationFields(cmd.body) });
    return { offset: s.top, epoch: s.epoch };
  }

  /** A new history size (the config changed): keep the newest entries that fit. */
  private resize(s: Stream, size: number): void {
    const keep = this.entries(s).slice(-size);
    s.ring = new Array(size);
    keep.forEach((e, i) => (s.ring[i] = e));
    s.start = 0;
    s.len = keep.length;
  }

  private entries(s: Stream): Array<{ offset: number; body: PublicationBody }> {
    const out = [];
    for (let i = 0; i < s.len; i++) out.push(s.ring[(s.start + i) % s.ring.length]!);
    return out;
  }

  async read(cmd: ReadCommand): Promise<ReadResult> {
    const s = this.ensure(cmd.channel, cmd.newEpoch, cmd.now);
    s.metaExpiresAt = Math.max(s.metaExpiresAt, cmd.now + cmd.metaTtlMs);
    const position = { offset: s.top, epoch: s.epoch };
    if (cmd.limit <= 0) return { publications: [], position };
    const all = this.entries(s);
    const since = cmd.sinceOffset;
    const picked = cmd.reverse
      ? all.filter((e) => since === undefined || e.offset < since).reverse().slice(0, cmd.limit)
      : all.filter((e) => since === undefined || e.offset > since).slice(0, cmd.limit);
    return { publications: picked.map((e) => ({ offset: e.offset, ...publicationFields(e.body) })), position };
  }

  async removeHistory(channel: Channel): Promise<void> {
    const s = this.streams.get(channel);
    if (s) this.clearHistory(s);
  }

  async subscribe(channel: Channel, deliver: (p: ChannelPublication) => void): Promise<() => Promise<void>> {
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(deliver);
    return async () => {
      set.delete(deliver);
      if (set.size === 0 && this.listeners.get(channel) === set) this.listeners.delete(channel);
    };
  }

  /** Queues a publication; listeners run in a microtask, in order, never re-entrantly. */
  private emit(p: ChannelPublication): void {
    this.outbox.push(p);
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      // Index loop: a listener that publishes appends to the outbox, delivered after, in order.
      for (let i = 0; i < this.outbox.length; i++) {
        const p = this.outbox[i]!;
        const set = this.listeners.get(p.channel as Channel);
        if (set) for (const l of [...set]) l(p);
      }
      this.outbox.length = 0;
      this.flushing = false;
    });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

/** The publication fields of a body, leaving out absent ones. */
function publicationFields(body: PublicationBody): Omit<Publication, 'offset'> {
  const out: Omit<Publication, 'offset'> = { data: body.data };
  if (body.info !== undefined) out.info = body.info;
  if (body.tags !== undefined) out.tags = body.tags;
  return out;
}
