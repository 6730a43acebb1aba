import type { Cluster, Redis } from 'ioredis';
import type { StorageReset } from '../../core/presence/engine.js';
import type { Logger } from '../../core/shared/logger.js';

/** What tells one Redis server's data apart from another's: `INFO server` and `INFO replication`. */
export interface RedisIdentity {
  /** `run_id`: new at every start of the process (so after every restore from RDB/AOF). */
  runId: string;
  /** `master_replid`: the replication history of the data; a replica promoted to master takes a new one. */
  replId: string;
  /** `master_replid2`: the history a promoted replica continued (its old master's `master_replid`), or zeros. */
  replId2: string;
  /** `role`: only a master's data is what the node reads and writes. */
  role: string;
}

/** Reads the identity out of an `INFO` reply; undefined when it lacks `run_id` (not a Redis we understand). */
export function parseIdentity(info: string): RedisIdentity | undefined {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const runId = fields.get('run_id');
  if (!runId) return undefined;
  return { runId, replId: fields.get('master_replid') ?? '', replId2: fields.get('master_replid2') ?? '', role: fields.get('role') ?? 'master' };
}

/**
 * Compares a master's identity with what was known of it (by address) and of
 * the other masters: the reset it reveals, if any. The first identity seen
 * of a master is a baseline, not a reset, unless it continues the history of
 * a known master (a replica promoted in its place).
 */
export function identityChange(known: ReadonlyMap<string, RedisIdentity>, node: string, next: RedisIdentity): StorageReset | undefined {
  const prev = known.get(node);
  if (prev) {
    if (prev.runId === next.runId && prev.replId === next.replId) return undefined;
    // A promoted replica (behind the same address: Sentinel, a proxy) continues the old master's history.
    return { reason: next.replId2 === prev.replId ? 'failover' : 'restart', node };
  }
  for (const other of known.values()) if (other.replId === next.replId2) return { reason: 'failover', node };
  return undefined;
}

export interface IdentityWatcherOptions {
  redis: Redis | Cluster;
  /** Period of the check of every master, or 0 for none (then only reconnects are checked). */
  intervalMs: number;
  onReset: (reset: StorageReset) => void;
  logger: Logger;
}

/**
 * Watches which Redis data the node talks to. A restart (which loads the
 * last RDB/AOF, older than what clients saw) or a failover (to a replica
 * that may lag) keeps the address and lets ioredis reconnect silently, but
 * changes the server's `run_id` or its `master_replid`: this reads both on
 * every (re)connect of a connection to a master and every `intervalMs`, and
 * reports a changed identity once.
 *
 * On a single Redis the check is sent on the connection's `connect` event,
 * before ioredis flushes the commands queued during the outage (they wait for
 * its ready check), so the reset is reported before any reply from the new
 * data reaches a client.
 */
export class IdentityWatcher {
  private readonly known = new Map<string, RedisIdentity>();
  private readonly detach: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: IdentityWatcherOptions) {}

  start(): void {
    const { redis } = this.options;
    if (redis.isCluster) {
      const cluster = redis as Cluster;
      const onNode = (node: Redis): void => this.watchConnects(node, addressOf(node));
      cluster.on('+node', onNode);
      this.detach.push(() => cluster.off('+node', onNode));
      for (const node of cluster.nodes('all')) onNode(node);
    } else {
      this.watchConnects(redis as Redis, 'redis');
    }
    void this.checkAll();
    if (this.options.intervalMs > 0) {
      this.timer = setInterval(() => void this.checkAll(), this.options.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const off of this.detach.splice(0)) off();
  }

  /** Every master now: the periodic check, and the baseline at start. */
  async checkAll(): Promise<void> {
    const { redis } = this.options;
    if (!redis.isCluster) return this.check(redis as Redis, 'redis');
    await Promise.all((redis as Cluster).nodes('master').map((node) => this.check(node, addressOf(node))));
  }

  private watchConnects(node: Redis, key: string): void {
    const onConnect = (): void => void this.check(node, key);
    node.on('connect', onConnect);
    this.detach.push(() => node.off('connect', onConnect));
  }

  private async check(node: Redis, key: string): Promise<void> {
    let info: string;
    try {
      info = await node.info('server', 'replication');
    } catch (err) {
      // Unreachable now: the next connect or period checks again (/ready reports the outage).
      this.options.logger.debug({ err, node: key }, 'redis identity check failed');
      return;
    }
    const next = parseIdentity(info);
    if (this.stopped || !next || next.role !== 'master') return;
    const reset = identityChange(this.known, key, next);
    this.known.set(key, next);
    if (reset) this.options.onReset({ ...reset, node: addressOf(node) });
  }
}

function addressOf(node: Redis): string {
  return `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`;
}
