import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { connect, request, startGateway, waitFor } from 'realtime-message-testing';
import { RealtimeError, type StatusRecord, type StatusWatch, type Timers } from '../src/index.js';
import { ActivityThrottle } from '../src/activity.js';
import { client } from './server.js';

const user = (): string => `u-${randomUUID().slice(0, 8)}`;
const until = <T>(check: () => T, what: string, timeoutMs = 5_000) => waitFor(check, { what, timeoutMs });

/** Records every change a watch reports. */
function changes(w: StatusWatch): StatusRecord[] {
  const seen: StatusRecord[] = [];
  w.on('change', (r) => seen.push(r));
  return seen;
}

describe.each([
  ['memory', () => undefined],
  ['redis', () => inject('redisUrl')],
])('SDK status (%s)', (_name, redisUrl) => {
  const gateway = (opts: Parameters<typeof startGateway>[0] = {}) => startGateway({ redisUrl: redisUrl(), disconnectGraceMs: 0, ...opts });

  it('watchStatus is a live map: one change per status change, in order; setStatus answers the new record', async () => {
    const g = await gateway();
    const [ada, marker] = [user(), user()];
    const watcher = client(g.url);
    const people = await watcher.watchStatus([ada, marker]);
    expect(people.get(ada)).toMatchObject({ userId: ada, status: 'offline', lastSeen: null });
    const seen = changes(people);
    const actor = client(g.url, { userId: ada });
    await actor.joinRoom(`r-${randomUUID()}`, { userId: ada });
    const rec = await actor.setStatus({ status: 'busy', message: 'in a meeting' });
    expect(rec).toMatchObject({ userId: ada, status: 'busy', message: 'in a meeting', manual: true });
    await actor.setStatus({ status: 'online', message: null });
    // Settle: a change of another watched user, made after everything above, arrives after it.
    const m = client(g.url, { userId: marker });
    await m.setStatus({ status: 'online', message: 'marker' });
    await until(() => people.get(marker)?.message === 'marker', 'the marker');
    const ofAda = seen.filter((r) => r.userId === ada);
    expect(ofAda.map((r) => [r.status, r.message])).toEqual([
      ['online', null],
      ['busy', 'in a meeting'],
      ['online', null],
    ]);
    expect(people.get(ada)?.status).toBe('online');
    expect(people.all().map((r) => r.userId)).toEqual([ada, marker]);
  });

  it('after a reconnect the map is read again: a change missed while disconnected arrives as one change', async () => {
    const g = await gateway();
    const ada = user();
    const watcher = client(g.url);
    const people = await watcher.watchStatus([ada]);
    const seen = changes(people);
    let syncs = 0;
    people.on('sync', () => syncs++);
    const writer = await connect(g.url);
    // The watcher's transport drops; meanwhile ada's message changes and no event can reach it.
    watcher.socket.io.engine.close();
    await until(() => (watcher.state !== 'connected' ? true : undefined), 'the watcher disconnected');
    expect((await request(writer, 'status:set', { userId: ada, status: 'online', message: 'missed' })).ok).toBe(true);
    await until(() => people.get(ada)?.message === 'missed', 'the resync');
    expect(syncs).toBe(1);
    expect(seen.map((r) => r.message)).toEqual(['missed']);
    // And the resubscription is live: the next change arrives as an event.
    expect((await request(writer, 'status:set', { userId: ada, status: 'online', message: 'live' })).ok).toBe(true);
    await until(() => people.get(ada)?.message === 'live', 'the live event');
    expect(seen.map((r) => r.message)).toEqual(['missed', 'live']);
  });

  it('watches of the same user share one server subscription, dropped with the last watch', async () => {
    const g = await gateway();
    const ada = user();
    const c = client(g.url);
    const [w1, w2] = [await c.watchStatus([ada]), await c.watchStatus([ada, user()])];
    const watches = async () => (await g.runtime.metrics.statusWatches.get()).values[0]!.value;
    expect(await watches()).toBe(2); // ada once, plus w2's other user
    const seen2 = changes(w2);
    await w1.close();
    expect(await watches()).toBe(2);
    const writer = await connect(g.url);
    expect((await request(writer, 'status:set', { userId: ada, status: 'online', message: 'hi' })).ok).toBe(true);
    await until(() => seen2.find((r) => r.message === 'hi'), 'w2 still watches ada');
    expect(w1.get(ada)?.message).toBeNull(); // closed: no longer updated
    await w2.close();
    await until(async () => ((await watches()) === 0 ? true : undefined), 'no watch left on the server');
  });

  it('rejects bad input with the server code and a RealtimeError', async () => {
    const g = await gateway({ maxWatchedUsersPerSocket: 2 });
    const c = client(g.url, { userId: user() });
    await expect(c.setStatus({ status: 'sleeping' as 'busy' })).rejects.toMatchObject({ name: 'RealtimeError', code: 'invalid_payload' });
    await expect(c.watchStatus([])).rejects.toBeInstanceOf(RealtimeError);
    await expect(c.watchStatus(['a', 'b', 'c'])).rejects.toMatchObject({ code: 'forbidden' });
    // The refused watch released its users: two fit again.
    expect((await c.watchStatus(['a', 'b'])).all()).toHaveLength(2);
  });

  it('trackActivity keeps a user online under automatic away; activity stopped, the user turns away', async () => {
    const g = await gateway({ status: { awayAfterMs: 600, sweepIntervalMs: 50 } });
    const ada = user();
    const c = client(g.url, { userId: ada, activityIntervalMs: 100 });
    await c.joinRoom(`r-${randomUUID()}`, { userId: ada });
    const people = await client(g.url).watchStatus([ada]);
    await until(() => people.get(ada)?.status === 'online', 'online');
    const target = new EventTarget();
    const stop = c.trackActivity(target);
    const startedAt = Date.now();
    while (Date.now() - startedAt < 1_200) {
      target.dispatchEvent(new Event('keydown'));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(people.get(ada)?.status).toBe('online');
    stop();
    await until(() => people.get(ada)?.status === 'away', 'automatic away', 5_000);
  });
});

describe('ActivityThrottle', () => {
  it('sends the first report at once and merges the rest of the interval into one trailing report', () => {
    let now = 0;
    const timers: Array<{ fn: () => void; at: number }> = [];
    const fake: Timers = { setTimeout: (fn, ms) => timers.push({ fn, at: now + ms }), clearTimeout: () => {} };
    const sent: number[] = [];
    const t = new ActivityThrottle(() => sent.push(now), 1_000, fake, () => now);
    t.report();
    for (now = 10; now < 900; now += 100) t.report();
    expect(sent).toEqual([0]);
    expect(timers).toHaveLength(1);
    now = timers[0]!.at;
    timers[0]!.fn();
    expect(sent).toEqual([0, 1_000]);
    now = 5_000;
    t.report();
    expect(sent).toEqual([0, 1_000, 5_000]);
  });
});
