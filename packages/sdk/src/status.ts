import {
  STATUS_EVENTS,
  STATUS_SOCKET_LIMITS,
  type StatusRecord,
  type StatusSubscribeAck,
  type StatusUnsubscribeAck,
} from 'realtime-message-protocol/core';
import { Emitter } from './emitter.js';
import { RealtimeError } from './errors.js';

/** What the status part of the SDK needs from its connection (implemented by the client). */
export interface StatusHost {
  connected(): boolean;
  connect(): Promise<void>;
  request<T>(event: string, payload: unknown): Promise<T>;
}

export interface StatusWatchEvents {
  /** A watched user's record changed (an event, a resync after a reconnect, or a write of this client). `previous` is undefined the first time. */
  change: (record: StatusRecord, previous: StatusRecord | undefined) => void;
  /** Every watched user's record was (re)read from the server: after `watchStatus` and after every reconnect. */
  sync: () => void;
  /** A resync after a reconnect failed; the watch retries at the next reconnect. */
  error: (error: RealtimeError) => void;
}

/** True when `next` should replace `held`: a newer change, or (after a resync) a different record. */
function newer(next: StatusRecord, held: StatusRecord | undefined, resync: boolean): boolean {
  if (!held) return true;
  if (next.seq > held.seq) return true;
  // A resync answers the truth of now: after a storage reset seq may have gone back.
  return resync && (next.seq !== held.seq || next.status !== held.status || next.message !== held.message || next.lastSeen !== held.lastSeen);
}

/**
 * A live map of some users' status (SPEC §7): filled by `status:subscribe`,
 * kept current by `status:event`, read again after every reconnect. Records
 * are whole (each event carries the full record), so the map only keeps, per
 * user, the record with the highest `seq`; an event that raced the
 * subscription's answer cannot put an older record back.
 *
 * @example
 * const people = await client.watchStatus(['ada', 'grace']);
 * people.on('change', (r) => render(r.userId, r.status, r.message));
 * people.get('ada')?.status; // 'online'
 * await people.close();
 */
export class StatusWatch {
  private readonly bus = new Emitter<StatusWatchEvents>();
  private readonly records = new Map<string, StatusRecord>();
  private closed = false;

  /** @internal created by {@link StatusWatches.watch} */
  constructor(
    private readonly owner: StatusWatches,
    readonly userIds: readonly string[],
  ) {}

  /** The user's record, once read. */
  get(userId: string): StatusRecord | undefined {
    return this.records.get(userId);
  }

  /** Every record held, in the order of `userIds`. */
  all(): StatusRecord[] {
    return this.userIds.map((id) => this.records.get(id)).filter((r): r is StatusRecord => r !== undefined);
  }

  on<K extends keyof StatusWatchEvents>(event: K, listener: StatusWatchEvents[K]): () => void {
    return this.bus.on(event, listener);
  }

  off<K extends keyof StatusWatchEvents>(event: K, listener: StatusWatchEvents[K]): void {
    this.bus.off(event, listener);
  }

  /** @internal */
  apply(record: StatusRecord, resync = false): void {
    if (this.closed) return;
    const held = this.records.get(record.userId);
    if (!newer(record, held, resync)) return;
    this.records.set(record.userId, record);
    this.bus.emit('change', record, held);
  }

  /** @internal */
  synced(): void {
    if (!this.closed) this.bus.emit('sync');
  }

  /** @internal */
  failed(error: RealtimeError): void {
    if (!this.closed) this.bus.emit('error', error);
  }

  /** Stops watching (the server stops sending these users unless another watch of this client holds them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.bus.clear();
    await this.owner.release(this);
  }
}

/**
 * The client's status watches: one server subscription per user however
 * many watches hold it (reference counts), events routed to every watch of
 * the user, and every watch read again after a reconnect.
 */
export class StatusWatches {
  private readonly watches = new Set<StatusWatch>();
  /** The watches holding each user: the server subscription lives while this is not empty. */
  private readonly byUser = new Map<string, Set<StatusWatch>>();

  constructor(private readonly host: StatusHost) {}

  /** Starts watching `userIds`; resolves once their records are in the map. */
  async watch(userIds: readonly string[]): Promise<StatusWatch> {
    if (!Array.isArray(userIds) || userIds.length === 0) throw new RealtimeError('invalid_payload', 'watchStatus needs a non-empty list of user ids');
    const ids = [...new Set(userIds)];
    const w = new StatusWatch(this, ids);
    // Registered before the request, so events that arrive before its answer are kept.
    this.watches.add(w);
    for (const id of ids) {
      let set = this.byUser.get(id);
      if (!set) this.byUser.set(id, (set = new Set()));
      set.add(w);
    }
    try {
      await this.host.connect();
      await this.read(w, false);
    } catch (err) {
      await this.release(w);
      throw err;
    }
    return w;
  }

  /** A pushed `status:event`. */
  event(record: StatusRecord): void {
    const set = this.byUser.get(record.userId);
    if (set) for (const w of set) w.apply(record);
  }

  /** A record this client wrote (`setStatus`): watches of the user see it at once. */
  wrote(record: StatusRecord): void {
    this.event(record);
  }

  /** The socket is connected again: the server forgot the subscriptions, and events may have been missed. */
  connected(): void {
    for (const w of this.watches) {
      this.read(w, true).catch((err: unknown) => w.failed(err instanceof RealtimeError ? err : new RealtimeError('internal', String(err))));
    }
  }

  /** @internal */
  async release(w: StatusWatch): Promise<void> {
    if (!this.watches.delete(w)) return;
    const gone: string[] = [];
    for (const id of w.userIds) {
      const set = this.byUser.get(id);
      set?.delete(w);
      if (set?.size === 0) {
        this.byUser.delete(id);
        gone.push(id);
      }
    }
    if (gone.length === 0 || !this.host.connected()) return;
    for (let i = 0; i < gone.length; i += STATUS_SOCKET_LIMITS.maxIdsPerRequest) {
      const res = await this.host.request<StatusUnsubscribeAck>(STATUS_EVENTS.unsubscribe, { userIds: gone.slice(i, i + STATUS_SOCKET_LIMITS.maxIdsPerRequest) });
      if (!res.ok) throw new RealtimeError(res.error.code, res.error.message);
    }
  }

  /** Subscribes the watch's users (idempotent on the server) and applies their records. */
  private async read(w: StatusWatch, resync: boolean): Promise<void> {
    for (let i = 0; i < w.userIds.length; i += STATUS_SOCKET_LIMITS.maxIdsPerRequest) {
      const res = await this.host.request<StatusSubscribeAck>(STATUS_EVENTS.subscribe, { userIds: w.userIds.slice(i, i + STATUS_SOCKET_LIMITS.maxIdsPerRequest) });
      if (!res.ok) throw new RealtimeError(res.error.code, res.error.message);
      for (const r of res.users) w.apply(r, resync);
    }
    w.synced();
  }

  /** Drops every watch (the client shuts down). */
  dispose(): void {
    this.watches.clear();
    this.byUser.clear();
  }
}
