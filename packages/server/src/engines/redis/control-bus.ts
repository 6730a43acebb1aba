import type { ControlBus, Off } from '../../core/shared/control.js';
import type { RedisBackend } from './backend.js';

/**
 * The control bus over Redis: classic pub/sub (`subscribeGlobal`, on the
 * backend's subscriber connection; on a Cluster, its own confirmed and
 * re-subscribed connection, see ClusterClassicSubscriber), where every node
 * hears every PUBLISH: `<prefix>{control}:all` for every node and
 * `<prefix>{control}:node:<uid>` for one. Messages are small and rare (node
 * info every few seconds, API commands, survey answers), so the cluster bus
 * carrying them to every master costs nothing that matters. Not sharded: a
 * sharded subscription that keeps being retried while Redis is down made
 * every other SSUBSCRIBE of the connection (a room's, before a join) fail
 * later than it should (2-4 s before, 4-7 s with it).
 */
export class RedisControlBus implements ControlBus {
  constructor(private readonly backend: RedisBackend) {}

  private get all(): string {
    return `${this.backend.keys.prefix}{control}:all`;
  }

  private node(uid: string): string {
    return `${this.backend.keys.prefix}{control}:node:${uid}`;
  }

  async publish(message: string, to?: string): Promise<void> {
    await this.backend.redis.publish(to === undefined ? this.all : this.node(to), message);
  }

  async subscribe(uid: string, listener: (message: string) => void): Promise<Off> {
    const offAll = await this.backend.subscribeGlobal(this.all, listener);
    let offNode: Off;
    try {
      offNode = await this.backend.subscribeGlobal(this.node(uid), listener);
    } catch (err) {
      await offAll();
      throw err;
    }
    return async () => {
      await Promise.all([offAll(), offNode()]);
    };
  }
}
