import type { ControlBus, Off } from '../../core/shared/control.js';
import type { RedisBackend } from './backend.js';

/**
 * The control bus over Redis: classic pub/sub on the backend's shared
 * subscriber connection (no extra connection), `<prefix>control` for every
 * node and `<prefix>control:<uid>` for one. Classic PUBLISH reaches every
 * subscriber of a Cluster whichever master it lands on, so this works the
 * same on one Redis and on a Cluster, beside the sharded channels of rooms
 * and channels (which it does not touch). Messages are small and rare (node
 * info every few seconds, API commands, survey answers).
 */
export class RedisControlBus implements ControlBus {
  constructor(private readonly backend: RedisBackend) {}

  private get all(): string {
    return `${this.backend.keys.prefix}control`;
  }

  private node(uid: string): string {
    return `${this.backend.keys.prefix}control:${uid}`;
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
