import type { RedisClient } from '../engines/redis/backend.js';
import { silentLogger, type Logger } from '../core/shared/logger.js';

/** The settings that every node sharing presence must agree on, and where they come from. */
export interface ClusterSettings {
  /** REDIS_KEY_PREFIX */
  prefix: string;
  /** PRESENCE_TTL_MS */
  ttlMs: number;
  /** PRESENCE_DISCONNECT_GRACE_MS */
  graceMs: number;
  /** PRESENCE_REAPER_LOOKBACK_MS */
  lookbackMs: number;
}

const SETTING_NAMES: Record<Exclude<keyof ClusterSettings, 'prefix'>, string> = {
  ttlMs: 'PRESENCE_TTL_MS',
  graceMs: 'PRESENCE_DISCONNECT_GRACE_MS',
  lookbackMs: 'PRESENCE_REAPER_LOOKBACK_MS',
};

interface Entry extends ClusterSettings {
  id: string;
  startedAt: number;
  /** Redis time of the entry's last refresh. */
  seenAt: number;
}

/** One hash for every node on a Redis, whatever its key prefix (so that a different prefix is seen too). */
export const CLUSTER_REGISTRY_KEY = 'realtime-message:nodes';

export interface ClusterCheckOptions {
  redis: RedisClient;
  /** This node's id in the registry (unique per process). */
  id: string;
  settings: ClusterSettings;
  /** `strict`: a node that disagrees with older ones, or whose clock is off, is not ready; `warn`: log only. */
  mode: 'strict' | 'warn';
  logger?: Logger;
  /** @default 5000 */
  intervalMs?: number;
  /** This node's clock. @default Date.now */
  now?: () => number;
  /** Called whenever the list of problems that make this node unready changes. */
  onChange?: (problems: readonly string[]) => void;
}

/**
 * Detects a misconfigured node (SPEC §10, docs/deploy.md): every node
 * publishes its presence settings in one Redis hash and compares them with
 * the other live nodes, and compares its clock with Redis's. A node that
 * started later than nodes with the same prefix but other timings, or whose
 * clock is far off, reports it at start and (strict) answers `/ready` with
 * 503; older nodes only warn, so that a wrong newcomer never takes a working
 * cluster down. Other prefixes on the same Redis are reported with a warning
 * (two deployments may share a Redis on purpose).
 */
export class ClusterCheck {
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly startedAt: number;
  private timer: NodeJS.Timeout | undefined;
  private current: readonly string[] = [];
  private readonly warned = new Set<string>();
  private stopped = false;

