import { WriteWindow } from './write-window.js';

interface Waiting<C, R> {
  cmd: C;
  resolve(outcome: R): void;
  reject(err: unknown): void;
}

export interface WriteBatcherOptions<C, R> {
  /** Sends one command (its own script call). */
  single(cmd: C): Promise<R>;
  /** Sends commands of one group in one call; one outcome per command, in order. */
  batch(cmds: readonly C[]): Promise<R[]>;
  /**
   * What commands must share to go in one call: on a Cluster the hash slot
   * (every key of a call must be in one slot), plus whatever the batch script
   * sends once for all; undefined when any may go together.
   */
  groupOf?: ((cmd: C) => string) | undefined;
  /** A cheap check that a flush's commands are all of one group (no grouping then). */
  uniform?: ((cmds: ReadonlyArray<{ cmd: C }>) => boolean) | undefined;
  /** A command that goes alone, at once (e.g. a heartbeat with a patch: another script). */
  alone?: ((cmd: C) => boolean) | undefined;
  /** Most commands per call: bounds the time one call holds Redis. */
  max: number;
  /**
   * Least time between two flushes (ms): a command that arrives within
   * `windowMs` of the last flush waits for the rest of the window and goes
   * with whatever else arrived by then. A command after a quiet spell goes
   * at once. 0: every turn's commands go at that turn's end. @default 0
   */
  windowMs?: number;
}

/**
 * Gathers the writes of one kind received in one event-loop turn (or one
 * window) and sends them in as few script calls as it can: under load, one
 * call per write cost more in encoding, sending, running and answering
 * commands than the writes themselves. The turn's writes go at
 * `setImmediate`, right after the turn's I/O callbacks, so a lone write
 * waits for nothing. With `windowMs`, flushes are at least that far apart:
 * under a steady stream a call carries a window's writes (fewer commands,
 * socket writes and script runs per write, for up to `windowMs` more
 * latency), while a write after a quiet spell still goes at once.
 *
 * Used for heartbeats (heartbeatBatch: a connection has one heartbeat in
 * flight at a time, and a leave sent while its heartbeat waits here reaches
 * Redis first, so the heartbeat is refused by the fencing, as it would be
 * had it arrived a moment later) and for the status store's connection
 * changes (order-free per connection by their marks).
 */
export class WriteBatcher<C, R> {
  private waiting: Array<Waiting<C, R>> = [];
  private scheduled = false;
  private readonly max: number;
  /** Spaces the flushes (`windowMs`); a flush after a quiet spell goes at the turn's end. */
  private readonly window: WriteWindow;

  constructor(private readonly options: WriteBatcherOptions<C, R>) {
    this.max = Math.max(1, options.max);
    this.window = new WriteWindow(Math.max(0, options.windowMs ?? 0));
  }

  add(cmd: C): Promise<R> {
    if (this.options.alone?.(cmd)) return this.options.single(cmd);
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ cmd, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        const later = this.window.wait();
        if (later) void later.then(this.flush);
        else setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const all = this.waiting;
    this.waiting = [];
    const groupOf = this.options.groupOf;
    if (groupOf === undefined || this.options.uniform?.(all)) return this.sendAll(all);
    const groups = new Map<string, Array<Waiting<C, R>>>();
    for (const w of all) {
      const key = groupOf(w.cmd);
      const group = groups.get(key);
      if (group) group.push(w);
      else groups.set(key, [w]);
    }
    for (const group of groups.values()) this.sendAll(group);
  };

  private sendAll(ws: Array<Waiting<C, R>>): void {
    for (let i = 0; i < ws.length; i += this.max) this.send(ws.length <= this.max ? ws : ws.slice(i, i + this.max));
  }

  private send(ws: Array<Waiting<C, R>>): void {
    if (ws.length === 1) {
      const w = ws[0]!;
      this.options.single(w.cmd).then(w.resolve, w.reject);
      return;
    }
    let sent: Promise<R[]>;
    try {
      sent = this.options.batch(ws.map((w) => w.cmd));
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (outcomes) => {
        for (let i = 0; i < ws.length; i++) ws[i]!.resolve(outcomes[i]!);
      },
      (err: unknown) => {
        for (const w of ws) w.reject(err);
      },
    );
  }
}
