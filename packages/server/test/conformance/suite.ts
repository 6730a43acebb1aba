import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { expectCode } from './expect-code.js';
import { TestEngine, waitFor, type EngineFixture } from 'realtime-message-testing';
import {
  ManualClock,
  PresenceError,
  PresenceEventSchema,
  PresenceService,
  RoomSnapshotSchema,
  type JoinRequest,
  type JoinResult,
  type JoinUpToDateResult,
  type PresenceEngine,
  type PresenceEvent,
  type PresenceOptions,
  type RoomSnapshot,
} from '../../src/index.js';

export type { EngineFixture };

export interface ConformanceTarget {
  name: string;
  /** A fixture over fresh, isolated storage. */
  create(): Promise<EngineFixture>;
}

const TTL = 1_000;
const GRACE = 300;
const LOOKBACK = 2_000;

interface Harness {
  clock: ManualClock;
  fixture: EngineFixture;
  /** The fixture's engine behind a TestEngine (call counts), as the first service sees it. */
  engine: TestEngine;
  svc: CheckedService;
  /** Another service (node) over the same storage and clock. */
  node(): Promise<CheckedService>;
}


function room(): string {
  return `room-${randomUUID()}`;
}

/**
 * Shape problems found in what the engine built (events, snapshots), checked
 * with the protocol's strict schemas: the Lua scripts build these by hand.
 * A listener cannot fail a test by throwing, so problems are collected and
 * asserted at settle points and when the test ends.
 */
