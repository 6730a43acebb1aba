import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { UserId } from 'realtime-message-protocol';
import { effective, nextDeadline, toRecord, type StatusState } from '../../core/status/model.js';
import type { StatusCommand, StatusFeedItem, StatusStore, StatusWriteResult, SweepCommand, SweepResult } from '../../core/status/store.js';
import { applyDue, applyWrite, sameEffective } from '../../core/status/transitions.js';
import { silentLogger, type Logger } from '../../core/shared/logger.js';
import { isNatsUnavailable, isWrongLastSequence, StatusLinkDownError } from './errors.js';
import { NatsStatusFeed, type NatsFeedState } from './feed.js';
import { applyMark, decodeRecord, encodeRecord, eventRevision, keyOf, type StoredRecord } from './record.js';
import { checkBucket, openBucket } from './bucket.js';

export interface NatsStatusStoreOptions {
  /** The region's own NATS server (hub or leaf), as `NATS_URL`: `nats://host:port`, several comma-separated. Ignored with `connection`. */
  servers?: string | string[];
  /** A connection to use instead of `servers` (not closed by the store). */
  connection?: NatsConnection;
  /** The JetStream domain that holds the bucket (`NATS_HUB_DOMAIN`); unset: the JetStream of the server connected to. */
  hubDomain?: string;
  /** `NATS_BUCKET`: the KV bucket, created on the hub with the settings below if missing. @default 'rm_status' */
  bucket?: string;
  /** A user's record is dropped this long after its last write (the bucket's `ttl`); then the user reads as never seen. @default 30 days */
  retentionMs?: number;
  /** How long the mark of an ended presence connection is kept (late or repeated events of it are ignored). @default 600000 */
  connRetentionMs?: number;
  /** Timeout of one JetStream request (a read, a write, the link probe). @default 2000 */
  requestTimeoutMs?: number;
  /** Period of the link probe: a lost hub is reported (stale reads) within about this plus `requestTimeoutMs`. @default 1000 */
  probeIntervalMs?: number;
  /** Replicas of a bucket the store creates (1, 3 or 5: the hub's cluster size). @default 1 */
  replicas?: number;
  /** Compare-and-set attempts of one write before it fails (concurrent writers of one user retry). @default 50 */
  maxAttempts?: number;
  /** The NATS connection's name (monitoring). @default 'realtime-message-status' */
  name?: string;
  logger?: Logger;
}

const DEFAULT_BUCKET = 'rm_status';
const SWEEP_CONCURRENCY = 64;

/** What one write (or sweep visit) changes: the new value, or nothing. */
type Plan = { write: false; state: StatusState | undefined } | { write: true; record: StoredRecord; state: StatusState | undefined; event: ReturnType<typeof toRecord> | undefined };

/**
 * User status in a NATS JetStream KV bucket on a hub, read and watched from
 * every region's own NATS server (a leaf with its own JetStream domain, or
 * the hub itself). One value per user holds the state, the presence
 * connection marks and the last event's effective pair; every write and
 * every sweep visit is a read-modify-write fenced by the key's revision
 * (compare-and-set), so concurrent writers on any node never lose or reorder
 * an update, and only the write that changes the effective status or message
 * marks itself an event. Every node's watch turns those marks into the feed
 * (see {@link NatsStatusFeed}). See docs/deploy-nats.md.
 *
 * Works on nats-server 2.9 (Debian's): no per-key TTL, no mirrors (a mirror
 * stalls on compare-and-set writes before 2.11.5): reads of a user not in
 * the node's cache go to the hub.
 */
