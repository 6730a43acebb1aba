/**
 * The per-client limit of the status routes: a fixed window of `max`
 * requests per `windowMs`, counted per client key, for at most `maxClients`
 * clients (the least recently seen beyond it is forgotten and starts
 * afresh). Synchronous and allocation-free for a client already held: it
 * runs on every status request, the hottest of which answer from memory in
 * a few microseconds.
 */
export interface RateWindow {
  /** Requests counted in the current window, this one included. */
  count: number;
  /** When the current window started (ms). */
  start: number;
}

export class ClientRateLimiter {
  /** Clients by key, least recently seen first (a key seen again moves to the end). */
  private readonly clients = new Map<string, RateWindow>();
  /** The most recently seen key: already last in {@link clients}, so seeing it again moves nothing. */
  private last: string | undefined;
  /** The time of the latest {@link hit}. */
  private now = 0;

  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly maxClients: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Counts one request of `key`; the returned window is live (read it before the next call). */
  hit(key: string): RateWindow {
    const now = (this.now = this.clock());
    let w = this.clients.get(key);
    if (w === undefined) {
      w = { count: 0, start: now };
      this.clients.set(key, w);
      if (this.clients.size > this.maxClients) this.clients.delete(this.clients.keys().next().value!);
    } else if (key !== this.last) {
      this.clients.delete(key);
      this.clients.set(key, w);
    }
    this.last = key;
    if (w.start + this.windowMs <= now) {
      w.count = 0;
      w.start = now;
    }
    w.count++;
    return w;
  }

  /** Whole seconds from the latest {@link hit} until `w`'s window restarts (at least 1 while it runs). */
  resetInSeconds(w: RateWindow): number {
    return Math.max(0, Math.ceil((w.start + this.windowMs - this.now) / 1_000));
  }
}

/** `3 seconds`, `1 minute`, `2 hours`: a wait for a human. */
export function humanSeconds(seconds: number): string {
  const unit = (n: number, name: string) => `${n} ${name}${n === 1 ? '' : 's'}`;
  if (seconds < 60) return unit(seconds, 'second');
  if (seconds < 3_600) return unit(Math.round(seconds / 60), 'minute');
  return unit(Math.round(seconds / 3_600), 'hour');
}
