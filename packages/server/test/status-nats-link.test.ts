import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { NatsHubAndLeaves, waitFor } from 'realtime-message-testing';
import { PresenceError, type StatusRecord } from '../src/index.js';
import { StatusService } from '../src/core/status/service.js';
import { NatsStatusStore } from '../src/engines/nats/index.js';

// SPEC §10: a region that loses its link to the hub keeps answering reads
// from its cache (marked stale within 5 s), fails writes fast with
// `unavailable`, stays up, and converges when the link returns: no lost
// update, watch resumed, cache refilled, one event per change.

let topo: NatsHubAndLeaves;
beforeAll(async () => {
  topo = await NatsHubAndLeaves.start(2);
});
afterAll(() => topo?.stop());

const user = (): string => `u-${randomUUID().slice(0, 8)}`;

/** One service node per region (region i on leaf i), over a fresh bucket; events each node receives, per user. */
async function regions() {
  const bucket = `link_${randomUUID().slice(0, 8)}`;
  const nodes = await Promise.all(
    topo.leaves.map(async (leaf, i) => {
      const store = await NatsStatusStore.open({ servers: leaf.url, hubDomain: 'hub', bucket });
      const service = new StatusService({ store, nodeId: `region${i + 1}-1` });
      await service.start({ sweep: false });
      const events: StatusRecord[] = [];
      await service.subscribe((e) => events.push(e));
      onTestFinished(async () => {
        await service.dispose();
        await store.close();
      });
      return { store, service, events, of: (id: string) => events.filter((e) => e.userId === id) };
    }),
  );
  return nodes as [(typeof nodes)[0], (typeof nodes)[0]];
}

async function expectUnavailable(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PresenceError);
  expect((err as PresenceError).code).toBe('unavailable');
}

describe('NATS status: concurrent writers in two regions', () => {
  it('compare-and-set loses no update; every node reports every change once, in seq order', async () => {
    const [r1, r2] = await regions();
    const ada = user();
    const writes = 20;
    await Promise.all([r1, r2].flatMap((r, i) => Array.from({ length: writes }, (_, k) => r.service.set(ada, { status: 'busy', message: `r${i + 1}-${k}` }))));
    // A node's cached read may lag the other region's last write by the watch delay (visible within 100 ms, SPEC §7).
    for (const r of [r1, r2]) await waitFor(async () => ((await r.service.get(ada)).seq === 2 * writes ? true : undefined), { timeoutMs: 2_000, what: 'the last write visible on every node' });
    for (const r of [r1, r2]) {
      await waitFor(() => r.of(ada).at(-1)?.seq === 2 * writes, { what: 'the last change reaches every node' });
      expect(r.of(ada).map((e) => e.seq)).toEqual(Array.from({ length: 2 * writes }, (_, k) => k + 1));
    }
  });
});

