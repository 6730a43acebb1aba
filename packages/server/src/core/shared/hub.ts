import { silentLogger, type Logger } from './logger.js';

/** Ends a subscription. Idempotent. */
export type Unsubscribe = () => Promise<void>;

/**
 * Where the items of one kind of topic come from (a presence engine for
 * rooms, later a broker for channels and a status store for watched users).
 * The Hub calls `subscribe` once per topic per node, when the first local
 * listener arrives, and the returned function once, when the last one goes.
 */
export interface TopicSource<T> {
  subscribe(id: string, deliver: (item: T) => void): Promise<Unsubscribe>;
}

export interface HubOptions {
  logger?: Logger;
  /** Called with the topic kind and id when a listener throws; the other listeners still get the item. */
  onListenerError?: (kind: string, id: string, err: unknown) => void;
  /** Called once per item a source delivers, with the number of local listeners it reached; for metrics. */
  onDeliver?: (kind: string, item: unknown, listeners: number) => void;
  /**
   * How long a topic stays subscribed at its source after its last local
   * listener went, by kind (none when absent): a listener that comes back
   * within it (a member leaving and joining again, a room whose only local
   * member churns) reuses the subscription instead of a round trip to
   * unsubscribe and one to subscribe again. Items meanwhile reach nobody.
   */
  lingerMs?: Readonly<Record<string, number>>;
  /** Most topics kept lingering at once; beyond, a topic is unsubscribed at once. @default 10000 */
  maxLingering?: number;
}

interface Topic<T> {
  /** The topic's key in `topics` and its kind: kept here so that a listener's unsubscribe holds no string of its own. */
  key: string;
  kind: string;
  listeners: Set<(item: T) => void>;
  /** Resolves once the source delivers, to its unsubscribe; rejects when the source failed. */
  ready: Promise<Unsubscribe>;
}

/**
 * The node-local registry of interest. Every session of every transport
 * registers the topics it wants here; only the first registration of a topic
 * subscribes at the source, and only the last one unsubscribes. A failed
 * source subscription rolls back (the topic is forgotten, so the next
 * registration tries again). Transitions of one topic are serialised: a new
 * subscription waits until the unsubscribe of the previous one finished, so a
 * source never sees subscribe and unsubscribe of one topic overlap.
 *
 * @example
 * const hub = new Hub({ presence: { subscribe: (room, deliver) => engine.subscribe(room, deliver) } });
 * const off = await hub.subscribe('presence', 'doc-1', (item) => socket.emit('presence:event', item));
 * await off();
 */
export class Hub<Kinds extends Record<string, unknown>> {
  private readonly topics = new Map<string, Topic<unknown>>();
  /** Unsubscribes in flight, by topic key; the next subscribe of the topic waits for it. */
  private readonly closing = new Map<string, Promise<void>>();
  private readonly logger: Logger;
  private readonly onListenerError: HubOptions['onListenerError'];
  private readonly onDeliver: HubOptions['onDeliver'];
  private readonly lingerMs: Readonly<Record<string, number>>;
  private readonly maxLingering: number;
  /** Topics without listeners kept subscribed for a while (see `HubOptions.lingerMs`), by topic key. */
  private readonly lingering = new Map<string, { topic: Topic<unknown>; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(
    private readonly sources: { readonly [K in keyof Kinds]: TopicSource<Kinds[K]> },
    options: HubOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
    this.onListenerError = options.onListenerError;
    this.onDeliver = options.onDeliver;
    this.lingerMs = options.lingerMs ?? {};
    this.maxLingering = options.maxLingering ?? 10_000;
  }

  /** Number of topics with at least one listener (all kinds, or one kind). */
  size(kind?: keyof Kinds & string): number {
    if (kind === undefined) return this.topics.size;
    let n = 0;
    const prefix = `${kind}\u0000`;
    for (const key of this.topics.keys()) if (key.startsWith(prefix)) n++;
    return n;
  }

  /** Number of local listeners of one topic. */
  listeners(kind: keyof Kinds & string, id: string): number {
    return this.topics.get(key(kind, id))?.listeners.size ?? 0;
  }

  /**
   * Registers `listener` for the topic and resolves once items flow to it.
   * Rejects (with the source's error) when the source subscription failed;
   * nothing is left registered then.
   */
  async subscribe<K extends keyof Kinds & string>(kind: K, id: string, listener: (item: Kinds[K]) => void): Promise<Unsubscribe> {
    if (this.closed) throw new Error('the hub is closed');
    const k = key(kind, id);
    let topic = this.topics.get(k) as Topic<Kinds[K]> | undefined;
    if (!topic) topic = this.revive<K>(k) ?? this.open(kind, id, k);
    const mine = topic;
    mine.listeners.add(listener);
    try {
      await mine.ready;
    } catch (err) {
      mine.listeners.delete(listener);
      throw err;
    }
    return this.unsubscriber(mine as Topic<unknown>, listener as (item: unknown) => void);
  }

  /**
   * The unsubscribe of one listener. Made here, outside `subscribe`, so that
   * the closure (one per listener, kept for as long as it listens) holds only
   * the topic, the listener and its flag, not the arguments and key string of
   * the call that made it.
   */
  private unsubscriber(mine: Topic<unknown>, listener: (item: unknown) => void): Unsubscribe {
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      mine.listeners.delete(listener);
      const k = mine.key;
      if (mine.listeners.size === 0 && this.topics.get(k) === mine) {
        const linger = this.lingerMs[mine.kind] ?? 0;
        if (linger > 0 && !this.closed && this.lingering.size < this.maxLingering) this.linger(k, mine, linger);
        else await this.close(k, mine);
      }
    };
  }

