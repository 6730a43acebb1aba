import type { HeartbeatCommand, WriteOutcome } from '../../core/presence/engine.js';
import { MAX_HEARTBEAT_BATCH } from './scripts/heartbeat.js';
import { WriteWindow } from './write-window.js';

interface Waiting {
  cmd: HeartbeatCommand;
  resolve(outcome: WriteOutcome): void;
  reject(err: unknown): void;
}

export interface HeartbeatBatcherOptions {
  /** Sends one heartbeat (its own script call). */
  single(cmd: HeartbeatCommand): Promise<WriteOutcome>;
  /** Sends heartbeats of one group in one call; one outcome per heartbeat, in order. */
  batch(cmds: readonly HeartbeatCommand[]): Promise<WriteOutcome[]>;
  /**
   * What heartbeats must share to go in one call besides their timing (TTL
   * and lookback): on a Cluster the room's hash slot; undefined on a single
   * Redis, where any heartbeats may go together.
   */
  slotOf?: ((cmd: HeartbeatCommand) => number) | undefined;
  /** Most heartbeats per call. @default MAX_HEARTBEAT_BATCH */
  max?: number;
  /**
   * Least time between two flushes (ms): a heartbeat that arrives within
   * `windowMs` of the last flush waits for the rest of the window and goes
   * with whatever else arrived by then. A heartbeat after a quiet spell goes
   * at once. 0: every turn's heartbeats go at that turn's end. @default 0
   */
  windowMs?: number;
}

/**
 * Gathers the heartbeats received in one event-loop turn and sends them in
 * as few script calls as it can (heartbeatBatch): under load, a turn reads
 * many sockets, and one call per heartbeat cost more in encoding, sending,
 * running and answering commands than the heartbeats themselves. The turn's
 * heartbeats go at `setImmediate`, right after the turn's I/O callbacks, so
 * a lone heartbeat waits for nothing. With `windowMs`, flushes are at least
 * that far apart: under a steady stream a call carries a window's heartbeats
 * (fewer commands, writes and script runs per heartbeat, for up to
 * `windowMs` more latency), while a heartbeat after a quiet spell still goes
 * at once. A heartbeat with a patch goes alone, at once (it publishes an
 * update; its script is the one with the patch code).
 *
 * Order: a connection has one heartbeat in flight at a time (its socket's
 * requests run one after another); a leave or disconnect of the connection
 * sent while its heartbeat waits here reaches Redis first, and the
 * heartbeat is then refused by the fencing (`not_joined`), as it would be
 * had it arrived a moment later.
 */
export class HeartbeatBatcher {
  private waiting: Waiting[] = [];
  private scheduled = false;
  private readonly max: number;
  /** Spaces the flushes (`windowMs`); a flush after a quiet spell goes at the turn's end. */
  private readonly window: WriteWindow;

  constructor(private readonly options: HeartbeatBatcherOptions) {
    this.max = Math.max(1, options.max ?? MAX_HEARTBEAT_BATCH);
    this.window = new WriteWindow(Math.max(0, options.windowMs ?? 0));
  }

  add(cmd: HeartbeatCommand): Promise<WriteOutcome> {
    if (cmd.patch) return this.options.single(cmd);
    return new Promise<WriteOutcome>((resolve, reject) => {
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
    const slotOf = this.options.slotOf;
    const first = all[0]!.cmd;
    if (slotOf === undefined && all.every((w) => w.cmd.ttlMs === first.ttlMs && w.cmd.lookbackMs === first.lookbackMs)) return this.sendAll(all);
    const groups = new Map<string, Waiting[]>();
    for (const w of all) {
      const key = `${w.cmd.ttlMs}:${w.cmd.lookbackMs}:${slotOf ? slotOf(w.cmd) : ''}`;
      const group = groups.get(key);
      if (group) group.push(w);
      else groups.set(key, [w]);
    }
    for (const group of groups.values()) this.sendAll(group);
  };

  private sendAll(ws: Waiting[]): void {
    for (let i = 0; i < ws.length; i += this.max) this.send(ws.length <= this.max ? ws : ws.slice(i, i + this.max));
  }

  private send(ws: Waiting[]): void {
    if (ws.length === 1) {
      const w = ws[0]!;
      this.options.single(w.cmd).then(w.resolve, w.reject);
      return;
    }
    let sent: Promise<WriteOutcome[]>;
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