function shapeChecker() {
  const problems: string[] = [];
  const check = (what: string, schema: typeof PresenceEventSchema | typeof RoomSnapshotSchema, value: unknown): void => {
    const res = schema.safeParse(value);
    if (!res.success) problems.push(`${what} ${JSON.stringify(value)}: ${res.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  };
  onTestFinished(() => expect(problems, 'events and snapshots match the protocol schemas').toEqual([]));
  return {
    problems,
    event: (e: unknown) => check('event', PresenceEventSchema, e),
    snapshot: (s: unknown) => check('snapshot', RoomSnapshotSchema, s),
  };
}

type ShapeChecker = ReturnType<typeof shapeChecker>;

/** The real service; every snapshot it returns (alone or in a join result) is checked against RoomSnapshotSchema. */
class CheckedService extends PresenceService {
  constructor(
    opts: PresenceOptions,
    readonly shapes: ShapeChecker,
  ) {
    super(opts);
  }
  override async join(input: JoinRequest & { knownSeq?: undefined }): Promise<JoinResult>;
  override async join(input: JoinRequest): Promise<JoinResult | JoinUpToDateResult>;
  override async join(input: JoinRequest): Promise<JoinResult | JoinUpToDateResult> {
    const res = await super.join(input);
    if (!res.upToDate) this.shapes.snapshot(res.snapshot);
    return res;
  }
  override async snapshot(roomId: string): Promise<RoomSnapshot> {
    const snap = await super.snapshot(roomId);
    this.shapes.snapshot(snap);
    return snap;
  }
}

/** Records the events of a room as one service delivers them, each checked against PresenceEventSchema. */
async function record(svc: CheckedService, roomId: string) {
  const shapes = svc.shapes;
  const events: PresenceEvent[] = [];
  const unsubscribe = await svc.subscribe(roomId, (e) => {
    shapes.event(e);
    events.push(e);
  });
  onTestFinished(() => unsubscribe());
  return {
    events,
    async waitCount(n: number): Promise<PresenceEvent[]> {
      await waitFor(() => events.length >= n, { what: `${n} events in ${roomId} (have ${events.length})` });
      expect(shapes.problems).toEqual([]);
      return events;
    },
    /**
     * Makes one more change and waits for its event. Events of a room arrive
     * in order, so everything emitted before the marker has arrived by then:
     * "exactly once" assertions need no sleep.
     */
    async settle(): Promise<PresenceEvent[]> {
      const m = await svc.join({ roomId, userId: `marker-${randomUUID()}` });
      await waitFor(() => events.some((e) => e.connId === m.connId), { what: 'marker event' });
      expect(shapes.problems).toEqual([]);
      const i = events.findIndex((e) => e.connId === m.connId);
      return events.slice(0, i);
    },
  };
}

export function runEngineConformance(target: ConformanceTarget): void {
  describe(`presence engine conformance: ${target.name}`, () => {
    async function harness(opts: Partial<PresenceOptions> = {}): Promise<Harness> {
      const clock = new ManualClock(Date.now());
      const fixture = await target.create();
      const shapes = shapeChecker();
      const services: CheckedService[] = [];
      const make = (engine: PresenceEngine): CheckedService => {
        const s = new CheckedService({ engine, clock, ttlMs: TTL, disconnectGraceMs: GRACE, reaperLookbackMs: LOOKBACK, ...opts }, shapes);
        services.push(s);
        return s;
      };
      const engine = new TestEngine(fixture.engine);
      const svc = make(engine);
      onTestFinished(async () => {
        await Promise.all(services.map((s) => s.dispose()));
        await fixture.cleanup();
      });
      return { clock, fixture, engine, svc, node: async () => make(new TestEngine(await fixture.peer())) };
    }

    // -- join, members, snapshots ---------------------------------------

    it('join creates a connection at epoch 1 and returns a snapshot that includes it', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const res = await svc.join({ roomId: r, userId: 'ada', state: { mic: true } });
      expect(res.epoch).toBe(1);
      expect(res.resumed).toBe(false);
      expect(res.connId).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.snapshot).toEqual({
        roomId: r,
        seq: 1,
        members: [{ userId: 'ada', connIds: [res.connId] }],
        connections: [{ connId: res.connId, userId: 'ada', state: { mic: true }, epoch: 1, joinedAt: clock.now(), lastSeen: clock.now() }],
      });
      expect(await svc.snapshot(r)).toEqual(res.snapshot);
    });

    it('every join reaches subscribers once, with seq rising by one, and snapshots carry that seq', async () => {
      const { svc } = await harness();
      const r = room();
      const rec = await record(svc, r);
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const b = await svc.join({ roomId: r, userId: 'bob', state: { typing: false } });
      const events = await rec.settle();
      expect(events).toEqual([
        expect.objectContaining({ type: 'join', roomId: r, userId: 'ada', connId: a.connId, epoch: 1, seq: 1, state: {} }),
        expect.objectContaining({ type: 'join', roomId: r, userId: 'bob', connId: b.connId, epoch: 1, seq: 2, state: { typing: false } }),
      ]);
      expect(b.snapshot.seq).toBe(2);
      expect(b.snapshot.connections.map((c) => c.userId).sort()).toEqual(['ada', 'bob']);
    });

    it('members are distinct users: a user with two connections is one member with two connIds', async () => {
      const { svc } = await harness();
      const r = room();
      const t1 = await svc.join({ roomId: r, userId: 'ada' });
      const t2 = await svc.join({ roomId: r, userId: 'ada' });
      await svc.join({ roomId: r, userId: 'bob' });
      const snap = await svc.snapshot(r);
      expect(snap.members).toEqual([
        { userId: 'ada', connIds: [t1.connId, t2.connId].sort() },
        { userId: 'bob', connIds: [expect.any(String)] },
      ]);
      expect(snap.connections).toHaveLength(3);
    });

    it('rooms are independent: own seq, own members', async () => {
      const { svc } = await harness();
      const [r1, r2] = [room(), room()];
      await svc.join({ roomId: r1, userId: 'ada' });
      await svc.join({ roomId: r1, userId: 'bob' });
      const c = await svc.join({ roomId: r2, userId: 'ada' });
      expect(c.snapshot.seq).toBe(1);
      expect(c.snapshot.members.map((m) => m.userId)).toEqual(['ada']);
      expect((await svc.snapshot(r1)).seq).toBe(2);
      expect(await svc.snapshot(room())).toEqual(expect.objectContaining({ seq: 0, members: [], connections: [] }));
    });

    // -- heartbeats and state -------------------------------------------

    it('patches shallow-merge, null deletes a key, and the update event carries the full state', async () => {
      const { svc } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada', state: { mic: true, cam: false, profile: { name: 'Ada' } } });
      const rec = await record(svc, r);
      const hb = await svc.heartbeat({ roomId: r, connId: a.connId, epoch: a.epoch, patchState: { cam: true, mic: null, typing: 'yes', tags: [] } });
      expect(hb.epoch).toBe(1);
      const [ev] = await rec.waitCount(1);
      expect(ev).toEqual(expect.objectContaining({ type: 'update', connId: a.connId, seq: 2, epoch: 1, state: { cam: true, profile: { name: 'Ada' }, typing: 'yes', tags: [] } }));
      // ...and the patch that made it (issue 12: patch-mode sockets get only this).
      expect(ev).toEqual(expect.objectContaining({ patch: { cam: true, mic: null, typing: 'yes', tags: [] } }));
      const snap = await svc.snapshot(r);
      expect(snap.connections[0]!.state).toEqual({ cam: true, profile: { name: 'Ada' }, typing: 'yes', tags: [] });
      expect(snap.seq).toBe(2);
    });

    it('a heartbeat without a patch refreshes lastSeen and the deadline but emits no event', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const rec = await record(svc, r);
      clock.advance(TTL - 100);
      await svc.heartbeat({ roomId: r, connId: a.connId, epoch: a.epoch });
      clock.advance(TTL - 100); // 2*TTL - 200 after join: alive only thanks to the heartbeat
      const snap = await svc.snapshot(r);
      expect(snap.connections[0]?.lastSeen).toBe(clock.now() - (TTL - 100));
      expect(snap.seq).toBe(1);
      expect(await svc.reapNow()).toBe(0);
      expect(await rec.settle()).toEqual([]);
    });

    it('a patch that makes the state too large is refused with payload_too_large and changes nothing', async () => {
      const { svc } = await harness({ maxStateBytes: 100 });
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada', state: { note: 'x'.repeat(60) } });
      // 40 more bytes alone are fine, merged they are not.
      await expectCode(svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1, patchState: { more: 'y'.repeat(40) } }), 'payload_too_large');
      await expectCode(svc.join({ roomId: r, userId: 'bob', state: { note: 'x'.repeat(200) } }), 'payload_too_large');
      const snap = await svc.snapshot(r);
      expect(snap.connections.map((c) => c.state)).toEqual([{ note: 'x'.repeat(60) }]);
      expect(snap.seq).toBe(1);
      // Replacing the big key with a small one fits: the check is on the merged state.
      await svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1, patchState: { note: null, more: 'y'.repeat(40) } });
      expect((await svc.snapshot(r)).connections[0]!.state).toEqual({ more: 'y'.repeat(40) });
    });

    it('the state size limit counts UTF-8 bytes exactly as JSON.stringify serializes them', async () => {
      const { svc } = await harness({ maxStateBytes: 30 });
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const exact = { 'k/é': 'ü'.repeat(9) + 'x' }; // {"k/é":"ü…üx"}: 1 + 6 + 1 + 20 + 1 = 30 bytes
      expect(Buffer.byteLength(JSON.stringify(exact))).toBe(30);
      await svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1, patchState: exact });
      await expectCode(svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1, patchState: { 'k/é': 'ü'.repeat(9) + 'xx' } }), 'payload_too_large');
      expect((await svc.snapshot(r)).connections[0]!.state).toEqual(exact);
    });

    // -- fencing ---------------------------------------------------------

    it('stale and unknown epochs are refused and change nothing', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada', state: { v: 1 } });
      const resumed = await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      expect(resumed.epoch).toBe(2);
      const before = await svc.snapshot(r);
      clock.advance(10);
      const t = { roomId: r, connId: a.connId };
      await expectCode(svc.heartbeat({ ...t, epoch: 1 }), 'stale_epoch');
      await expectCode(svc.heartbeat({ ...t, epoch: 1, patchState: { v: 2 } }), 'stale_epoch');
      await expectCode(svc.heartbeat({ ...t, epoch: 3 }), 'stale_epoch');
      await expectCode(svc.leave({ ...t, epoch: 1 }), 'stale_epoch');
      await expectCode(svc.disconnect({ ...t, epoch: 1 }), 'stale_epoch');
      expect(await svc.snapshot(r)).toEqual(before);
      await svc.heartbeat({ ...t, epoch: 2, patchState: { v: 3 } });
      expect((await svc.snapshot(r)).connections[0]!.state).toEqual({ v: 3 });
    });

    it('writes to an unknown connection are not_joined', async () => {
      const { svc } = await harness();
      const r = room();
      await expectCode(svc.heartbeat({ roomId: r, connId: 'nope', epoch: 1 }), 'not_joined');
      await expectCode(svc.leave({ roomId: r, connId: 'nope', epoch: 1 }), 'not_joined');
      await expectCode(svc.disconnect({ roomId: r, connId: 'nope', epoch: 1 }), 'not_joined');
    });

    // -- leave -------------------------------------------------------------

    it('leave emits one leave (reason leave); leaving again is a no-op; later writes are not_joined', async () => {
      const { svc } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const rec = await record(svc, r);
      await svc.leave({ roomId: r, connId: a.connId, epoch: 1 });
      await svc.leave({ roomId: r, connId: a.connId, epoch: 1 });
      await expectCode(svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1 }), 'not_joined');
      expect((await svc.snapshot(r)).connections).toEqual([]);
      const events = await rec.settle();
      expect(events).toEqual([expect.objectContaining({ type: 'leave', connId: a.connId, reason: 'leave', seq: 2, epoch: 1 })]);
    });

    // -- resume ------------------------------------------------------------

    it('resume of a live connection: same connId, higher epoch, no leave/join, one update; the old epoch is fenced', async () => {
      const { svc } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada', state: { mic: true } });
      const rec = await record(svc, r);
      const again = await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      expect(again).toEqual(expect.objectContaining({ connId: a.connId, epoch: 2, resumed: true }));
      expect(again.snapshot.connections).toEqual([expect.objectContaining({ connId: a.connId, epoch: 2, state: { mic: true } })]);
      const withState = await svc.join({ roomId: r, userId: 'ada', connId: a.connId, state: { mic: false } });
      expect(withState.epoch).toBe(3);
      await expectCode(svc.heartbeat({ roomId: r, connId: a.connId, epoch: 2 }), 'stale_epoch');
      const events = await rec.settle();
      expect(events.map((e) => [e.type, e.epoch, e.seq])).toEqual([
        ['update', 2, 2],
        ['update', 3, 3],
      ]);
      expect(events[1]).toEqual(expect.objectContaining({ state: { mic: false } }));
    });

    it("a resume's update carries the patch from the stored state to the new one ({} when the state is kept)", async () => {
      const { svc } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada', state: { mic: true, cam: false, name: 'Ada' } });
      const rec = await record(svc, r);
      await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      await svc.join({ roomId: r, userId: 'ada', connId: a.connId, state: { mic: true, cam: true, hand: 'up' } });
      const events = await rec.settle();
      expect(events.map((e) => (e.type === 'update' ? [e.seq, e.patch, e.state] : e.type))).toEqual([
        [2, {}, { mic: true, cam: false, name: 'Ada' }],
        [3, { cam: true, hand: 'up', name: null }, { mic: true, cam: true, hand: 'up' }],
      ]);
    });

    it('a resume with knownSeq = seq before it is upToDate (no snapshot); an older knownSeq or a non-resume gets the snapshot', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada', state: { v: 1 } });
      const rec = await record(svc, r);
      const up = await svc.join({ roomId: r, userId: 'ada', connId: a.connId, knownSeq: 1 });
      expect(up).toEqual({ connId: a.connId, epoch: 2, resumed: true, upToDate: true, seq: 2 });
      // Bob joins (seq 3): a client that holds seq 2 missed it and gets the full snapshot.
      const b = await svc.join({ roomId: r, userId: 'bob' });
      const stale = await svc.join({ roomId: r, userId: 'ada', connId: a.connId, knownSeq: 2 });
      expect(stale.upToDate).toBeUndefined();
      expect(stale.snapshot?.seq).toBe(4);
      expect(stale.snapshot?.members.map((m) => m.userId)).toEqual(['ada', 'bob']);
      // A knownSeq from the future is not current either.
      const future = await svc.join({ roomId: r, userId: 'ada', connId: a.connId, knownSeq: 9 });
      expect(future.snapshot?.seq).toBe(5);
      // Current again (seq 5 → its resume is 6).
      expect((await svc.join({ roomId: r, userId: 'ada', connId: a.connId, knownSeq: 5, state: { v: 2 } })).upToDate).toBe(true);
      // Not a resume: bob left, so his connId rejoins (join event) and gets the snapshot whatever knownSeq says.
      await svc.leave({ roomId: r, connId: b.connId, epoch: b.epoch });
      const rejoined = await svc.join({ roomId: r, userId: 'bob', connId: b.connId, knownSeq: 7 });
      expect(rejoined.snapshot?.seq).toBe(8);
      expect(rejoined.resumed).toBe(false);
      // knownSeq without connId is a plain join.
      expect((await svc.join({ roomId: r, userId: 'cy', knownSeq: 8 })).snapshot?.seq).toBe(9);
      clock.advance(1);
      const events = await rec.settle();
      expect(events.map((e) => [e.type, e.seq])).toEqual([
        ['update', 2], ['join', 3], ['update', 4], ['update', 5], ['update', 6], ['leave', 7], ['join', 8], ['join', 9],
      ]);
      expect(events[4]).toEqual(expect.objectContaining({ state: { v: 2 }, patch: { v: 2 } }));
    });

    it('resume by another user is forbidden and changes nothing', async () => {
      const { svc } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const before = await svc.snapshot(r);
      await expectCode(svc.join({ roomId: r, userId: 'mallory', connId: a.connId }), 'forbidden');
      expect(await svc.snapshot(r)).toEqual(before);
      await svc.leave({ roomId: r, connId: a.connId, epoch: 1 });
      // Also after it left: the epoch record keeps the owner.
      await expectCode(svc.join({ roomId: r, userId: 'mallory', connId: a.connId }), 'forbidden');
    });

    it('resume of an unknown connId gives a fresh connection with a new id', async () => {
      const { svc } = await harness();
      const r = room();
      const res = await svc.join({ roomId: r, userId: 'ada', connId: 'never-seen' });
      expect(res.connId).not.toBe('never-seen');
      expect(res).toEqual(expect.objectContaining({ epoch: 1, resumed: false }));
    });

    it('a left connId rejoins within the lookback with a higher epoch and a join event', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      await svc.leave({ roomId: r, connId: a.connId, epoch: 1 });
      clock.advance(LOOKBACK - 10);
      await svc.reapNow();
      const rec = await record(svc, r);
      const again = await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      expect(again).toEqual(expect.objectContaining({ connId: a.connId, epoch: 2, resumed: false }));
      expect(await rec.settle()).toEqual([expect.objectContaining({ type: 'join', connId: a.connId, epoch: 2, seq: 3 })]);
    });

    it('epoch records are forgotten after the lookback, then the connId is never reused and storage is empty', async () => {
      const { svc, clock, fixture } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada', state: { big: 'x'.repeat(100) } });
      await svc.leave({ roomId: r, connId: a.connId, epoch: 1 });
      expect(await fixture.isEmpty()).toBe(false);
      clock.advance(LOOKBACK + 1);
      await svc.reapNow();
      expect(await fixture.isEmpty()).toBe(true);
      const again = await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      expect(again.connId).not.toBe(a.connId);
      expect(again.epoch).toBe(1);
    });

    // -- disconnect grace --------------------------------------------------

    it('a disconnect keeps the connection present during grace; a resume then shows no flicker and fences the old socket', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const rec = await record(svc, r);
      await svc.disconnect({ roomId: r, connId: a.connId, epoch: 1 });
      await expectCode(svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1 }), 'not_joined');
      clock.advance(GRACE - 50);
      expect(await svc.reapNow()).toBe(0);
      expect((await svc.snapshot(r)).connections.map((c) => c.connId)).toEqual([a.connId]);
      const resumed = await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      expect(resumed).toEqual(expect.objectContaining({ connId: a.connId, epoch: 2, resumed: true }));
      // The old socket's late cleanup and heartbeats are fenced.
      await expectCode(svc.disconnect({ roomId: r, connId: a.connId, epoch: 1 }), 'stale_epoch');
      await expectCode(svc.leave({ roomId: r, connId: a.connId, epoch: 1 }), 'stale_epoch');
      clock.advance(GRACE * 2);
      expect(await svc.reapNow()).toBe(0);
      await svc.heartbeat({ roomId: r, connId: a.connId, epoch: 2 });
      const events = await rec.settle();
      expect(events.map((e) => e.type)).toEqual(['update']);
    });

    it('when grace ends without a resume, members get exactly one leave with reason disconnect', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const rec = await record(svc, r);
      await svc.disconnect({ roomId: r, connId: a.connId, epoch: 1 });
      await svc.disconnect({ roomId: r, connId: a.connId, epoch: 1 }); // repeated cleanup: no second deadline
      clock.advance(GRACE);
      expect((await svc.snapshot(r)).connections).toEqual([]); // past grace: not reported, even before the reaper
      expect(await svc.reapNow()).toBe(1);
      expect(await svc.reapNow()).toBe(0);
      expect(await rec.settle()).toEqual([expect.objectContaining({ type: 'leave', connId: a.connId, reason: 'disconnect', seq: 2 })]);
    });

    it('with grace 0 a disconnect leaves at once with reason disconnect', async () => {
      const { svc } = await harness({ disconnectGraceMs: 0 });
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const rec = await record(svc, r);
      await svc.disconnect({ roomId: r, connId: a.connId, epoch: 1 });
      expect((await svc.snapshot(r)).connections).toEqual([]);
      expect(await rec.settle()).toEqual([expect.objectContaining({ type: 'leave', reason: 'disconnect' })]);
    });

    // -- expiry ------------------------------------------------------------

    it('a silent connection is never reported once TTL passed, and the reaper emits exactly one leave (timeout)', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const b = await svc.join({ roomId: r, userId: 'bob' });
      const rec = await record(svc, r);
      clock.advance(TTL - 1);
      await svc.heartbeat({ roomId: r, connId: b.connId, epoch: 1 });
      expect((await svc.snapshot(r)).connections).toHaveLength(2);
      clock.advance(1);
      expect((await svc.snapshot(r)).connections.map((c) => c.connId)).toEqual([b.connId]);
      expect(await svc.reapNow()).toBe(1);
      expect(await svc.reapNow()).toBe(0);
      expect(await rec.settle()).toEqual([expect.objectContaining({ type: 'leave', connId: a.connId, userId: 'ada', reason: 'timeout', epoch: 1, seq: 3 })]);
    });

    it('a heartbeat after the TTL is not_joined; the timeout leave is emitted once, not again by the reaper', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const rec = await record(svc, r);
      clock.advance(TTL);
      await expectCode(svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1 }), 'not_joined');
      await expectCode(svc.heartbeat({ roomId: r, connId: a.connId, epoch: 1 }), 'not_joined');
      expect(await svc.reapNow()).toBe(0);
      expect(await rec.settle()).toEqual([expect.objectContaining({ type: 'leave', connId: a.connId, reason: 'timeout' })]);
      // A resume now is a rejoin: join event, higher epoch.
      const again = await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      expect(again).toEqual(expect.objectContaining({ connId: a.connId, epoch: 2, resumed: false }));
    });

    it('resuming an expired but not yet reaped connection emits its timeout leave, then a join', async () => {
      const { svc, clock } = await harness();
      const r = room();
      const a = await svc.join({ roomId: r, userId: 'ada' });
      const rec = await record(svc, r);
      clock.advance(TTL + 5);
      const again = await svc.join({ roomId: r, userId: 'ada', connId: a.connId });
      expect(again).toEqual(expect.objectContaining({ connId: a.connId, epoch: 2, resumed: false }));
      expect(await svc.reapNow()).toBe(0);
      const events = await rec.settle();
      expect(events.map((e) => [e.type, e.epoch, e.seq, e.type === 'leave' ? e.reason : ''])).toEqual([
        ['leave', 1, 2, 'timeout'],
        ['join', 2, 3, ''],
      ]);
    });

    it('concurrent reapers on several nodes emit exactly one leave per expired connection', async () => {
      const h = await harness();
      const nodes = [h.svc, await h.node(), await h.node()];
      const rooms = [room(), room(), room(), room()];
      const conns = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const res = await nodes[i % 3]!.join({ roomId: rooms[i % 4]!, userId: `u${i}` });
        conns.add(res.connId);
      }
      const recs = await Promise.all(rooms.map((r, i) => record(nodes[i % 3]!, r)));
      h.clock.advance(TTL + 1);
      // Three reapers at once (a second call on one service would share its pass).
      const counts = await Promise.all(nodes.map((n) => n.reapNow()));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(40);
      const leaves = (await Promise.all(recs.map((r) => r.settle()))).flat();
      expect(leaves).toHaveLength(40);
      expect(new Set(leaves.map((e) => e.connId))).toEqual(conns);
      expect(leaves.every((e) => e.type === 'leave' && e.reason === 'timeout')).toBe(true);
    });

    // -- multi-node events -------------------------------------------------

    it('two nodes on one storage see each other\u2019s events, in seq order', async () => {
      const h = await harness();
      const b = await h.node();
      const r = room();
      const recA = await record(h.svc, r);
      const recB = await record(b, r);
      const x = await h.svc.join({ roomId: r, userId: 'ada' });
      const y = await b.join({ roomId: r, userId: 'bob' });
      await b.heartbeat({ roomId: r, connId: y.connId, epoch: 1, patchState: { typing: true } });
      await h.svc.leave({ roomId: r, connId: x.connId, epoch: 1 });
      const [ea, eb] = await Promise.all([recA.waitCount(4), recB.waitCount(4)]);
      expect(ea.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      expect(eb).toEqual(ea);
      expect(ea.map((e) => e.type)).toEqual(['join', 'join', 'update', 'leave']);
    });

    it('seq has no gaps and no duplicates under concurrent writers on two nodes', async () => {
      const h = await harness();
      const b = await h.node();
      const r = room();
      const rec = await record(h.svc, r);
      const nodes = [h.svc, b];
      const joined = await Promise.all(Array.from({ length: 20 }, (_, i) => nodes[i % 2]!.join({ roomId: r, userId: `u${i}` })));
      await Promise.all(
        joined.flatMap((j, i) => [
          nodes[i % 2]!.heartbeat({ roomId: r, connId: j.connId, epoch: 1, patchState: { n: i } }),
          nodes[(i + 1) % 2]!.heartbeat({ roomId: r, connId: j.connId, epoch: 1, patchState: { m: i } }),
        ]),
      );
      const events = await rec.waitCount(60);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect((await h.svc.snapshot(r)).seq).toBe(60);
    });

    // -- lifecycle and validation -----------------------------------------

    it('the reaper timer runs by itself every reaperIntervalMs, and dispose stops it', async () => {
      const h = await harness({ reaperIntervalMs: 20 });
      const r = room();
      const rec = await record(h.svc, r);
      await h.svc.join({ roomId: r, userId: 'ada' });
      h.svc.start();
      h.svc.start(); // idempotent
      h.clock.advance(TTL + 1);
      await waitFor(() => rec.events.some((e) => e.type === 'leave'), { what: 'leave from the reaper timer' });
      const before = h.engine.calls.reap;
      await waitFor(() => h.engine.calls.reap >= before + 2, { what: 'periodic reaps' });
      await h.svc.dispose();
      const after = h.engine.calls.reap;
      // Five reaper intervals with no call: the timer is gone (a stopped timer cannot be awaited).
      await new Promise((res) => setTimeout(res, 100));
      expect(h.engine.calls.reap).toBe(after);
      await expectCode(h.svc.join({ roomId: r, userId: 'bob' }), 'internal');
    });

    it('dispose drops subscriptions: no event reaches a disposed service\u2019s listeners', async () => {
      const h = await harness();
      const other = await h.node();
      const r = room();
      const seen: PresenceEvent[] = [];
      await h.svc.subscribe(r, (e) => seen.push(e));
      const watch = await record(other, r);
      await other.join({ roomId: r, userId: 'ada' });
      await waitFor(() => seen.length === 1, { what: 'first event' });
      await h.svc.dispose();
      await other.join({ roomId: r, userId: 'bob' });
      await watch.settle();
      expect(seen).toHaveLength(1);
    });

    it('malformed ids, states and epochs are refused with invalid_payload before they reach the engine', async () => {
      const h = await harness();
      const reached = () => (['join', 'heartbeat', 'leave', 'disconnect', 'snapshot'] as const).reduce((n, op) => n + h.engine.calls[op], 0);
      const r = room();
      const bad: Array<[string, Promise<unknown>]> = [
        ['brace in room', h.svc.join({ roomId: 'a{b}', userId: 'ada' })],
        ['empty room', h.svc.join({ roomId: '', userId: 'ada' })],
        ['long user', h.svc.join({ roomId: r, userId: 'u'.repeat(129) })],
        ['control char', h.svc.join({ roomId: r, userId: 'a\u0000b' })],
        ['lone surrogate', h.svc.join({ roomId: r, userId: 'a\ud800' })],
        ['number id', h.svc.join({ roomId: 42 as unknown as string, userId: 'ada' })],
        ['state array', h.svc.join({ roomId: r, userId: 'ada', state: [] as unknown as Record<string, never> })],
        ['proto key', h.svc.join({ roomId: r, userId: 'ada', state: JSON.parse('{"__proto__":{"x":1}}') as Record<string, never> })],
        ['deep', h.svc.join({ roomId: r, userId: 'ada', state: JSON.parse('{"a":' + '['.repeat(40) + ']'.repeat(40) + '}') as Record<string, never> })],
        ['NaN', h.svc.join({ roomId: r, userId: 'ada', state: { n: NaN } })],
        ['function', h.svc.join({ roomId: r, userId: 'ada', state: { f: (() => 1) as unknown as null } })],
        ['bad connId', h.svc.join({ roomId: r, userId: 'ada', connId: '{x}' })],
        ['epoch 0', h.svc.heartbeat({ roomId: r, connId: 'c', epoch: 0 })],
        ['epoch float', h.svc.heartbeat({ roomId: r, connId: 'c', epoch: 1.5 })],
        ['epoch string', h.svc.heartbeat({ roomId: r, connId: 'c', epoch: '1' as unknown as number })],
        ['patch not object', h.svc.heartbeat({ roomId: r, connId: 'c', epoch: 1, patchState: 'x' as unknown as Record<string, never> })],
        ['leave bad room', h.svc.leave({ roomId: '}', connId: 'c', epoch: 1 })],
        ['disconnect no target', h.svc.disconnect(null as unknown as { roomId: string; connId: string; epoch: number })],
        ['snapshot bad room', h.svc.snapshot('\u0007')],
      ];
      for (const [what, p] of bad) {
        const err = await p.then(() => undefined, (e: unknown) => e);
        expect(err, what).toBeInstanceOf(PresenceError);
        expect((err as PresenceError).code, what).toBe('invalid_payload');
        expect((err as PresenceError).message.length, what).toBeGreaterThan(5);
      }
      expect(reached()).toBe(0);
      expect(Object.prototype).not.toHaveProperty('x');
    });
  });
}
