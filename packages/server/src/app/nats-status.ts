import type { UserId } from 'realtime-message-protocol';
import type { HealthCheck } from '../core/shared/health.js';
import type { Logger } from '../core/shared/logger.js';
import type { StatusState } from '../core/status/model.js';
import type { StatusCommand, StatusFeedItem, StatusFeedState, StatusStore, StatusWriteResult, SweepCommand, SweepResult } from '../core/status/store.js';
import { isNatsUnavailable, StatusLinkDownError } from '../engines/nats/errors.js';
import type { NatsStatusStore, NatsStatusStoreOptions } from '../engines/nats/status-store.js';

/**
 * The NATS status store of the standalone server (`STATUS_STORE=nats`),
 * usable at once although opening it is asynchronous: until it is open (and
 * while the NATS server cannot be reached at start, retried with backoff)
 * calls fail with `unavailable`, the feed is reported interrupted and
 * `/ready` answers 503. A setting that is wrong (domain, bucket) fails
 * {@link waitOpen}, which `listen()` turns into an exit with the message.
 */
export class DeferredNatsStatusStore implements StatusStore {
  readonly kind = 'nats';
  readonly health: HealthCheck;
  private inner: NatsStatusStore | undefined;
  private lastError: Error | undefined;
  private fatal: Error | undefined;
  private closed = false;
  private readonly opened: Promise<NatsStatusStore | undefined>;
  private readonly subscriptions = new Set<{ listener: (item: StatusFeedItem) => void; onState?: ((s: StatusFeedState) => void) | undefined; off?: () => Promise<void> }>();

  constructor(
    private readonly options: NatsStatusStoreOptions & { logger: Logger },
    private readonly retry = { firstMs: 500, maxMs: 10_000 },
  ) {
    this.health = { name: 'nats', check: () => this.ping() };
    this.opened = this.openLoop();
  }

  private async openLoop(): Promise<NatsStatusStore | undefined> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        // Loaded only here: servers without STATUS_STORE=nats never load nats.js.
        const { NatsStatusStore } = await import('../engines/nats/status-store.js');
        const store = await NatsStatusStore.open(this.options);
        if (this.closed) {
          await store.close();
          return undefined;
        }
        this.inner = store;
        this.lastError = undefined;
        this.options.logger.info({ servers: this.options.servers, domain: this.options.hubDomain, bucket: store.bucket }, 'user status: NATS KV bucket open');
        for (const s of this.subscriptions) await this.attach(s);
        return store;
      } catch (err) {
        this.lastError = err as Error;
        if (!isNatsUnavailable(err) && !/cannot connect|no JetStream answers/.test((err as Error).message)) {
          this.fatal = err as Error;
          this.options.logger.error({ err }, 'user status: the NATS status store cannot be used');
          return undefined;
        }
        const wait = Math.min(this.retry.maxMs, this.retry.firstMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        if (attempt === 0) this.options.logger.warn({ err: (err as Error).message }, 'user status: NATS not reachable at start; retrying (status answers unavailable meanwhile)');
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
    return undefined;
  }

  /**
   * Waits up to `timeoutMs` for the first open. Rejects when a setting is
   * wrong (the store will never open); resolves otherwise, also while NATS
   * is still being retried.
   */
  async waitOpen(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.opened, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    if (this.fatal) throw this.fatal;
  }

  private get store(): NatsStatusStore {
    if (this.inner) return this.inner;
    throw new StatusLinkDownError(`the NATS status store is not open (NATS_URL=${String(this.options.servers)}): ${this.fatal?.message ?? this.lastError?.message ?? 'opening'}`);
  }

  async read(userIds: readonly UserId[]): Promise<Array<StatusState | undefined>> {
    return this.store.read(userIds);
  }

  async write(cmd: StatusCommand): Promise<StatusWriteResult> {
    return this.store.write(cmd);
  }

  async sweep(cmd: SweepCommand): Promise<SweepResult> {
    return this.store.sweep(cmd);
  }

  private async attach(s: { listener: (item: StatusFeedItem) => void; onState?: ((st: StatusFeedState) => void) | undefined; off?: () => Promise<void> }): Promise<void> {
    s.off = await this.inner!.subscribe(s.listener, s.onState);
    // Until now the feed delivered nothing: report it as resumed (the service empties its cache).
    s.onState?.('resumed');
  }

  async subscribe(listener: (item: StatusFeedItem) => void, onState?: (state: StatusFeedState) => void): Promise<() => Promise<void>> {
    const s: { listener: typeof listener; onState: typeof onState; off?: () => Promise<void> } = { listener, onState };
    this.subscriptions.add(s);
    if (this.inner) s.off = await this.inner.subscribe(listener, onState);
    else onState?.('interrupted');
    return async () => {
      this.subscriptions.delete(s);
      await s.off?.();
    };
  }

  async ping(): Promise<void> {
    await this.store.ping();
  }

  isUnavailable(err: unknown): boolean {
    return isNatsUnavailable(err);
  }

  async close(): Promise<void> {
    // An open in progress closes what it opened when it finishes (openLoop checks `closed`).
    this.closed = true;
    await this.inner?.close();
  }
}
