/** Timer functions the SDK uses; injectable so tests and embedders control time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface BackoffOptions {
  /** Smallest reconnect delay ceiling. @default 500 */
  minDelayMs?: number;
  /** Largest reconnect delay. @default 10000 */
  maxDelayMs?: number;
}

/**
 * Exponential backoff with full jitter: attempt n waits a uniformly random
 * time in [0, min(max, min * 2^n)], so a crowd of clients that lost the same
 * server does not come back in lockstep.
 */
export function backoffDelay(attempt: number, o: Required<BackoffOptions>, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxDelayMs, o.minDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