export class NatsStatusStore implements StatusStore {
  readonly kind = 'nats';
  readonly bucket: string;
  private readonly feed: NatsStatusFeed;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly o: Required<Pick<NatsStatusStoreOptions, 'connRetentionMs' | 'maxAttempts'>> & { where: string; logger: Logger },
    probeIntervalMs: number,
    bucket: string,
  ) {
    this.bucket = bucket;
    this.feed = new NatsStatusFeed({ nc, kv, bucket, where: o.where, probeIntervalMs, logger: o.logger });
  }

  /**
   * Connects (unless given a connection), opens or creates the bucket in the
   * hub domain, checks its settings and starts the watch. Fails with a
   * message naming the setting when the server, the domain or the bucket is
   * wrong.
   *
   * @example
   * const store = await NatsStatusStore.open({ servers: 'nats://127.0.0.1:4222', hubDomain: 'hub', bucket: 'rm_status' });
   * const status = new StatusService({ store, nodeId: 'eu-1' });
   */
  static async open(options: NatsStatusStoreOptions): Promise<NatsStatusStore> {
    const logger = options.logger ?? silentLogger;
    const timeout = options.requestTimeoutMs ?? 2_000;
    const bucket = options.bucket ?? DEFAULT_BUCKET;
    const servers = options.servers ?? 'nats://127.0.0.1:4222';
    let nc = options.connection;
    const owns = nc === undefined;
    if (!nc) {
      try {
        nc = await connect({ servers, name: options.name ?? 'realtime-message-status', maxReconnectAttempts: -1, reconnectTimeWait: 1_000, timeout, noAsyncTraces: true });
      } catch (err) {
        throw new Error(`cannot connect to the NATS server at ${String(servers)} (NATS_URL): ${(err as Error).message}`, { cause: err });
      }
    }
    const domain = options.hubDomain || undefined;
    const where = domain ? `the JetStream domain "${domain}" (NATS_HUB_DOMAIN)` : 'the JetStream of the NATS server';
    try {
      const js = jetstream(nc, { domain, timeout });
      const jsm = await jetstreamManager(nc, { domain, timeout, checkAPI: false });
      const retentionMs = options.retentionMs ?? 30 * 24 * 3_600_000;
      const kv = await openBucket(new Kvm(js), bucket, { retentionMs, replicas: options.replicas ?? 1, where });
      await checkBucket(kv, bucket, retentionMs);
      const store = new NatsStatusStore(nc, owns, kv, jsm, { connRetentionMs: options.connRetentionMs ?? 600_000, maxAttempts: options.maxAttempts ?? 50, where, logger }, options.probeIntervalMs ?? 1_000, bucket);
      await store.feed.start();
      return store;
    } catch (err) {
      if (owns) await nc.close().catch(() => undefined);
      throw err;
    }
  }

  /** False while the hub cannot be reached from this node (writes fail, reads are stale). */
  get linkUp(): boolean {
    return this.feed.linkUp;
  }

  /** Users whose revision and deadline this node indexes. */
  get indexedUsers(): number {
    return this.feed.indexedUsers;
  }

  async read(userIds: readonly UserId[]): Promise<Array<StatusState | undefined>> {
    try {
      return await Promise.all(
        userIds.map(async (id) => {
          const key = keyOf(id);
          const e = await this.kv.get(key);
          if (!e || e.operation !== 'PUT') return undefined;
          return decodeRecord(this.bucket, key, e.value).st ?? undefined;
        }),
      );
    } catch (err) {
      throw this.failed(err);
    }
  }

  async write(cmd: StatusCommand): Promise<StatusWriteResult> {
    const r = await this.update(cmd.userId, (cur) => planWrite(cur, cmd, this.o.connRetentionMs));
    return { state: r.state, event: r.write ? r.event : undefined };
  }

  /**
   * Read-modify-write of one user's value, fenced by its revision: when
   * another node wrote in between, the write is planned again on the newer
   * value (a little backoff with jitter), so nothing is lost or applied to an
   * older value.
   */
  private async update(userId: UserId, plan: (cur: { rec: StoredRecord; revision: number } | undefined) => Plan): Promise<Plan & { revision?: number }> {
    const key = keyOf(userId);
    for (let attempt = 1; ; attempt++) {
      let entry: KvEntry | null;
      try {
        entry = await this.kv.get(key);
      } catch (err) {
        throw this.failed(err);
      }
      const cur = entry && entry.operation === 'PUT' ? { rec: decodeRecord(this.bucket, key, entry.value), revision: entry.revision } : undefined;
      const p = plan(cur);
      if (!p.write) return p;
      if (cur) p.record.er = p.record.ev ? undefined : eventRevision(cur.rec, cur.revision);
      try {
        const data = encodeRecord(p.record);
        const revision = entry ? await this.kv.update(key, data, entry.revision) : await this.kv.create(key, data);
        this.feed.setDue(userId, p.record.due);
        return { ...p, revision };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw this.failed(err);
        if (attempt >= this.o.maxAttempts) throw new Error(`status write of key "${key}" lost ${attempt} compare-and-set races in a row; retry`, { cause: err });
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
      }
    }
  }

  private failed(err: unknown): unknown {
    if (isNatsUnavailable(err)) this.feed.noteUnavailable(err);
    return err;
  }

  /**
   * Visits the users whose deadline passed as this node's index knows them;
   * each visit is a compare-and-set, so when every node sweeps the same user
   * only the first changes it and emits its event.
   */
  async sweep(cmd: SweepCommand): Promise<SweepResult> {
    const { users, more } = this.feed.takeDue(cmd.now, cmd.limit);
    const result: SweepResult = { visited: users.length, events: 0, more };
    let failure: { err: unknown } | undefined;
    for (let i = 0; i < users.length; i += SWEEP_CONCURRENCY) {
      await Promise.all(
        users.slice(i, i + SWEEP_CONCURRENCY).map(async (userId) => {
          try {
            const r = await this.update(userId, (cur) => planDue(userId, cur?.rec, cmd));
            if (r.write && r.event) result.events++;
            if (!r.write && r.state) this.feed.setDue(userId, nextDeadline(r.state, cmd.now, cmd.awayAfterMs));
          } catch (err) {
            this.feed.setDue(userId, cmd.now); // visited again next pass
            failure ??= { err };
          }
        }),
      );
    }
    if (failure) throw failure.err;
    return result;
  }

  /** Every write of every user from every node (this node's watch), in revision order; `onState` follows the link to the hub. */
  async subscribe(listener: (item: StatusFeedItem) => void, onState?: (state: NatsFeedState) => void): Promise<() => Promise<void>> {
    const off = this.feed.subscribe(listener, onState);
    return async () => off();
  }

  /** Fails while the hub cannot be reached: a request to the hub's JetStream, fast. */
  async ping(): Promise<void> {
    if (!this.feed.linkUp) throw new StatusLinkDownError(`${this.o.where} cannot be reached from this node since ${new Date(this.feed.linkLostAt ?? Date.now()).toISOString()}`);
    try {
      await this.jsm.getAccountInfo();
    } catch (err) {
      throw this.failed(err);
    }
  }

  isUnavailable(err: unknown): boolean {
    return isNatsUnavailable(err);
  }

  async close(): Promise<void> {
    this.feed.close();
    if (this.ownsConnection) await this.nc.close().catch(() => undefined);
  }
}

