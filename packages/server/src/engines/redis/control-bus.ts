import type { ControlBus, Off } from '../../core/shared/control.js';
import type { RedisBackend } from './backend.js';

/**
 * The control bus over Redis: sharded pub/sub on the backend's shared
 * subscriber connection (no extra connection), like rooms and channels:
 * `<prefix>{control}:all` for every node and `<prefix>{control}:node:<uid>`
 * for one, all under one hash tag, so on a Cluster they live on the one
 * master that owns that slot and SPUBLISH is routed to it like any keyed
 * command (classic PUBLISH would be broadcast over the cluster bus, and a
 * classic subscriber picked at random by the client). Messages are small and
 * rare (node info every few seconds, API commands, survey answers).
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
    await this.backend.redis.spublish(to === undefined ? this.all : this.node(to), message);
  }

  async subscribe(uid: string, listener: (message: string) => void): Promise<Off> {
    const offAll = await this.backend.subscribe(this.all, listener);
    let offNode: Off;
    try {
      offNode = await this.backend.subscribe(this.node(uid), listener);
    } catch (err) {
      await offAll();
      throw err;
    }
    return async () => {
      await Promise.all([offAll(), offNode()]);
    };
  }
}
