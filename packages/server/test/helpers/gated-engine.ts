import type { RoomId, RoomMessage } from 'realtime-message-protocol';
import {
  MemoryEngine,
  type DisconnectCommand,
  type HeartbeatCommand,
  type JoinCommand,
  type LeaveCommand,
  type PresenceEngine,
  type ReapCommand,
  type RoomFeedItem,
} from '../../src/index.js';

type GatedOp = 'join' | 'heartbeat' | 'subscribe';

/**
 * A memory engine with seams for the transport tests: an operation can be held
 * until the test releases it, a subscription can be made to fail once, and the
 * live subscriptions are counted. It stands in for storage; the transport
 * under test is the real one.
 */
export class GatedEngine implements PresenceEngine {
  readonly kind = 'gated-memory';
  readonly inner = new MemoryEngine();
  /** Rooms with a live engine subscription, with how many (the Hub keeps it at one per room). */
  readonly subscriptions = new Map<string, number>();
  /** Calls of each gated operation so far (counted on entry, before any hold). */
  readonly calls: Record<GatedOp, number> = { join: 0, heartbeat: 0, subscribe: 0 };
  private readonly gates = new Map<GatedOp, Promise<void>>();
  private failSubscribe: Error | undefined;

  /** Holds every call of `op` until the returned function is called. */
  hold(op: GatedOp): () => void {
    let release!: () => void;
    this.gates.set(op, new Promise<void>((r) => (release = r)));
    return () => {
      this.gates.delete(op);
      release();
    };
  }

  failNextSubscribe(err: Error): void {
    this.failSubscribe = err;
  }

  private async gate(op: GatedOp): Promise<void> {
    this.calls[op]++;
    await this.gates.get(op);
  }

  async join(cmd: JoinCommand) {
    await this.gate('join');
    return this.inner.join(cmd);
  }
  async heartbeat(cmd: HeartbeatCommand) {
    await this.gate('heartbeat');
    return this.inner.heartbeat(cmd);
  }
  leave(cmd: LeaveCommand) {
    return this.inner.leave(cmd);
  }
  disconnect(cmd: DisconnectCommand) {
    return this.inner.disconnect(cmd);
  }
  snapshot(roomId: RoomId, now: number) {
    return this.inner.snapshot(roomId, now);
  }
  reap(cmd: ReapCommand) {
    return this.inner.reap(cmd);
  }
  publish(roomId: RoomId, message: RoomMessage) {
    return this.inner.publish(roomId, message);
  }
  async subscribe(roomId: RoomId, listener: (item: RoomFeedItem) => void) {
    await this.gate('subscribe');
    if (this.failSubscribe) {
      const err = this.failSubscribe;
      this.failSubscribe = undefined;
      throw err;
    }
    const off = await this.inner.subscribe(roomId, listener);
    this.subscriptions.set(roomId, (this.subscriptions.get(roomId) ?? 0) + 1);
    return async () => {
      const n = (this.subscriptions.get(roomId) ?? 1) - 1;
      if (n === 0) this.subscriptions.delete(roomId);
      else this.subscriptions.set(roomId, n);
      await off();
    };
  }
  ping() {
    return this.inner.ping();
  }
  close() {
    return this.inner.close();
  }
}
