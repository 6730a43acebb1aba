import type { Logger } from './logger.js';

export interface RetryOptions {
  logger: Logger;
  /** What is being started, for the log lines ("user status feed"). */
  what: string;
  /** Waits between attempts; the last one repeats until it works or is stopped. @default [1000, 2000, 5000, 10000] */
  delaysMs?: readonly number[];
}

export interface Retrying<T> {
  /** Settles with the first successful result, or `undefined` once stopped before one. Never rejects. */
  readonly result: Promise<T | undefined>;
  /** Stops retrying (an attempt in flight finishes; its result is still handed to `result`). */
  stop(): void;
}

/**
 * Runs `attempt` until it succeeds, waiting `delaysMs` between failures: for
 * background work a node needs but cannot do while its storage is down at
 * start (following a feed), which must start by itself once the storage is
 * back rather than stay off until a restart. The first failure is logged as
 * a warning with what is lost meanwhile, later ones at debug, and the
 * success after failures at info.
 *
 * @example
 * const feed = retryInBackground(() => status.start(), { logger, what: 'user status feed' });
 * // on shutdown: feed.stop(); await feed.result;
 */
export function retryInBackground<T>(attempt: () => Promise<T>, options: RetryOptions): Retrying<T> {
  const delays = options.delaysMs ?? [1_000, 2_000, 5_000, 10_000];
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const run = async (): Promise<T | undefined> => {
    for (let failures = 0; ; failures++) {
      try {
        const value = await attempt();
        if (failures > 0) options.logger.info({ attempts: failures + 1 }, `${options.what} started after ${failures} failed attempt(s)`);
        return value;
      } catch (err) {
        if (stopped) return undefined;
        const delay = delays[Math.min(failures, delays.length - 1)] ?? 1_000;
        if (failures === 0) options.logger.warn({ err, retryInMs: delay }, `${options.what} could not start; retrying in the background until it does`);
        else options.logger.debug({ err, attempt: failures + 1, retryInMs: delay }, `${options.what} could not start yet`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, delay);
          timer.unref();
        });
        if (stopped) return undefined;
      }
    }
  };
  return {
    result: run(),
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
    },
  };
}
