import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { waitFor } from 'realtime-message-testing';
import {
  ChannelNamespaces,
  ChannelPublicationSchema,
  ChannelService,
  PublicationSchema,
  type ChannelBroker,
  type ChannelFeedItem,
  type ChannelServiceOptions,
  type ChannelSubscription,
  type Publication,
  type StreamPosition,
} from '../../src/index.js';

/** Isolated channel storage for one test, and more nodes on it. */
export interface ChannelFixture {
  broker: ChannelBroker;
  /** Another broker over the same storage: another node. */
  peer(): Promise<ChannelBroker>;
  /** Every key the fixture's storage holds, with its TTL in ms (-1: none); absent for storage without keys (memory). */
  keyTtls?(): Promise<Array<[string, number]>>;
  cleanup(): Promise<void>;
}

/** Storage of the test's own that can fail: its pub/sub connections dropped, or restarted with its data lost. */
export interface FaultyChannelFixture extends ChannelFixture {
  /** Kills the subscriber connections of every node (they reconnect and re-subscribe by themselves); returns how many. */
  dropSubscribers(): Promise<number>;
  /** Restarts the storage that holds `channel`, losing its data. */
  restart(channel: string): Promise<void>;
}

export interface ChannelConformanceTarget {
  name: string;
  create(): Promise<ChannelFixture>;
  /** Storage of the test's own for the fault tests; undefined skips them, with the reason. */
  faulty?: (() => Promise<FaultyChannelFixture>) | { skip: string };
}

/** Namespaces of the suite: one per retention case. */
export const SUITE_CONFIG = {
  without_namespace: { history_size: 1000, history_ttl: '60s', presence: true, allow_subscribe_for_client: true, allow_publish_for_subscriber: true, allow_history_for_subscriber: true },
  namespaces: [
    { name: 'small', history_size: 10, history_ttl: '60s' },
    { name: 'short', history_size: 100, history_ttl: 0.4, history_meta_ttl: 1.5 },
    { name: 'nohist', presence: true },
  ],
};

function channel(ns = ''): string {
  return `${ns ? `${ns}:` : ''}ch-${randomUUID().slice(0, 8)}`;
}

/** What one subscriber received, checked against the protocol schema as it arrives. */
export interface Recorder {
  sub: ChannelSubscription;
  items: ChannelFeedItem[];
  problems: string[];
  /** Offsets of the recovered publications then of every live one, in arrival order. */
  offsets(): number[];
  /** Publishes a marker through `svc` and waits until this subscriber has it: everything published before it has arrived. */
  settle(svc: ChannelService): Promise<void>;
}

export async function record(svc: ChannelService, ch: string, since?: StreamPosition): Promise<Recorder> {
  const items: ChannelFeedItem[] = [];
  const problems: string[] = [];
  const sub = await svc.subscribe(ch, (item) => {
    if (item.type === 'publication') {
      const res = ChannelPublicationSchema.safeParse(item.publication);
      if (!res.success) problems.push(`${JSON.stringify(item.publication)}: ${res.error.message}`);
    }
    items.push(item);
  }, { since });
  onTestFinished(() => sub.unsubscribe());
  const recovered = sub.publications;
  return {
    sub,
    items,
    problems,
    offsets: () => [...recovered.map((p) => p.offset), ...items.flatMap((i) => (i.type === 'publication' && !isMarker(i.publication.data) ? [i.publication.offset] : []))],
    async settle(via) {
      const marker = `settle-${randomUUID().slice(0, 8)}`;
      await via.publish(ch, { marker });
      await waitFor(() => items.some((i) => i.type === 'publication' && (i.publication.data as { marker?: string } | null)?.marker === marker), { timeoutMs: 10_000, what: `marker on ${ch}` });
    },
  };
}

