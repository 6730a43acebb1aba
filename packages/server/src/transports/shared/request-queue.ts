import { PresenceError } from 'realtime-message-protocol';

/**
 * The requests of one connection, run one after another in arrival order (a
 * join is applied before the heartbeat sent right after it), with a bound on
 * how many may wait. A request beyond the bound is refused at once with
 * `rate_limited`; it never waits and never runs.
 */
/**
 * The refusal of a request beyond the bound, built without a stack trace:
 * under a flood one is made for every refused request, and capturing the
 * stack took about as long as the heartbeat it refuses (profile of an
 * overloaded server: 3 % of its CPU); its code and message are all a client gets.
 */
function queueFull(limit: number): PresenceError {
  const depth = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new PresenceError('rate_limited', `more than ${limit} requests are waiting on this connection; wait for their answers`);
  } finally {
    Error.stackTraceLimit = depth;
  }
}

/** Where the chain of an idle queue starts: one settled promise for every queue, not one kept per connection. */
const IDLE: Promise<unknown> = Promise.resolve();

export class RequestQueue {
  private tail: Promise<unknown> = IDLE;
  private waiting = 0;
  private readonly settled = (): void => {
    // Nothing queued or running any more: the chain starts over from IDLE.
    if (--this.waiting === 0) this.tail = IDLE;
  };

  constructor(
    /** Most requests queued or running at once. */
    readonly limit: number,
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer >= 1 (got ${String(limit)})`);
  }

  /** Requests queued or running. */
  get pending(): number {
    return this.waiting;
  }

  /**
   * Runs `task` after every earlier one settled. Resolves or rejects with the
   * task's own outcome; rejects with `rate_limited` when the queue is full.
   */
  push<T>(task: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.limit) {
      return Promise.reject(queueFull(this.limit));
    }
    this.waiting++;
    const run = this.tail.then(task);
    // The chain continues whatever the task's outcome; the count drops before
    // the caller's own continuation runs (this one was attached first). One
    // continuation, not finally + catch: this runs for every request.
    this.tail = run.then(this.settled, this.settled);
    return run;
  }

  /**
   * Like {@link push}, but the next request may start as soon as `task`
   * calls `release` (for a publish: once its storage command is issued, which
   * the storage keeps in order), not only once it settled. Requests still
   * start in arrival order and each is answered once.
   */
  pushReleasing<T>(task: (release: () => void) => Promise<T>): Promise<T> {
    if (this.waiting >= this.limit) {
      return Promise.reject(queueFull(this.limit));
    }
    this.waiting++;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const run = this.tail.then(() => task(release));
    void run.then(this.settled, this.settled).then(release);
    this.tail = gate;
    return run;
  }

  /** Resolves once everything queued so far has settled (or, for {@link pushReleasing}, released). */
  drain(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
