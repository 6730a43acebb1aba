import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { freePort, NatsServer } from 'realtime-message-testing';
import { PresenceError } from '../src/index.js';
import { StatusService } from '../src/core/status/service.js';
import { NatsStatusStore, natsStatusKey } from '../src/engines/nats/index.js';
import type { UserId } from 'realtime-message-protocol';

// The bad input: a server down at start, a wrong domain, a bucket
// with other settings, a value that is not a record: clear errors naming the
// setting or the key, never a crash, never a record overwritten.

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(() => server?.stop());

const bucket = (): string => `bad_${randomUUID().slice(0, 8)}`;

async function kvm() {
  const nc = await connect({ servers: server.url });
  onTestFinished(() => nc.close());
  return new Kvm(jetstream(nc));
}

describe('NATS status store: bad settings and bad values', () => {
  it('a NATS server that is down at start: the error names NATS_URL', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    await expect(NatsStatusStore.open({ servers: url, bucket: bucket() })).rejects.toThrow(`cannot connect to the NATS server at ${url} (NATS_URL)`);
  });

  it('a domain with no JetStream: the error names NATS_HUB_DOMAIN, fast', async () => {
    const started = performance.now();
    await expect(NatsStatusStore.open({ servers: server.url, hubDomain: 'nope', bucket: bucket() })).rejects.toThrow(/no JetStream answers in the JetStream domain "nope" \(NATS_HUB_DOMAIN\)/);
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('a bucket name that is not one, or a bucket with other settings: the error names NATS_BUCKET and is not changed', async () => {
    await expect(NatsStatusStore.open({ servers: server.url, bucket: 'a.b' })).rejects.toThrow(/NATS_BUCKET "a.b" is not a valid bucket name/);
    const name = bucket();
    const existing = await (await kvm()).create(name, { history: 1, ttl: 2_000 });
    await expect(NatsStatusStore.open({ servers: server.url, bucket: name })).rejects.toThrow(new RegExp(`bucket "${name}" \\(NATS_BUCKET\\) exists with other settings.*ttl is 2000 ms`));
    expect((await existing.status()).ttl).toBe(2_000);
  });

  it('a value that is not a record: reads and writes fail naming the key, the value stays, other users work', async () => {
    const name = bucket();
    const store = await NatsStatusStore.open({ servers: server.url, bucket: name });
    const service = new StatusService({ store, nodeId: 'n1' });
    onTestFinished(async () => {
      await service.dispose();
      await store.close();
    });
    await service.start({ sweep: false });
    const kv = await (await kvm()).open(name);
    const key = natsStatusKey('mallory' as UserId);
    for (const junk of ['not json', JSON.stringify({ f: 1, st: null })]) {
      const rev = await kv.put(key, junk);
      await expect(store.read(['mallory' as UserId])).rejects.toThrow(`the value of key "${key}" in NATS KV bucket "${name}" is not a valid status record`);
      const err = await service.set('mallory', { status: 'busy' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PresenceError);
      expect((err as PresenceError).code).toBe('internal');
      expect((await kv.get(key))?.revision).toBe(rev);
    }
    // The watch skipped the bad values; everything else goes on.
    expect((await service.set('ada', { status: 'busy', message: 'fine' })).message).toBe('fine');
    expect((await service.get('ada')).status).toBe('offline');
  });
});