describe('NATS status: a region loses its link to the hub', () => {
  it('serves stale reads, fails writes fast, and converges when the link returns', async () => {
    const [r1, r2] = await regions();
    const ada = user();
    const bob = user();
    const never = user();
    await r2.service.set(ada, { status: 'busy', message: 'before' });
    await expect.poll(async () => (await r1.service.get(ada)).message, { timeout: 2_000 }).toBe('before');

    const cutAt = Date.now();
    await topo.links[0]!.cut();
    onTestFinished(async () => {
      await topo.links[0]!.heal();
      await topo.linked();
    });
    await waitFor(() => !r1.store.linkUp, { timeoutMs: 5_000, what: 'region 1 finds its link down' });
    const detectedMs = Date.now() - cutAt;
    expect(detectedMs).toBeLessThan(5_000);

    // Reads: the cached user answers, marked stale; a user this node never held cannot be answered.
    const stale = await r1.service.getManyOrStale([ada]);
    expect(stale).toMatchObject({ stale: true, users: [{ userId: ada, status: 'offline', manual: true, message: 'before' }] });
    await expectUnavailable(r1.service.getManyOrStale([never]));

    // Writes fail fast with unavailable; /ready (ping) tells the truth.
    const started = performance.now();
    await expectUnavailable(r1.service.set(ada, { status: 'away' }));
    const writeMs = performance.now() - started;
    expect(writeMs).toBeLessThan(500);
    await expect(r1.store.ping()).rejects.toThrow(/cannot be reached/);

    // The other region goes on: its changes wait on the hub for region 1.
    await r2.service.set(ada, { status: 'away', message: 'during' });
    await r2.service.set(ada, { status: 'away', message: 'during, again' });
    await r2.service.set(bob, { status: 'busy', message: 'bob during' });

    await topo.links[0]!.heal();
    await waitFor(() => r1.store.linkUp, { timeoutMs: 10_000, what: 'region 1 finds its link back' });
    await r1.store.ping();

    // Converged: fresh reads (the cache was emptied on resume), the missed changes reported once each.
    await expect.poll(async () => (await r1.service.getManyOrStale([ada, bob])).stale, { timeout: 2_000 }).toBe(false);
    expect((await r1.service.get(ada)).message).toBe('during, again');
    expect((await r1.service.get(bob)).message).toBe('bob during');
    await waitFor(() => r1.of(bob).length === 1, { what: "region 1 reports bob's change" });
    const adaSeqs = r1.of(ada).map((e) => e.seq);
    expect(new Set(adaSeqs).size).toBe(adaSeqs.length);
    expect(r1.of(ada).at(-1)).toMatchObject({ message: 'during, again', seq: 3 });

    // Writes work again, and reach the other region.
    await r1.service.set(ada, { status: 'online', message: 'after' });
    await expect.poll(async () => (await r2.service.get(ada)).message, { timeout: 2_000 }).toBe('after');
    await waitFor(() => r2.of(ada).some((e) => e.message === 'after'), { what: 'region 2 gets the event' });
    expect(r2.of(ada).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it('an expiry during the cut is one event on every node, swept by the region that can reach the hub', async () => {
    const [r1, r2] = await regions();
    const ada = user();
    await r1.service.set(ada, { status: 'online', ttlSeconds: 1 });
    await waitFor(() => r1.of(ada).length === 1 && r2.of(ada).length === 1, { what: 'both regions get the keep-alive event' });
    await topo.links[0]!.cut();
    onTestFinished(async () => {
      await topo.links[0]!.heal();
      await topo.linked();
    });
    await waitFor(() => !r1.store.linkUp, { timeoutMs: 5_000, what: 'region 1 finds its link down' });
    await new Promise((r) => setTimeout(r, Math.max(0, 1_050 - (Date.now() - (r1.of(ada)[0]!.updatedAt ?? 0)))));
    await expect(r1.service.sweepNow()).rejects.toThrow();
    expect((await r2.service.sweepNow()).events).toBe(1);
    await topo.links[0]!.heal();
    await waitFor(() => r1.store.linkUp && r1.of(ada).length === 2, { timeoutMs: 10_000, what: 'region 1 gets the expiry after the link returns' });
    // Region 1 retries its failed visit: nothing left to change.
    expect((await r1.service.sweepNow()).events).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    for (const r of [r1, r2]) expect(r.of(ada).map((e) => [e.status, e.seq])).toEqual([['online', 1], ['offline', 2]]);
  });

  it('the hub killed and restarted: both regions stall, then resume their watches with nothing lost', async () => {
    const [r1, r2] = await regions();
    const ada = user();
    await r1.service.set(ada, { status: 'busy', message: 'before the crash' });
    await waitFor(() => r2.of(ada).length === 1, { what: 'region 2 gets the first event' });
    await topo.hub.kill();
    await waitFor(() => !r1.store.linkUp && !r2.store.linkUp, { timeoutMs: 5_000, what: 'both regions find the hub gone' });
    await expectUnavailable(r2.service.set(ada, { status: 'away' }));
    await topo.hub.launch();
    await topo.linked();
    await waitFor(() => r1.store.linkUp && r2.store.linkUp, { timeoutMs: 10_000, what: 'both regions find the hub back' });
    // The acknowledged write survived (file store); the watches deliver new writes again.
    expect((await r2.service.get(ada)).message).toBe('before the crash');
    await r2.service.set(ada, { status: 'busy', message: 'after the restart' });
    await waitFor(() => r1.of(ada).length === 2, { timeoutMs: 5_000, what: 'region 1 gets the event written after the restart' });
    expect(r1.of(ada).map((e) => e.message)).toEqual(['before the crash', 'after the restart']);
  });
});
