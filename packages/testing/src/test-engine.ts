import type { PresenceEvent, RoomId, RoomMessage } from 'realtime-message-protocol';
import {
  MemoryEngine,
  type DisconnectCommand,
  type HeartbeatCommand,
  type JoinCommand,
  type LeaveCommand,
  type PresenceEngine,
  type ReapCommand,
  type RoomFeedItem,
} from 'realtime-message';

export type EngineOpName = 'join' | 'heartbeat' | 'leave' | 'disconnect' | 'snapshot' | 'reap' | 'publish' | 'subscribe';

/**
 * A decorator over any engine (memory by default, or a RedisEngine) with
 * seams for tests: it counts the calls of each operation, records heartbeat
 * commands, can hold an operation until the test releases it, can make the
 * next calls of an operation fail, and counts live room subscriptions. The
 * service and transports under test are the real ones; the test hands this
 * engine to them instead of patching methods of live objects.
 *
 * @example
 * const engine = new TestEngine();
 * await startGateway({ engine });
 * engine.failNext('heartbeat', new Error('boom'));
 */
export class TestEngine implements PresenceEngine {
  readonly kind: string;
  /** Calls of each operation so far (counted on entry, before any hold or failure). */
  readonly calls: Record<EngineOpName, number> = { join: 0, heartbeat: 0, leave: 0, disconnect: 0, snapshot: 0, reap: 0, publish: 0, subscribe: 0 };
  /** Every heartbeat command that reached storage, in call order. */
  readonly heartbeats: HeartbeatCommand[] = [];
  /** Rooms with a live engine subscription, with how many (the Hub keeps it at one per room). */
  readonly subscriptions = new Map<string, number>();
  private readonly gates = new Map<EngineOpName, Promise<void>>();
  private readonly failures = new Map<EngineOpName, { err: Error; times: number }>();

  constructor(readonly inner: PresenceEngine = new MemoryEngine()) {
    this.kind = `test(${inner.kind})`;
  }

  /** Heartbeats of one room that reached storage. */
  heartbeatsOf(roomId: string): HeartbeatCommand[] {
    return this.heartbeats.filter((h) => h.roomId === roomId);
  }

  /** Holds every call of `op` until the returned function is called. */
  hold(op: EngineOpName): () => void {
    let release!: () => void;
    this.gates.set(op, new Promise<void>((r) => (release = r)));
    return () => {
      this.gates.delete(op);
      release();
    };
  }

  /** The next `times` calls of `op` reject with `err` without reaching the inner engine. */
  failNext(op: EngineOpName, err: Error, times = 1): void {
    this.failures.set(op, { err, times });
  }

  private async enter(op: EngineOpName): Promise<void> {
    this.calls[op]++;
    await this.gates.get(op);
    const f = this.failures.get(op);
    if (f) {
      if (--f.times <= 0) this.failures.delete(op);
      throw f.err;
    }
  }

  async join(cmd: JoinCommand) {
    await this.enter('join');
    return this.inner.join(cmd);
  }
  async heartbeat(cmd: HeartbeatCommand) {
    await this.enter('heartbeat');
    this.heartbeats.push(cmd);
    return this.inner.heartbeat(cmd);
  }
  async leave(cmd: LeaveCommand) {
    await this.enter('leave');
    return this.inner.leave(cmd);
  }
  async disconnect(cmd: DisconnectCommand) {
    await this.enter('disconnect');
    return this.inner.disconnect(cmd);
  }
  async snapshot(roomId: RoomId, now: number) {
    await this.enter('snapshot');
    return this.inner.snapshot(roomId, now);
  }
  async reap(cmd: ReapCommand) {
    await this.enter('reap');
    return this.inner.reap(cmd);
  }
  async publish(roomId: RoomId, message: RoomMessage) {
    await this.enter('publish');
    return this.inner.publish(roomId, message);
  }
  async subscribe(roomId: RoomId, listener: (item: RoomFeedItem) => void) {
    await this.enter('subscribe');
    const off = await this.inner.subscribe(roomId, listener);
    this.subscriptions.set(roomId, (this.subscriptions.get(roomId) ?? 0) + 1);
    return async () => {
      const n = (this.subscriptions.get(roomId) ?? 1) - 1;
      if (n === 0) this.subscriptions.delete(roomId);
      else this.subscriptions.set(roomId, n);
      await off();
    };
  }
  subscribeAll(listener: (event: PresenceEvent) => void) {
    return this.inner.subscribeAll(listener);
  }
  isUnavailable(err: unknown): boolean {
    return this.inner.isUnavailable?.(err) ?? false;
  }
  ping() {
    return this.inner.ping();
  }
  close() {
    return this.inner.close();
  }
}
