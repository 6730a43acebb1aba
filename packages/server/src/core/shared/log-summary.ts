import type { Logger } from './logger.js';

/**
 * Logs the first occurrence of each kind of repeated event, then at most one
 * summary line per interval with how many more there were: a flood or an
 * outage must not turn into a flood of identical log lines.
 */
export class LogSummary {
  private readonly counts = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly what: string,
    private readonly intervalMs = 5_000,
  ) {}

  /** Records one event of `kind`; the first is logged with `details`, the rest are counted. */
  note(kind: string, details: Record<string, unknown>): void {
    const n = this.counts.get(kind);
    if (n === undefined) {
      this.counts.set(kind, 0);
      this.logger.warn({ kind, ...details }, `${this.what}: ${kind}`);
      this.schedule();
      return;
    }
    this.counts.set(kind, n + 1);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const repeated = [...this.counts].filter(([, n]) => n > 0);
      this.counts.clear();
      if (repeated.length > 0) {
        this.logger.warn({ repeated: Object.fromEntries(repeated), intervalMs: this.intervalMs }, `${this.what}: more in the last interval`);
        // Keep summarising while it goes on: the next event of a kind counts, not logs.
        for (const [kind] of repeated) this.counts.set(kind, 0);
        this.schedule();
      }
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