  /** Keeps a topic without listeners subscribed for `ms`, then unsubscribes it unless a listener came back. */
  private linger(k: string, topic: Topic<unknown>, ms: number): void {
    this.topics.delete(k);
    const timer = setTimeout(() => {
      if (this.lingering.get(k)?.topic !== topic) return;
      this.lingering.delete(k);
      void this.close(k, topic);
    }, ms);
    timer.unref();
    this.lingering.set(k, { topic, timer });
  }

  /** A lingering topic made live again for a new listener, if there is one. */
  private revive<K extends keyof Kinds & string>(k: string): Topic<Kinds[K]> | undefined {
    const l = this.lingering.get(k);
    if (!l) return undefined;
    clearTimeout(l.timer);
    this.lingering.delete(k);
    this.topics.set(k, l.topic);
    return l.topic as Topic<Kinds[K]>;
  }

  private open<K extends keyof Kinds & string>(kind: K, id: string, k: string): Topic<Kinds[K]> {
    const listeners = new Set<(item: Kinds[K]) => void>();
    const deliver = (item: Kinds[K]): void => {
      for (const l of listeners) {
        try {
          l(item);
        } catch (err) {
          this.logger.error({ err, kind, id }, 'a hub listener threw');
          this.onListenerError?.(kind, id, err);
        }
      }
      this.onDeliver?.(kind, item, listeners.size);
    };
    const previous = this.closing.get(k);
    const source = this.sources[kind];
    const ready = previous ? previous.then(() => source.subscribe(id, deliver)) : source.subscribe(id, deliver);
    const topic: Topic<Kinds[K]> = { key: k, kind, listeners, ready };
    this.topics.set(k, topic as Topic<unknown>);
    // Rollback: a failed subscription is forgotten at once, so that the next
    // registration (of any session) tries the source again.
    ready.catch(() => {
      if (this.topics.get(k) === topic) this.topics.delete(k);
    });
    return topic;
  }

  private async close(k: string, topic: Topic<unknown>): Promise<void> {
    this.topics.delete(k);
    const done = (async () => {
      let unsubscribe: Unsubscribe;
      try {
        unsubscribe = await topic.ready;
      } catch {
        return; // never subscribed: nothing to undo
      }
      try {
        await unsubscribe();
      } catch (err) {
        this.logger.warn({ err, topic: k }, 'unsubscribing a topic at its source failed');
      }
    })();
    this.closing.set(k, done);
    await done;
    if (this.closing.get(k) === done) this.closing.delete(k);
  }

  /** Unsubscribes every topic at its source and refuses new registrations. Idempotent. */
  async dispose(): Promise<void> {
    this.closed = true;
    await this.closeKinds();
  }

  /**
   * Unsubscribes every topic of these kinds (all kinds when omitted) at its
   * source, lingering ones included, and forgets their listeners: what a
   * service sharing the hub does when it stops, instead of keeping every
   * unsubscribe it handed out. A listener's own unsubscribe afterwards does nothing.
   */
  async closeKinds(kinds?: ReadonlyArray<keyof Kinds & string>): Promise<void> {
    const wanted = (t: Topic<unknown>): boolean => kinds === undefined || kinds.includes(t.kind);
    for (const [k, l] of this.lingering) {
      if (!wanted(l.topic)) continue;
      clearTimeout(l.timer);
      this.lingering.delete(k);
      this.topics.set(k, l.topic);
    }
    const all = [...this.topics.entries()].filter(([, t]) => wanted(t));
    await Promise.all(all.map(([k, t]) => this.close(k, t)));
    await Promise.all([...this.closing.values()]);
  }
}

function key(kind: string, id: string): string {
  return `${kind}\u0000${id}`;
}