/** A fresh value for a user the bucket does not hold. */
function emptyRecord(awayAfterMs: number): StoredRecord {
  return { f: 1, st: null, c: {}, n: 0, ps: 'offline', pm: null, due: null, aw: awayAfterMs };
}

/** A write as {@link applyWrite} defines it, with the connection marks and the change detection. */
function planWrite(cur: { rec: StoredRecord } | undefined, cmd: StatusCommand, connRetentionMs: number): Plan {
  const rec: StoredRecord = cur ? { ...cur.rec, c: { ...cur.rec.c } } : emptyRecord(cmd.awayAfterMs);
  const before = rec.st ?? undefined;
  if (!cur && cmd.type === 'activity') return { write: false, state: undefined };
  const marked = cmd.type === 'conn' && applyMark(rec, cmd.conn, cmd.epoch, cmd.live, cmd.now, connRetentionMs) !== undefined;
  const next = applyWrite(before, cmd, rec.n > 0);
  if (!next && !marked) return { write: false, state: before };
  return commit(cmd.userId, rec, next, cmd.now, cmd.awayAfterMs);
}

/** A sweeper's visit as the memory store defines it: expiries dropped, or a changed effective status (automatic away). */
function planDue(userId: UserId, cur: StoredRecord | undefined, cmd: SweepCommand): Plan {
  if (!cur?.st) return { write: false, state: undefined };
  const next = applyDue(cur.st, cmd.now, cmd.nodeId);
  const eff = effective(next ?? cur.st, cmd.now, cmd.awayAfterMs);
  if (!next && sameEffective(eff, { status: cur.ps, message: cur.pm })) return { write: false, state: cur.st };
  const state = next ?? { ...cur.st, version: cur.st.version + 1, updatedAt: cmd.now, nodeId: cmd.nodeId };
  return commit(userId, { ...cur }, state, cmd.now, cmd.awayAfterMs);
}

function commit(userId: UserId, rec: StoredRecord, next: StatusState | undefined, now: number, awayAfterMs: number): Plan {
  let event: ReturnType<typeof toRecord> | undefined;
  rec.ev = undefined;
  if (next) {
    const eff = effective(next, now, awayAfterMs);
    if (!sameEffective(eff, { status: rec.ps, message: rec.pm })) {
      next.seq += 1;
      rec.ps = eff.status;
      rec.pm = eff.message;
      rec.ev = true;
      // The event as every node's watch will compute it (from the record, at its updatedAt).
      event = toRecord(userId, next, now, awayAfterMs);
    }
    rec.st = next;
    rec.due = nextDeadline(next, now, awayAfterMs);
  }
  rec.aw = awayAfterMs;
  return { write: true, record: rec, state: rec.st ?? undefined, event };
}
