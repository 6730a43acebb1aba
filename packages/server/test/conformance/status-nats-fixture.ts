import { randomUUID } from 'node:crypto';
import { NatsStatusStore, type NatsStatusStoreOptions } from '../../src/engines/nats/index.js';
import type { StatusFixture } from './status.suite.js';

/** Where each node of a NATS status fixture connects: node i uses `servers[i % servers.length]` (a region's own server). */
export interface NatsStatusTarget {
  servers: string[];
  /** The JetStream domain of the bucket (hub and leaves); unset on a single server. */
  hubDomain?: string;
}

/** Status stores over one bucket (unique per fixture, destroyed at cleanup); each peer is a node with its own connection. */
export async function statusNatsFixture(target: NatsStatusTarget, extra: Partial<NatsStatusStoreOptions> = {}): Promise<StatusFixture & { bucket: string; stores: NatsStatusStore[] }> {
  const bucket = `st_${randomUUID().slice(0, 8)}`;
  const stores: NatsStatusStore[] = [];
  const open = async (): Promise<NatsStatusStore> => {
    const servers = target.servers[stores.length % target.servers.length]!;
    const store = await NatsStatusStore.open({ servers, hubDomain: target.hubDomain, bucket, probeIntervalMs: 200, ...extra });
    stores.push(store);
    return store;
  };
  const first = await open();
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      await Promise.all(stores.map((s) => s.close()));
    })());
  return { bucket, stores, store: first, peer: open, cleanup };
}
