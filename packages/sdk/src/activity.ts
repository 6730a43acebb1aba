import type { Timers } from './timers.js';

/** DOM events that count as activity for automatic away. */
export const ACTIVITY_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'focus'] as const;

/** Something that emits DOM-like events: `window`, `document`, an element. */
export interface ActivityTarget {
  addEventListener(type: string, listener: () => void, options?: { passive?: boolean }): void;
  removeEventListener(type: string, listener: () => void): void;
}

/**
 * Reports activity at most once per `intervalMs`: the first report of a
 * quiet period goes out at once, later ones within the interval are merged
 * into one sent when it ends (so the last activity is never lost). The
 * server needs only one report per `STATUS_AWAY_AFTER_MS`, so an interval
 * well below it (the default 30 s, against minutes) keeps a user online with
 * one tiny event per interval however busy the page is.
 */
export class ActivityThrottle {
  private lastSent = -Infinity;
  private pending: unknown;

  constructor(
    private readonly send: () => void,
    private readonly intervalMs: number,
    private readonly timers: Timers,
    private readonly now: () => number = Date.now,
  ) {}

  report(): void {
    if (this.pending !== undefined) return;
    const wait = this.lastSent + this.intervalMs - this.now();
    if (wait <= 0) return this.flush();
    this.pending = this.timers.setTimeout(() => {
      this.pending = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    this.lastSent = this.now();
    this.send();
  }

  dispose(): void {
    if (this.pending !== undefined) this.timers.clearTimeout(this.pending);
    this.pending = undefined;
  }
}
