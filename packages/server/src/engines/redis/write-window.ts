/**
 * Spaces a kind of Redis writes at least `windowMs` apart, so that under a
 * steady stream each goes out with the others of its window: a caller within
 * the window of the last release waits for the window's end, and all the
 * callers of a window are released in the same event-loop turn, where
 * ioredis's auto-pipeline sends their commands in one write (and Redis
 * answers them in one read). A caller after a quiet spell goes at once. For
 * writes that can wait a few milliseconds (the status bridge's connection
 * changes; the heartbeat batches, `REDIS_HEARTBEAT_WINDOW_MS`), where each
 * socket write and read costs more than the command it carries.
 */
export class WriteWindow {
  private waiting: Array<() => void> = [];
  private scheduled = false;
  private lastRelease = -Infinity;

  /** `windowMs` 0: no window, every caller goes at once. */
  constructor(private readonly windowMs: number) {}

  /** Undefined: go now; otherwise a promise that resolves when this caller's window ends. */
  wait(): Promise<void> | undefined {
    if (this.windowMs <= 0) return undefined;
    const now = performance.now();
    if (!this.scheduled && now - this.lastRelease >= this.windowMs) {
      this.lastRelease = now;
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      if (!this.scheduled) {
        this.scheduled = true;
        setTimeout(this.release, Math.max(0, this.lastRelease + this.windowMs - now));
      }
    });
  }

  private readonly release = (): void => {
    this.scheduled = false;
    this.lastRelease = performance.now();
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  };
}
