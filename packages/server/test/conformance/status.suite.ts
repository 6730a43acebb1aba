import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { expectCode } from './expect-code.js';
import { waitFor } from 'realtime-message-testing';
import { ManualClock, StatusRecordSchema, type StatusRecord, type UserId } from '../../src/index.js';
import { StatusService, type StatusServiceOptions } from '../../src/core/status/service.js';
import type { StatusState } from '../../src/core/status/model.js';
import type { StatusStore } from '../../src/core/status/store.js';

/** Isolated status storage for one test, and more "nodes" on it. */
export interface StatusFixture {
  store: StatusStore;
  /** Another store over the same storage: another node. */
  peer(): Promise<StatusStore>;
  cleanup(): Promise<void>;
}

export interface StatusConformanceTarget {
  name: string;
  create(): Promise<StatusFixture>;
  /** The store leaves `state` out of a connection write's result when the caller does not want it (`stateWanted: false`). */
  omitsUnwantedState?: boolean;
}

const AWAY = 5_000;

function user(): string {
  return `u-${randomUUID().slice(0, 8)}`;
}


export function runStatusConformance(target: StatusConformanceTarget): void {
  describe(`status store conformance: ${target.name}`, () => {
    async function harness(opts: Partial<StatusServiceOptions> = {}) {
      const clock = new ManualClock(Date.now());
      const fixture = await target.create();
      const services: StatusService[] = [];
      const problems: string[] = [];
      const make = async (store: StatusStore, nodeId: string): Promise<StatusService> => {
        const s = new StatusService({ store, clock, nodeId, ...opts });
        services.push(s);
        await s.start({ sweep: false });
        return s;
      };
      onTestFinished(async () => {
        await Promise.all(services.map((s) => s.dispose()));
        await fixture.cleanup();
      });
      onTestFinished(() => expect(problems, 'records and events match StatusRecordSchema').toEqual([]));
      const check = (r: StatusRecord): StatusRecord => {
        const res = StatusRecordSchema.safeParse(r);
        if (!res.success) problems.push(`${JSON.stringify(r)}: ${res.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
        return r;
      };
      const a = await make(fixture.store, 'node-a');
      return { clock, fixture, a, node: async (id: string) => make(await fixture.peer(), id), check };
    }

    /** Records the status events of one user as one service receives them. */
    async function watch(svc: StatusService, userId: string, check: (r: StatusRecord) => StatusRecord) {
      const events: StatusRecord[] = [];
      const off = await svc.subscribe((e) => {
        if (e.userId === userId) events.push(check(e));
      });
      onTestFinished(() => off());
      return {
        events,
        /**
         * Makes one more change of the same user (a unique message) and
         * waits for its event: events of a user arrive in order, so
         * everything emitted before the marker has arrived.
         */
        async settle(writer: StatusService = svc): Promise<StatusRecord[]> {
          const marker = `settle-${randomUUID().slice(0, 8)}`;
          const before = await writer.get(userId);
          await writer.set(userId, { status: before.manual ? before.status : 'online', message: marker });
          await waitFor(() => events.some((e) => e.message === marker), { what: `marker event of ${userId}` });
          const i = events.findIndex((e) => e.message === marker);
          const out = events.slice(0, i);
          events.splice(0, i + 1);
          return out;
        },
      };
    }

    const conn = (userId: string, c: string, epoch: number, live: boolean) => ({ userId, conn: c, epoch, live });

    it('a user never seen is offline with lastSeen null, not an error', async () => {
      const { a, check } = await harness();
      const id = user();
      expect(check(await a.get(id))).toEqual({ userId: id, status: 'offline', message: null, manual: false, expiresAt: null, messageExpiresAt: null, lastSeen: null, updatedAt: null, nodeId: null, seq: 0 });
      expect((await a.getMany([id, id])).map((r) => r.userId)).toEqual([id, id]);
    });

    it('a connection change takes no cache slot; a cached user is never left stale by later changes', async () => {
      const { a } = await harness();
      const id = user();
      await a.connection(conn(id, 'r/c', 1, true));
      expect(a.cachedRecord(id)).toBeUndefined();
      expect((await a.get(id)).status).toBe('online');
      expect(a.cachedRecord(id)?.status).toBe('online');
      await a.connection(conn(id, 'r/c', 1, false));
      // Updated in place, or dropped by the feed's invalidation when it came before the write's reply: never stale.
      expect([undefined, 'offline']).toContain(a.cachedRecord(id)?.status);
      expect((await a.get(id)).status).toBe('offline');
      expect(a.cachedRecord(id)?.status).toBe('offline');
    });

    it("a connection write answers the user's state when wanted; not wanted, it may leave it out, and writes all the same", async () => {
      const { fixture, clock } = await harness();
      const id = user() as UserId;
      const base = { now: clock.now(), nodeId: 'node-a', awayAfterMs: 0, userId: id, type: 'conn' as const, conn: 'r/c', epoch: 1 };
      const live = await fixture.store.write({ ...base, live: true });
      expect(live.state?.connected).toBe(true);
      const ended = await fixture.store.write({ ...base, live: false, stateWanted: false });
      if (target.omitsUnwantedState) expect(ended).toEqual({ state: undefined, event: undefined });
      else expect(ended.state?.connected).toBe(false);
      const [after] = await fixture.store.read([id]);
      expect(after?.connected).toBe(false);
      // A repeated change (ignored by the store) answers the same way.
      expect((await fixture.store.write({ ...base, live: false, stateWanted: true })).state?.connected).toBe(false);
    });

    it('connected follows connections: one event per change even when two nodes apply every presence event', async () => {
      const { a, node, clock, check } = await harness();
      const b = await node('node-b');
      const id = user();
      const w = await watch(a, id, check);
      const wb = await watch(b, id, check);
      const t0 = clock.now();
      for (const svc of [a, b]) await svc.connection(conn(id, 'r1/c1', 1, true));
      clock.advance(100);
      for (const svc of [b, a]) await svc.connection(conn(id, 'r2/c2', 1, true));
      clock.advance(100);
      for (const svc of [a, b]) await svc.connection(conn(id, 'r1/c1', 1, false));
      expect((await a.get(id)).status).toBe('online');
      clock.advance(100);
      for (const svc of [b, a]) await svc.connection(conn(id, 'r2/c2', 1, false));
      const left = clock.now();
      const rec = check(await b.get(id));
      expect(rec).toMatchObject({ status: 'offline', lastSeen: left, seq: 2 });
      const events = await w.settle();
      expect(events.map((e) => [e.status, e.seq])).toEqual([
        ['online', 1],
        ['offline', 2],
      ]);
      expect(events[0]).toMatchObject({ lastSeen: t0, nodeId: 'node-a' });
      expect(events[1]).toMatchObject({ lastSeen: left, nodeId: 'node-b' });
      // Delivered to watchers on every node, once each.
      // (the third is the first marker: a message while offline)
      expect((await wb.settle(a)).map((e) => e.status)).toEqual(['online', 'offline', 'offline']);
    });

    it('late, repeated and reordered presence events of a connection change nothing', async () => {
      const { a, node, check } = await harness();
      const b = await node('node-b');
      const id = user();
      const w = await watch(a, id, check);
      await a.connection(conn(id, 'r/c', 1, true));
      await a.connection(conn(id, 'r/c', 1, false));
      // Node b saw the same two events late, and the join twice.
      await b.connection(conn(id, 'r/c', 1, true));
      await b.connection(conn(id, 'r/c', 1, false));
      await b.connection(conn(id, 'r/c', 1, true));
      expect((await a.get(id)).status).toBe('offline');
      // A leave before its join (another order on another node): the join is then stale.
      const id2 = user();
      await b.connection(conn(id2, 'r/x', 3, false));
      await a.connection(conn(id2, 'r/x', 3, true));
      expect((await a.get(id2)).status).toBe('offline');
      // A later incarnation (rejoin, resume) is live again.
      await a.connection(conn(id, 'r/c', 2, true));
      // Another node's read follows once the write's invalidation arrived there.
      await expect.poll(async () => (await b.get(id)).status, { timeout: 2_000 }).toBe('online');
      expect((await w.settle()).map((e) => e.status)).toEqual(['online', 'offline', 'online']);
    });

    it('a manual status applies while connected, expires on its own with exactly one event, whichever nodes sweep', async () => {
      const { a, node, clock, check } = await harness();
      const b = await node('node-b');
      const id = user();
      const w = await watch(b, id, check);
      const set = check(await a.set(id, { status: 'busy', ttlSeconds: 60 }));
      // Not connected: offline, but the manual status is kept and reported.
      expect(set).toMatchObject({ status: 'offline', manual: true, expiresAt: clock.now() + 60_000 });
      await a.connection(conn(id, 'r/c', 1, true));
      expect(check(await b.get(id))).toMatchObject({ status: 'busy', manual: true });
      clock.advance(60_000);
      // Computed when read: already online before any sweep.
      expect((await b.get(id)).status).toBe('online');
      const [ra, rb] = await Promise.all([a.sweepNow(), b.sweepNow()]);
      expect(ra.events + rb.events).toBe(1);
      expect((await a.sweepNow()).events + (await b.sweepNow()).events).toBe(0);
      expect((await w.settle(a)).map((e) => [e.status, e.manual])).toEqual([
        ['busy', true],
        ['online', false],
      ]);
    });

    it('PUT online clears the manual status; invisible is offline and freezes lastSeen', async () => {
      const { a, clock, check } = await harness();
      const id = user();
      const w = await watch(a, id, check);
      await a.connection(conn(id, 'r/c', 1, true));
      clock.advance(1_000);
      const invisibleAt = clock.now();
      expect(await a.set(id, { status: 'offline' })).toMatchObject({ status: 'offline', manual: true, lastSeen: invisibleAt });
      clock.advance(5_000);
      expect((await a.get(id)).lastSeen).toBe(invisibleAt);
      await a.connection(conn(id, 'r/c', 1, false));
      clock.advance(5_000);
      expect((await a.get(id)).lastSeen).toBe(invisibleAt);
      await a.connection(conn(id, 'r/c2', 1, true));
      expect((await a.get(id)).status).toBe('offline');
      const back = check(await a.set(id, { status: 'online' }));
      expect(back).toMatchObject({ status: 'online', manual: false, expiresAt: null, lastSeen: clock.now() });
      expect((await w.settle()).map((e) => e.status)).toEqual(['online', 'offline', 'online']);
    });

    it('PUT online with ttlSeconds keeps a socket-less user connected until it runs out (lastSeen = its end)', async () => {
      const { a, clock, check } = await harness();
      const id = user();
      const w = await watch(a, id, check);
      const start = clock.now();
      expect(check(await a.set(id, { status: 'online', ttlSeconds: 30 }))).toMatchObject({ status: 'online', lastSeen: start });
      clock.advance(29_999);
      expect((await a.sweepNow()).events).toBe(0);
      expect((await a.get(id)).status).toBe('online');
      clock.advance(1);
      expect((await a.sweepNow()).events).toBe(1);
      expect(check(await a.get(id))).toMatchObject({ status: 'offline', lastSeen: start + 30_000 });
      const events = await w.settle();
      expect(events.map((e) => e.status)).toEqual(['online', 'offline']);
      expect(events[1]!.lastSeen).toBe(start + 30_000);
    });

    it('the message is returned whatever the status, with its own expiry and its own event', async () => {
      const { a, clock, check } = await harness();
      const id = user();
      const w = await watch(a, id, check);
      const rec = check(await a.set(id, { status: 'away', message: 'lunch 🍜', messageTtlSeconds: 10, ttlSeconds: 3600 }));
      expect(rec).toMatchObject({ status: 'offline', message: 'lunch 🍜', messageExpiresAt: clock.now() + 10_000 });
      clock.advance(10_000);
      expect((await a.get(id)).message).toBeNull();
      expect((await a.sweepNow()).events).toBe(1);
      // The manual status is still set (and expires later); only the message changed.
      expect(check(await a.get(id))).toMatchObject({ status: 'offline', manual: true, message: null });
      expect((await w.settle()).map((e) => [e.status, e.message])).toEqual([
        ['offline', 'lunch 🍜'],
        ['offline', null],
      ]);
      // Keeping the message (absent) vs clearing it (null); DELETE clears manual and message.
      await a.set(id, { status: 'busy', message: 'x' });
      expect((await a.set(id, { status: 'busy' })).message).toBe('x');
      expect((await a.set(id, { status: 'busy', message: null })).message).toBeNull();
      await a.set(id, { status: 'busy', message: 'y' });
      expect(check(await a.clear(id))).toMatchObject({ manual: false, message: null, expiresAt: null });
    });

    it('automatic away after the configured time without activity; activity brings the user back', async () => {
      const { a, node, clock, check } = await harness({ awayAfterMs: AWAY });
      const b = await node('node-b');
      const id = user();
      const w = await watch(a, id, check);
      await a.connection(conn(id, 'r/c', 1, true));
      clock.advance(AWAY - 1);
      await a.sweepNow();
      expect((await a.get(id)).status).toBe('online');
      clock.advance(1);
      const swept = await Promise.all([a.sweepNow(), b.sweepNow()]);
      expect(swept[0].events + swept[1].events).toBe(1);
      await expect.poll(async () => (await b.get(id)).status, { timeout: 2_000 }).toBe('away');
      await b.activity(id);
      await expect.poll(async () => (await a.get(id)).status, { timeout: 2_000 }).toBe('online');
      // A manual status wins over automatic away.
      await a.set(id, { status: 'busy' });
      clock.advance(AWAY * 2);
      await a.sweepNow();
      expect((await a.get(id)).status).toBe('busy');
      expect((await w.settle()).map((e) => e.status)).toEqual(['online', 'away', 'online', 'busy']);
      // Activity of a user never seen stores nothing.
      const ghost = user();
      await a.activity(ghost);
      expect((await a.get(ghost)).updatedAt).toBeNull();
    });

    it('bad input is invalid_payload and changes nothing', async () => {
      const { a } = await harness();
      const id = user();
      await a.set(id, { status: 'busy', message: 'ok' });
      const before = await a.get(id);
      await expectCode(a.get('a{b}'), 'invalid_payload');
      await expectCode(a.get(''), 'invalid_payload');
      await expectCode(a.set(id, { status: 'sleeping' as 'busy' }), 'invalid_payload');
      await expectCode(a.set(id, { status: 'busy', message: 'x'.repeat(101) }), 'invalid_payload');
      await expectCode(a.set(id, { status: 'busy', message: 'line\nbreak' }), 'invalid_payload');
      for (const ttl of [0, -1, 1.5, 604_801]) await expectCode(a.set(id, { status: 'busy', ttlSeconds: ttl }), 'invalid_payload');
      await expectCode(a.set(id, { status: 'busy', messageTtlSeconds: 5 }), 'invalid_payload');
      await expectCode(a.getMany('ada' as unknown as string[]), 'invalid_payload');
      await expectCode(a.connection({ userId: 'x}', conn: 'c', epoch: 1, live: true }), 'invalid_payload');
      expect(await a.get(id)).toEqual(before);
      expect((await a.set(id, { status: 'busy', message: 'x'.repeat(100), ttlSeconds: 604_800 })).message).toHaveLength(100);
    });

    it('the cache answers repeated reads and every write on any node invalidates it', async () => {
      const { a, node, check } = await harness();
      const b = await node('node-b');
      const id = user();
      await b.get(id);
      await b.get(id);
      expect(b.cacheStats).toMatchObject({ hits: 1, misses: 1 });
      const w = await watch(b, id, check);
      await a.set(id, { status: 'busy', message: 'from a' });
      await waitFor(async () => (await b.get(id)).message === 'from a', { what: 'b sees the write of a' });
      await w.settle(a);
      // A write that changes no effective field (a later expiry) still reaches every cache.
      await a.set(id, { status: 'busy', message: 'from a', ttlSeconds: 100 });
      await expect.poll(async () => (await b.get(id)).expiresAt, { timeout: 2_000 }).not.toBeNull();
    });

    it('a read that raced a write does not put the old value back into the cache', async () => {
      const { fixture, clock, a } = await harness();
      const id = user() as UserId;
      // A store whose next read answers with what it read before a write that then happens.
      let gate: { read: boolean; release: () => void } | undefined;
      const base = await fixture.peer();
      const racing: StatusStore = Object.assign(Object.create(base) as StatusStore, {
        read: async (ids: readonly UserId[]): Promise<Array<StatusState | undefined>> => {
          const old = await base.read(ids);
          const g = gate;
          if (g) await new Promise<void>((r) => ((g.release = r), (g.read = true)));
          return old;
        },
      });
      const b = new StatusService({ store: racing, clock, nodeId: 'node-b' });
      onTestFinished(() => b.dispose());
      await b.start({ sweep: false });
      const seen: number[] = [];
      await b.subscribe((e) => e.userId === id && seen.push(e.seq));
      const g = (gate = { read: false, release: () => {} });
      const slowRead = b.get(id);
      await waitFor(() => g.read, { what: 'the slow read has read' });
      await a.set(id, { status: 'busy', message: 'raced' });
      await waitFor(() => seen.length === 1, { what: 'the invalidation reached b' });
      gate = undefined;
      g.release();
      expect((await slowRead).message).toBeNull(); // the read itself answers what it read
      expect((await b.get(id)).message).toBe('raced'); // but the cache did not keep it
      expect(b.cacheStats.misses).toBe(2);
    });
  });
}