  constructor(private readonly options: ClusterCheckOptions) {
    this.logger = options.logger ?? silentLogger;
    this.intervalMs = options.intervalMs ?? 5_000;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  /** The problems that make this node unready (strict mode), as last computed. */
  get problems(): readonly string[] {
    return this.current;
  }

  /** Largest clock difference with Redis that is tolerated: a quarter of the TTL, between 1 and 5 s. */
  get maxSkewMs(): number {
    return Math.min(5_000, Math.max(1_000, Math.floor(this.options.settings.ttlMs / 4)));
  }

  /** Runs a first round now (logging what it finds), then one every interval. */
  async start(): Promise<void> {
    await this.round().catch((err: unknown) => this.logger.warn({ err }, 'cluster check: Redis could not be read; trying again'));
    if (this.stopped) return;
    this.timer = setInterval(() => void this.round().catch(() => undefined), this.intervalMs);
    this.timer.unref();
  }

  /** Stops and removes this node from the registry (best effort). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.options.redis.hdel(CLUSTER_REGISTRY_KEY, this.options.id).catch(() => undefined);
  }

  /** One comparison: refresh this node's entry, read the others, compare. Returns the problems. */
  async round(): Promise<readonly string[]> {
    const { redis, settings, id } = this.options;
    const before = this.now();
    const [sec, usec] = (await redis.time()) as [string | number, string | number];
    const after = this.now();
    const redisNow = Number(sec) * 1_000 + Math.floor(Number(usec) / 1_000);
    const skew = Math.round((before + after) / 2 - redisNow);
    const own: Entry = { id, ...settings, startedAt: this.startedAt, seenAt: redisNow };
    await redis.hset(CLUSTER_REGISTRY_KEY, id, JSON.stringify(own));
    const all = await redis.hgetall(CLUSTER_REGISTRY_KEY);
    const stale: string[] = [];
    const others: Entry[] = [];
    for (const [field, raw] of Object.entries(all)) {
      if (field === id) continue;
      let e: Entry;
      try {
        e = JSON.parse(raw) as Entry;
      } catch {
        stale.push(field);
        continue;
      }
      // Entries not refreshed for three intervals belong to nodes that are gone.
      if (typeof e.seenAt !== 'number' || e.seenAt < redisNow - 3 * this.intervalMs) stale.push(field);
      else others.push(e);
    }
    if (stale.length > 0) await redis.hdel(CLUSTER_REGISTRY_KEY, ...stale);
    if (this.stopped) return this.current;

    const problems: string[] = [];
    if (Math.abs(skew) > this.maxSkewMs) {
      problems.push(`this node's clock is ${skew > 0 ? 'ahead of' : 'behind'} Redis's by ${Math.abs(skew)} ms (at most ${this.maxSkewMs} ms is tolerated): presence expiry would be wrong; synchronise the clock (NTP)`);
    }
    // Other prefixes: one line for those not reported yet (two deployments may share a Redis on purpose).
    const prefixes = [...new Set(others.filter((o) => o.prefix !== settings.prefix && !this.warned.has(`prefix:${o.prefix}`)).map((o) => o.prefix))];
    if (prefixes.length > 0) {
      for (const p of prefixes) this.warned.add(`prefix:${p}`);
      const shown = prefixes.slice(0, 5).map((p) => `'${p}'`).join(', ') + (prefixes.length > 5 ? ` and ${prefixes.length - 5} more` : '');
      this.logger.warn({ check: 'cluster', prefixes: prefixes.slice(0, 20), ours: settings.prefix }, `cluster check: other nodes on this Redis use REDIS_KEY_PREFIX ${shown} (this node: '${settings.prefix}'); nodes with different prefixes do not share presence, status or channels: if they serve the same clients, give them the same prefix`);
    }
    for (const other of others) {
      if (other.prefix !== settings.prefix) continue;
      const diffs = (Object.keys(SETTING_NAMES) as Array<keyof typeof SETTING_NAMES>).filter((k) => other[k] !== settings[k]).map((k) => `${SETTING_NAMES[k]}=${settings[k]} here, ${other[k]} on node ${other.id}`);
      if (diffs.length === 0) continue;
      const newer = this.startedAt > other.startedAt || (this.startedAt === other.startedAt && id > other.id);
      const message = `settings differ from another node with REDIS_KEY_PREFIX=${settings.prefix}: ${diffs.join('; ')}; every node must use the same presence timings`;
      if (newer) problems.push(message);
      else this.warnOnce(`diff:${other.id}:${diffs.join()}`, { node: other.id }, `${message} (that node started later: it reports itself not ready)`);
    }
    this.update(this.options.mode === 'strict' ? problems : []);
    for (const p of problems) this.warnOnce(`problem:${p.replace(/\d+ ms/g, '')}`, {}, p, this.options.mode === 'strict' ? 'error' : 'warn');
    return this.current;
  }

  private update(problems: string[]): void {
    const changed = problems.length !== this.current.length || problems.some((p, i) => p !== this.current[i]);
    if (!changed) return;
    if (problems.length === 0 && this.current.length > 0) this.logger.info({ check: 'cluster' }, 'cluster check: the problems are gone; /ready reflects the backends again');
    this.current = problems;
    this.options.onChange?.(problems);
  }

  private warnOnce(key: string, fields: Record<string, unknown>, message: string, level: 'warn' | 'error' = 'warn'): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger[level]({ check: 'cluster', ...fields }, `cluster check: ${message}`);
  }
}
