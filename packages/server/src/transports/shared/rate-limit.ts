export interface RateLimitOptions {
  /** Sustained events per second per connection. @default 20 */
  eventsPerSecond?: number;
  /** Events allowed at once above the sustained rate. @default 40 */
  burst?: number;
  /** Refused events within `abuseWindowMs` after which the socket is disconnected. @default 100 */
  disconnectAfter?: number;
  /** Window for counting refused events. @default 10000 */
  abuseWindowMs?: number;
}

export type ResolvedRateLimit = Required<RateLimitOptions>;

export function resolveRateLimit(o: RateLimitOptions = {}): ResolvedRateLimit {
  return {
    eventsPerSecond: o.eventsPerSecond ?? 20,
    burst: o.burst ?? 40,
    disconnectAfter: o.disconnectAfter ?? 100,
    abuseWindowMs: o.abuseWindowMs ?? 10_000,
  };
}

/**
 * A token bucket per connection, plus a count of refused events: a client
 * that keeps flooding after being refused is disconnected.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private refused = 0;
  private windowStart: number;

  constructor(
    private readonly opts: ResolvedRateLimit,
    now: number,
  ) {
    this.tokens = opts.burst;
    this.last = now;
    this.windowStart = now;
  }

  /** `ok`: go ahead; `refuse`: answer rate_limited; `abuse`: disconnect. */
  take(now: number): 'ok' | 'refuse' | 'abuse' {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.opts.burst, this.tokens + elapsed * this.opts.eventsPerSecond);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 'ok';
    }
    if (now - this.windowStart > this.opts.abuseWindowMs) {
      this.windowStart = now;
      this.refused = 0;
    }
    this.refused++;
    return this.refused >= this.opts.disconnectAfter ? 'abuse' : 'refuse';
  }
}

/**
 * A budget of bytes per second that may go into debt: a request is allowed
 * while the balance is positive, whatever it costs (so one large answer, such
 * as the snapshot of a big room, always gets through), and its cost is then
 * charged; later requests wait until the refill paid the debt back.
 */
export class ByteBudget {
  private balance: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.balance = burst;
    this.last = now;
  }

  /** Milliseconds until a request is allowed; 0 = now. */
  waitMs(now: number): number {
    this.refill(now);
    return this.balance > 0 ? 0 : Math.ceil(((1 - this.balance) / this.bytesPerSecond) * 1000);
  }

  charge(bytes: number, now: number): void {
    this.refill(now);
    this.balance -= bytes;
  }

  /** True when the balance is back at the burst: the budget is then the same as a new one. */
  full(now: number): boolean {
    this.refill(now);
    return this.balance >= this.burst;
  }

  private refill(now: number): void {
    this.balance = Math.min(this.burst, this.balance + (Math.max(0, now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }
}