function isMarker(data: unknown): boolean {
  return typeof data === 'object' && data !== null && 'marker' in data;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export function runChannelConformance(target: ChannelConformanceTarget): void {
  describe(`channels conformance: ${target.name}`, () => {
    async function harness(opts: Partial<ChannelServiceOptions> = {}, make: () => Promise<ChannelFixture> = () => target.create()) {
      const fixture = await make();
      const namespaces = ChannelNamespaces.fromConfig(SUITE_CONFIG);
      const services: ChannelService[] = [];
      const node = (broker: ChannelBroker): ChannelService => {
        const s = new ChannelService({ broker, namespaces, positionCheckMs: 0, ...opts });
        services.push(s);
        return s;
      };
      onTestFinished(async () => {
        await Promise.all(services.map((s) => s.dispose()));
        await fixture.cleanup();
      });
      const a = node(fixture.broker);
      return { fixture, a, peer: async () => node(await fixture.peer()) };
    }

    it('publish: offsets grow by one from 1 in one epoch; history returns the publications with data, info and tags', async () => {
      const { a } = await harness();
      const ch = channel();
      const first = await a.publish(ch, { n: 1 }, { info: { user: 'ada', client: 'c1', connInfo: { name: 'Ada' } }, tags: { kind: 'greeting' } });
      expect(first.offset).toBe(1);
      expect(first.epoch).toMatch(/^[A-Za-z]{8}$/);
      const second = await a.publish(ch, null);
      expect(second).toEqual({ offset: 2, epoch: first.epoch });
      const h = await a.history(ch, { limit: -1 });
      expect(h).toEqual({
        offset: 2,
        epoch: first.epoch,
        publications: [
          { offset: 1, data: { n: 1 }, info: { user: 'ada', client: 'c1', connInfo: { name: 'Ada' } }, tags: { kind: 'greeting' } },
          { offset: 2, data: null },
        ],
      });
      for (const p of h.publications) expect(PublicationSchema.safeParse(p).success).toBe(true);
      // A channel nobody published to: offset 0 in an epoch that the first publish keeps.
      const empty = channel();
      const pos = await a.history(empty);
      expect(pos).toMatchObject({ offset: 0, publications: [] });
      expect((await a.publish(empty, 1)).epoch).toBe(pos.epoch);
    });

    it('concurrent publishers on two nodes get contiguous offsets; every subscriber on both nodes gets every publication once, in order', async () => {
      const { a, peer } = await harness();
      const b = await peer();
      const ch = channel();
      const subs = [await record(a, ch), await record(a, ch), await record(b, ch), await record(b, ch)];
      const N = 200;
      const results = await Promise.all(range(1, N).map((i) => (i % 2 ? a : b).publish(ch, { i })));
      expect(results.map((r) => r.offset).sort((x, y) => x - y)).toEqual(range(1, N));
      expect(new Set(results.map((r) => r.epoch)).size).toBe(1);
      for (const s of subs) await s.settle(a);
      for (const s of subs) {
        expect(s.offsets()).toEqual(range(1, N));
        expect(s.problems).toEqual([]);
        expect(s.items.every((i) => i.type === 'publication')).toBe(true);
      }
      const h = await b.history(ch, { limit: -1 });
      expect(h.publications.filter((p) => !isMarker(p.data)).map((p) => p.offset)).toEqual(range(1, N));
      // The data at each offset is the one that publish was answered with.
      const byOffset = new Map(h.publications.map((p) => [p.offset, p.data]));
      results.forEach((r, i) => expect(byOffset.get(r.offset)).toEqual({ i: i + 1 }));
    });

    it('history pages forward and backward reconstruct the stream; since is exclusive; limit 0 is the position only', async () => {
      const { a } = await harness();
      const ch = channel();
      for (let i = 1; i <= 23; i++) await a.publish(ch, i);
      const { epoch } = await a.history(ch);
      const forward: Publication[] = [];
      let since: StreamPosition = { offset: 0, epoch };
      for (;;) {
        const page = await a.history(ch, { since, limit: 5 });
        expect(page).toMatchObject({ offset: 23, epoch });
        if (page.publications.length === 0) break;
        forward.push(...page.publications);
        since = { offset: page.publications.at(-1)!.offset, epoch };
      }
      expect(forward.map((p) => p.data)).toEqual(range(1, 23));
      const backward: Publication[] = [];
      let page = await a.history(ch, { limit: 4, reverse: true });
      while (page.publications.length > 0) {
        backward.push(...page.publications);
        page = await a.history(ch, { since: { offset: page.publications.at(-1)!.offset, epoch }, limit: 4, reverse: true });
      }
      expect(backward.map((p) => p.offset)).toEqual(range(1, 23).reverse());
      expect((await a.history(ch, { since: { offset: 23, epoch }, limit: 10 })).publications).toEqual([]);
      expect((await a.history(ch, { since: { offset: 11, epoch: '' }, limit: 3, reverse: true })).publications.map((p) => p.offset)).toEqual([10, 9, 8]);
      expect(await a.history(ch, { limit: 0 })).toEqual({ publications: [], offset: 23, epoch });
    });

    it('history keeps the newest history_size publications; recovery returns exactly the missed ones or recovered: false with none', async () => {
      const { a } = await harness({ recoveryMaxLimit: 8 });
      const ch = channel('small');
      for (let i = 1; i <= 25; i++) await a.publish(ch, i);
      const h = await a.history(ch, { limit: -1 });
      expect(h.publications.map((p) => p.offset)).toEqual(range(16, 25));
      const { epoch } = h;
      expect(await a.recover(ch, { offset: 20, epoch })).toEqual({ recovered: true, publications: h.publications.slice(5), offset: 25, epoch });
      expect(await a.recover(ch, { offset: 20, epoch: '' })).toMatchObject({ recovered: true, offset: 25 });
      expect(await a.recover(ch, { offset: 25, epoch })).toEqual({ recovered: true, publications: [], offset: 25, epoch });
      // Older than history, another epoch, ahead of the stream, more than the recovery limit: not recovered, nothing partial.
      for (const since of [{ offset: 5, epoch }, { offset: 15, epoch }, { offset: 20, epoch: 'Unknown' }, { offset: 26, epoch }, { offset: 16, epoch }]) {
        expect(await a.recover(ch, since), JSON.stringify(since)).toEqual({ recovered: false, publications: [], offset: 25, epoch });
      }
    });

    it('history_ttl drops the history (the epoch stays); history_meta_ttl drops the epoch', async () => {
      const { a } = await harness();
      const ch = channel('short');
      await a.publish(ch, 1);
      const pos = await a.publish(ch, 2);
      await expect.poll(async () => (await a.history(ch, { limit: -1 })).publications.length, { timeout: 5_000, interval: 100 }).toBe(0);
      expect(await a.history(ch)).toMatchObject({ offset: 2, epoch: pos.epoch });
      expect(await a.recover(ch, { offset: 1, epoch: pos.epoch })).toMatchObject({ recovered: false, publications: [] });
      // Unused for longer than history_meta_ttl (reads refresh it, so wait without reading).
      await new Promise((r) => setTimeout(r, 1_700));
      const fresh = await a.publish(ch, 3);
      expect(fresh.offset).toBe(1);
      expect(fresh.epoch).not.toBe(pos.epoch);
      expect(await a.recover(ch, { offset: 2, epoch: pos.epoch })).toMatchObject({ recovered: false, publications: [] });
    });

    it('removeHistory drops publications but keeps epoch and offset, so older positions are not recovered', async () => {
      const { a } = await harness();
      const ch = channel();
      await a.publish(ch, 1);
      const p2 = await a.publish(ch, 2);
      await a.removeHistory(ch);
      expect(await a.history(ch, { limit: -1 })).toEqual({ publications: [], offset: 2, epoch: p2.epoch });
      expect(await a.recover(ch, { offset: 1, epoch: p2.epoch })).toMatchObject({ recovered: false });
      expect(await a.recover(ch, { offset: 2, epoch: p2.epoch })).toMatchObject({ recovered: true });
      expect(await a.publish(ch, 3)).toEqual({ offset: 3, epoch: p2.epoch });
    });

    it('subscribe with recovery while publications keep arriving: history and live merge with no gap and no duplicate', async () => {
      const { a, peer } = await harness();
      const b = await peer();
      const ch = channel();
      const first = await a.publish(ch, 0);
      let stop = false;
      let published = 1;
      const publisher = (async () => {
        while (!stop) {
          await b.publish(ch, published);
          published++;
          // About one per millisecond: a memory broker would otherwise answer in microtasks and never let timers run.
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      onTestFinished(async () => {
        stop = true;
        await publisher.catch(() => {});
      });
      const recorders: Recorder[] = [];
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 5));
        const since = { offset: 1 + i, epoch: first.epoch };
        const r = await record(a, ch, since);
        expect(r.sub.recovered).toBe(true);
        recorders.push(r);
      }
      stop = true;
      await publisher;
      const top = published;
      for (const r of recorders) await r.settle(b);
      recorders.forEach((r, i) => {
        expect(r.offsets(), `subscriber ${i}`).toEqual(range(2 + i, top));
        expect(r.problems).toEqual([]);
      });
      // A subscribe without since starts at the stream's position and gets what follows.
      const now = (await a.history(ch)).offset;
      const plain = await record(a, ch);
      expect(plain.sub).toMatchObject({ recovered: false, wasRecovering: false, publications: [], offset: now, epoch: first.epoch });
      await a.publish(ch, 'next');
      await plain.settle(a);
      expect(plain.offsets()).toEqual([now + 1]);
    });

    it('skipHistory: delivered in order with the others on every node, not kept, no offset; positions and recovery are not affected', async () => {
      const { a, peer } = await harness();
      const b = await peer();
      const ch = channel();
      const subs = [await record(a, ch), await record(b, ch)];
      const first = await a.publish(ch, 1);
      expect(await a.publish(ch, { t: 1 }, { skipHistory: true })).toEqual({ offset: 0, epoch: first.epoch });
      expect(await b.publish(ch, 2)).toEqual({ offset: 2, epoch: first.epoch });
      expect(await b.publish(ch, { t: 2 }, { skipHistory: true, info: { user: 'ada', client: 'c1' }, tags: { k: 'v' } })).toEqual({ offset: 0, epoch: first.epoch });
      expect(await a.publish(ch, 3, { skipHistory: false })).toEqual({ offset: 3, epoch: first.epoch });
      for (const s of subs) await s.settle(b);
      // Each settle waited for its own subscriber only: wait until both have both markers (a is on the other node).
      const markers = (s: Recorder) => s.items.filter((i) => i.type === 'publication' && isMarker(i.publication.data)).length;
      await waitFor(() => subs.every((s) => markers(s) === 2), { timeoutMs: 10_000, what: 'both markers on both subscribers' });
      for (const s of subs) {
        const pubs = s.items.flatMap((i) => (i.type === 'publication' && !isMarker(i.publication.data) ? [i.publication] : []));
        expect(pubs.map((p) => [p.offset, p.data])).toEqual([[1, 1], [0, { t: 1 }], [2, 2], [0, { t: 2 }], [3, 3]]);
        expect(pubs[3]).toEqual({ channel: ch, epoch: first.epoch, offset: 0, data: { t: 2 }, info: { user: 'ada', client: 'c1' }, tags: { k: 'v' } });
        expect(s.items.filter((i) => i.type === 'unrecoverable')).toEqual([]);
        expect(s.problems).toEqual([]);
        expect(s.sub.position).toEqual({ offset: 5, epoch: first.epoch }); // the second settle marker's
      }
      const h = await a.history(ch, { limit: -1 });
      expect(h.publications.map((p) => (isMarker(p.data) ? 'marker' : p.data))).toEqual([1, 2, 3, 'marker', 'marker']);
      expect(await a.recover(ch, { offset: 1, epoch: first.epoch })).toMatchObject({ recovered: true, offset: 5 });
      expect((await a.recover(ch, { offset: 1, epoch: first.epoch })).publications.map((p) => p.offset)).toEqual([2, 3, 4, 5]);
      // A namespace without history: offsets are kept there, but not for a publication that skips history.
      const nohist = channel('nohist');
      expect((await a.publish(nohist, 1)).offset).toBe(1);
      expect((await a.publish(nohist, 2, { skipHistory: true })).offset).toBe(0);
      expect((await a.publish(nohist, 3)).offset).toBe(2);
      // A channel whose first publication skips history: it has an epoch, offset 0, which the next publish keeps.
      const fresh = channel();
      const skipped = await b.publish(fresh, 'x', { skipHistory: true });
      expect(skipped.offset).toBe(0);
      expect(await a.history(fresh)).toEqual({ publications: [], offset: 0, epoch: skipped.epoch });
      expect(await a.publish(fresh, 'y')).toEqual({ offset: 1, epoch: skipped.epoch });
      await expect(a.publish(fresh, 'z', { skipHistory: 'yes' as unknown as boolean })).rejects.toMatchObject({ code: 'invalid_payload' });
    });

    it('skipHistory while subscribers recover and publications keep arriving: no gap, no duplicate, each once', async () => {
      const { a, peer } = await harness();
      const b = await peer();
      const ch = channel();
      const first = await a.publish(ch, 0);
      let stop = false;
      let n = 0;
      const publisher = (async () => {
        while (!stop) {
          n++;
          await b.publish(ch, { n }, { skipHistory: n % 2 === 0 });
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      onTestFinished(async () => {
        stop = true;
        await publisher.catch(() => {});
      });
      const recorders: Recorder[] = [];
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 5));
        const r = await record(a, ch, { offset: 1, epoch: first.epoch });
        expect(r.sub.recovered).toBe(true);
        recorders.push(r);
      }
      stop = true;
      await publisher;
      const top = (await a.history(ch)).offset;
      for (const r of recorders) await r.settle(b);
      recorders.forEach((r, i) => {
        // Offsets from the position on, each once (the transient ones, offset 0, are not in them).
        expect(r.offsets().filter((o) => o > 0), `subscriber ${i}`).toEqual(range(2, top));
        const transient = r.items.flatMap((it) => (it.type === 'publication' && it.publication.offset === 0 ? [(it.publication.data as { n: number }).n] : []));
        expect(new Set(transient).size, `subscriber ${i}: a transient publication twice`).toBe(transient.length);
        expect(transient.every((t) => t % 2 === 0)).toBe(true);
        expect(r.items.filter((it) => it.type === 'unrecoverable')).toEqual([]);
        expect(r.problems).toEqual([]);
      });
      // Transient publications did reach the recovering subscribers.
      expect(recorders.some((r) => r.items.some((it) => it.type === 'publication' && it.publication.offset === 0))).toBe(true);
    });

    it('bad input gets a stable code and never a partial publication', async () => {
      const { a } = await harness({ maxDataBytes: 1_000 });
      const ch = channel();
      const { epoch } = await a.publish(ch, 'ok');
      const expectCode = async (p: Promise<unknown>, code: string, reason?: string) => {
        const err = await p.then(() => undefined, (e: unknown) => e);
        expect(err, `expected ${code}`).toMatchObject({ code, ...(reason ? { reason } : {}) });
      };
      for (const name of ['', 'x'.repeat(129), 'a{b}', 'a\u0000', 7, null]) await expectCode(a.publish(name as string, 1), 'invalid_payload');
      await expectCode(a.publish('nope:x', 1), 'invalid_payload', 'unknown_channel');
      await expectCode(a.subscribe('nope:x', () => {}), 'invalid_payload', 'unknown_channel');
      await expectCode(a.publish(ch, undefined), 'invalid_payload');
      await expectCode(a.publish(ch, () => 1), 'invalid_payload');
      await expectCode(a.publish(ch, { v: Number.NaN }), 'invalid_payload');
      await expectCode(a.publish(ch, 'x'.repeat(2_000)), 'payload_too_large');
      await expectCode(a.publish(ch, 1, { tags: { k: 1 as unknown as string } }), 'invalid_payload');
      await expectCode(a.publish(ch, 1, { info: { user: 1 } as never }), 'invalid_payload');
      for (const since of [{ offset: -1, epoch }, { offset: 0.5, epoch }, { offset: '1', epoch }, { offset: 1 }, { offset: 1, epoch: 'x'.repeat(65) }]) {
        await expectCode(a.history(ch, { since: since as StreamPosition, limit: 1 }), 'invalid_payload');
        await expectCode(a.recover(ch, since as StreamPosition), 'invalid_payload');
      }
      for (const limit of [301, -2, 1.5]) await expectCode(a.history(ch, { limit }), 'invalid_payload');
      await expectCode(a.history(ch, { since: { offset: 0, epoch }, reverse: true, limit: 1 }), 'invalid_payload');
      await expectCode(a.history(ch, { since: { offset: 5, epoch } }), 'invalid_payload', 'unrecoverable_position');
      await expectCode(a.history(ch, { since: { offset: 1, epoch: 'Unknown' } }), 'stale_epoch', 'unrecoverable_position');
      await expectCode(a.history(channel('nohist')), 'forbidden', 'not_available');
      await expectCode(a.presence(channel()), 'forbidden', 'not_available'); // no presence port on this service
      await expectCode(a.publish(channel(), 1, {}, { user: 'ada', subscribed: false }), 'forbidden');
      // Nothing of the refused publications reached the stream.
      expect(await a.history(ch, { limit: -1 })).toEqual({ publications: [{ offset: 1, data: 'ok' }], offset: 1, epoch });
    });

    it('no key without a TTL', async (ctx) => {
      const { a, fixture } = await harness();
      if (!fixture.keyTtls) ctx.skip(true, 'the memory broker has no keys (its records expire in the sweep, tested in channels-memory)');
      const chs = [channel(), channel('small'), channel('nohist')];
      for (const ch of chs) {
        await a.publish(ch, 1);
        await a.history(chs[0]!);
      }
      await a.removeHistory(chs[0]!);
      await a.history(channel()); // a read of a channel never published to creates its meta record
      await a.publish(channel(), 1, { skipHistory: true }); // so does a publication without history
      const ttls = await fixture.keyTtls!();
      expect(ttls.length).toBeGreaterThanOrEqual(6);
      expect(ttls.filter(([, ttl]) => ttl <= 0)).toEqual([]);
    });

    const faulty = target.faulty;
    const faults = typeof faulty === 'function' ? describe : describe.skip;
    faults(typeof faulty === 'function' ? 'faults' : `faults (skipped: ${faulty?.skip ?? 'no storage of its own'})`, () => {
      const run = it;
      const make = typeof faulty === 'function' ? faulty : () => Promise.reject(new Error('no faulty storage'));

      run('a subscriber connection killed mid-stream: the gap is filled from history, exactly once, in order', async () => {
        const { a, fixture, peer } = await harness({ positionCheckMs: 200 }, make);
        const b = await peer();
        const ch = channel();
        const subs = [await record(a, ch), await record(b, ch)];
        for (let i = 1; i <= 50; i++) await a.publish(ch, i);
        expect(await (fixture as FaultyChannelFixture).dropSubscribers()).toBeGreaterThan(0);
        // Published while the subscribers reconnect: lost to pub/sub, then the tail (nothing after it) is found by the position check.
        for (let i = 51; i <= 100; i++) await a.publish(ch, i);
        await waitFor(() => subs.every((s) => s.offsets().at(-1) === 100), { timeoutMs: 10_000, what: 'the tail after the drop' });
        expect(await (fixture as FaultyChannelFixture).dropSubscribers()).toBeGreaterThan(0);
        // With publications without history among them: those that reach a node while its feed fills the gap wait in
        // its queue; none is taken for a gap or a duplicate (those lost with the pub/sub drop are lost: at most once).
        for (let i = 101; i <= 150; i++) {
          await b.publish(ch, i);
          if (i % 5 === 0) await b.publish(ch, { t: i }, { skipHistory: true });
        }
        for (const s of subs) await s.settle(a);
        for (const s of subs) {
          expect(s.offsets().filter((o) => o > 0)).toEqual(range(1, 150));
          const transient = s.items.flatMap((it) => (it.type === 'publication' && it.publication.offset === 0 ? [(it.publication.data as { t: number }).t] : []));
          expect(transient).toEqual([...transient].sort((x, y) => x - y));
          expect(new Set(transient).size).toBe(transient.length);
          expect(s.items.filter((i) => i.type === 'unrecoverable')).toEqual([]);
        }
      });

      run('publications lost beyond history are reported as unrecoverable, never skipped', async () => {
        const { a, fixture } = await harness({ positionCheckMs: 200 }, make);
        const ch = channel('small');
        const s = await record(a, ch);
        await a.publish(ch, 1);
        await waitFor(() => s.offsets().length === 1);
        // A burst of 3 x history_size, pipelined, while the subscriber connections reconnect. A client that re-subscribes
        // within the burst loses less than history holds, and the gap is filled (nothing to report): drop again then.
        let top = 1;
        for (let round = 0; round < 10 && !s.items.some((i) => i.type === 'unrecoverable'); round++) {
          expect(await (fixture as FaultyChannelFixture).dropSubscribers()).toBeGreaterThan(0);
          const burst = await Promise.all(range(top + 1, top + 30).map((i) => a.publish(ch, i)));
          top = Math.max(...burst.map((r) => r.offset));
          await waitFor(() => s.items.some((i) => i.type === 'unrecoverable') || s.offsets().at(-1) === top, { timeoutMs: 5_000, what: 'the burst or a notice' });
        }
        const notice = s.items.find((i) => i.type === 'unrecoverable')!;
        expect(notice).toMatchObject({ type: 'unrecoverable', reason: 'gap', channel: ch });
        expect(s.sub.closed).toBe(true);
        // Whatever was handed on before the notice is contiguous from 1.
        expect(s.offsets()).toEqual(range(1, s.offsets().length));
        // Resubscribing from its position: not recovered (history no longer holds it), positioned at the top.
        const again = await record(a, ch, s.sub.position);
        expect(again.sub).toMatchObject({ recovered: false, publications: [], offset: top });
      });

      run('a restart of the storage changes the epoch: subscribers are told, old positions are not recovered', async () => {
        const { a, fixture } = await harness({ positionCheckMs: 300 }, make);
        const ch = channel();
        const s = await record(a, ch);
        for (let i = 1; i <= 5; i++) await a.publish(ch, i);
        await waitFor(() => s.offsets().length === 5);
        const before = s.sub.position;
        await (fixture as FaultyChannelFixture).restart(ch);
        // A publication without history makes the new epoch too (and a feed that gets it checks its position).
        const transient = await waitFor(() => a.publish(ch, { t: 1 }, { skipHistory: true }).catch(() => undefined), { timeoutMs: 15_000, intervalMs: 100, what: 'a publish after the restart' });
        expect(transient.offset).toBe(0);
        expect(transient.epoch).not.toBe(before.epoch);
        const after = await a.publish(ch, 'after');
        expect(after).toEqual({ offset: 1, epoch: transient.epoch });
        await waitFor(() => s.items.some((i) => i.type === 'unrecoverable'), { timeoutMs: 10_000, what: 'the epoch change notice' });
        expect(s.items.find((i) => i.type === 'unrecoverable')).toMatchObject({ reason: 'epoch_changed' });
        expect(s.offsets()).toEqual(range(1, 5));
        expect(await a.recover(ch, before)).toEqual({ recovered: false, publications: [], offset: after.offset, epoch: after.epoch });
        const err = await a.history(ch, { since: before, limit: 10 }).catch((e: unknown) => e);
        expect(err).toMatchObject({ reason: 'unrecoverable_position' });
        // A new subscriber continues in the new epoch.
        const fresh = await record(a, ch);
        await fresh.settle(a);
        expect(fresh.sub.epoch).toBe(after.epoch);
        expect(fresh.items.filter((i) => i.type === 'unrecoverable')).toEqual([]);
      });
    });
  });
}
