import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { PresenceError, type ChannelPublication, type ErrorCode } from 'realtime-message-protocol';
import { redisClient, startGateway, waitFor } from 'realtime-message-testing';
import { RealtimeError, type PublicationContext, type RealtimeClient, type SubscribedContext, type Subscription } from '../src/index.js';
import { client } from './server.js';

const channel = (): string => `chat:${randomUUID().slice(0, 8)}`;
const until = <T>(check: () => T, what: string, timeoutMs = 5_000) => waitFor(check, { what, timeoutMs });

/** Everything a subscription emits, in order. */
function record(sub: Subscription): { pubs: PublicationContext[]; subscribed: SubscribedContext[]; log: string[] } {
  const out = { pubs: [] as PublicationContext[], subscribed: [] as SubscribedContext[], log: [] as string[] };
  sub.on('publication', (p) => (out.pubs.push(p), out.log.push(`pub:${p.offset}${p.recovered ? ':recovered' : ''}`)));
  sub.on('subscribed', (s) => (out.subscribed.push(s), out.log.push(`subscribed:${s.wasRecovering}:${s.recovered}`)));
  sub.on('state', (c) => out.log.push(`state:${c.newState}:${c.reason}`));
  sub.on('unsubscribed', (u) => out.log.push(`unsubscribed:${u.reason}`));
  return out;
}

/** Publishes a marker and waits until `pubs` holds it: everything published before it has been applied by then. */
async function settle(writer: Subscription, pubs: PublicationContext[]): Promise<number> {
  const { offset } = await writer.publish({ marker: true });
  await until(() => pubs.find((p) => p.offset === offset), `the marker at offset ${offset}`);
  return offset;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Replaces the client's handler of a pushed channel event with `wrap(handler)` (to lose a publication, as a lost pub/sub message would). */
function intercept<E extends 'channel:publication' | 'channel:resubscribe'>(c: RealtimeClient, event: E, wrap: (h: (p: ChannelPublication & { reason: 'gap' }) => void) => (p: ChannelPublication & { reason: 'gap' }) => void): void {
  const socket = c.socket as unknown as { listeners(e: string): Array<(p: never) => void>; off(e: string, h: unknown): void; on(e: string, h: unknown): void };
  const [h] = socket.listeners(event);
  socket.off(event, h);
  socket.on(event, wrap(h as never));
}

describe.each([
  ['memory', () => undefined],
  ['redis', () => inject('redisUrl')],
])('SDK channels (%s)', (_name, redisUrl) => {
  const gateway = (opts: Parameters<typeof startGateway>[0] = {}) => startGateway({ redisUrl: redisUrl(), disconnectGraceMs: 0, ...opts });

  it('publish and receive: every subscriber gets every publication once, in order, with its position', async () => {
    const g = await gateway();
    const ch = channel();
    const [a, b] = [await client(g.url).subscribe(ch), await client(g.url).subscribe(ch)];
    expect(a.state).toBe('subscribed');
    const epoch = a.position!.epoch;
    expect(a.position).toEqual({ offset: 0, epoch });
    const [ra, rb] = [record(a), record(b)];
    const sent = await Promise.all(range(1, 10).map((i) => (i % 2 ? a : b).publish({ i }, { tags: { n: String(i) } })));
    expect(sent.map((s) => s.offset).sort((x, y) => x - y)).toEqual(range(1, 10));
    expect(new Set(sent.map((s) => s.epoch))).toEqual(new Set([epoch]));
    await settle(a, ra.pubs);
    await until(() => rb.pubs.find((p) => p.offset === 11), 'the marker at b');
    for (const r of [ra, rb]) {
      expect(r.pubs.map((p) => p.offset)).toEqual(range(1, 11));
      expect(r.pubs.every((p) => !p.recovered && p.channel === ch && p.epoch === epoch)).toBe(true);
    }
    const first = rb.pubs.find((p) => p.offset === sent[0]!.offset)!;
    expect(first).toMatchObject({ data: { i: 1 }, tags: { n: '1' }, info: { user: '' } });
    expect(b.position).toEqual({ offset: 11, epoch });
  });

  it('a publication without history (skipHistory) is emitted with offset 0 in its place, and the position does not move', async () => {
    const g = await gateway();
    const ch = channel();
    const sub = await client(g.url).subscribe(ch);
    const r = record(sub);
    const channels = g.runtime.channels!;
    const first = await channels.publish(ch, { n: 1 });
    expect(await channels.publish(ch, { typing: true }, { skipHistory: true })).toEqual({ offset: 0, epoch: first.epoch });
    await channels.publish(ch, { n: 2 });
    await until(() => r.pubs.length === 3 || undefined, 'three publications');
    expect(r.pubs.map((p) => [p.offset, p.data, p.recovered])).toEqual([[1, { n: 1 }, false], [0, { typing: true }, false], [2, { n: 2 }, false]]);
    expect(sub.position).toEqual({ offset: 2, epoch: first.epoch });
    // Neither a gap nor a duplicate: the subscription stayed subscribed, without a resubscribe.
    expect(r.log.filter((l) => l.startsWith('subscribed') || l.startsWith('state'))).toEqual([]);
  });

  it('history: the newest ten, and forward from a position', async () => {
    const g = await gateway();
    const ch = channel();
    const sub = await client(g.url).subscribe(ch);
    for (let i = 1; i <= 12; i++) await sub.publish({ i });
    const newest = await sub.history({ limit: 10, reverse: true });
    expect(newest.publications.map((p) => p.offset)).toEqual(range(3, 12).reverse());
    expect(newest).toMatchObject({ offset: 12, epoch: sub.position!.epoch });
    const fwd = await sub.history({ since: { offset: 9, epoch: newest.epoch }, limit: -1 });
    expect(fwd.publications.map((p) => p.data)).toEqual([{ i: 10 }, { i: 11 }, { i: 12 }]);
    expect((await sub.history()).publications).toEqual([]); // the server's default limit 0: the position only
    await expect(sub.history({ since: { offset: 1, epoch: 'madeup01' }, limit: 5 })).rejects.toMatchObject({ code: 'stale_epoch' });
  });

  it('recovers after a dropped transport while another client keeps publishing: exactly once, in order', async () => {
    const g = await gateway();
    const ch = channel();
    const receiver = client(g.url);
    const sub = receiver.createSubscription(ch);
    const r = record(sub);
    await sub.subscribe();
    const writer = await client(g.url).subscribe(ch);
    let stop = false;
    let published = 0;
    const publishing = (async () => {
      while (!stop) {
        await writer.publish({ n: ++published });
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    await until(() => r.pubs.length >= 5, 'five live publications');
    receiver.socket.io.engine.close(); // the transport drops, as on a network change
    await until(() => (receiver.state !== 'connected' ? true : undefined), 'the receiver disconnected');
    const missedFrom = published;
    await until(() => published >= missedFrom + 5, 'five more publications meanwhile');
    await until(() => sub.state === 'subscribed' && receiver.state === 'connected', 'resubscribed', 10_000);
    await until(() => r.pubs.length >= missedFrom + 8, 'live publications after the recovery');
    stop = true;
    await publishing;
    const last = await settle(writer, r.pubs);
    expect(r.pubs.map((p) => p.offset)).toEqual(range(1, last));
    expect(r.pubs.map((p) => p.data)).toEqual([...range(1, last - 1).map((n) => ({ n })), { marker: true }]);
    expect(r.pubs.some((p) => p.recovered)).toBe(true);
    expect(r.subscribed).toEqual([
      { channel: ch, wasRecovering: false, recovered: false, offset: 0, epoch: sub.position!.epoch },
      expect.objectContaining({ wasRecovering: true, recovered: true }),
    ]);
    // Order of what the app saw: subscribed (recovered), then the recovered publications, then live ones.
    const again = r.log.indexOf('subscribed:true:true');
    expect(r.log.slice(r.log.indexOf('state:subscribing:disconnect'), again + 1)).toEqual(['state:subscribing:disconnect', 'state:subscribed:subscribe', 'subscribed:true:true']);
    const after = r.log.slice(again + 1).filter((e) => e.startsWith('pub:'));
    const firstLive = after.findIndex((e) => !e.endsWith(':recovered'));
    expect(after.slice(firstLive).every((e) => !e.endsWith(':recovered'))).toBe(true);
    expect(sub.position).toEqual({ offset: last, epoch: r.pubs[0]!.epoch });
  });

  it('a position of another epoch is not recovered: subscribed says so, nothing partial, and it starts at the current position', async () => {
    const g = await gateway();
    const ch = channel();
    const writer = await client(g.url).subscribe(ch);
    for (let i = 1; i <= 3; i++) await writer.publish({ i });
    const sub = client(g.url).createSubscription(ch, { since: { offset: 2, epoch: 'madeup01' } });
    expect(sub.position).toEqual({ offset: 2, epoch: 'madeup01' });
    const r = record(sub);
    await sub.subscribe();
    expect(r.subscribed).toEqual([{ channel: ch, wasRecovering: true, recovered: false, offset: 3, epoch: writer.position!.epoch }]);
    expect(r.pubs).toEqual([]);
    expect(sub.position).toEqual({ offset: 3, epoch: writer.position!.epoch });
    await settle(writer, r.pubs);
    expect(r.pubs.map((p) => p.offset)).toEqual([4]);
    // A persisted position of this epoch recovers what came after it.
    const later = client(g.url).createSubscription(ch, { since: { offset: 1, epoch: writer.position!.epoch } });
    const rl = record(later);
    await later.subscribe();
    expect(rl.log).toEqual(['state:subscribing:subscribe', 'state:subscribed:subscribe', 'subscribed:true:true', 'pub:2:recovered', 'pub:3:recovered', 'pub:4:recovered']);
  });

  it('a lost live publication is never skipped: the gap resubscribes from the position and recovers it', async () => {
    const g = await gateway();
    const ch = channel();
    const c = client(g.url);
    const sub = c.createSubscription(ch);
    const r = record(sub);
    await sub.subscribe();
    intercept(c, 'channel:publication', (h) => (p) => (p.offset === 3 ? undefined : h(p))); // offset 3 is lost on its way
    const writer = await client(g.url).subscribe(ch);
    for (let i = 1; i <= 5; i++) await writer.publish({ i });
    const last = await settle(writer, r.pubs);
    expect(r.pubs.map((p) => p.offset)).toEqual(range(1, last));
    expect(r.log).toContain('state:subscribing:gap');
    expect(r.pubs.find((p) => p.offset === 3)!.recovered).toBe(true);
    expect(r.subscribed.at(-1)).toMatchObject({ wasRecovering: true, recovered: true });
  });

  it('channel:resubscribe from the server: it subscribes again from its position (ending the old subscription first if needed)', async () => {
    const g = await gateway();
    const ch = channel();
    const c = client(g.url);
    const sub = c.createSubscription(ch);
    const r = record(sub);
    await sub.subscribe();
    const writer = await client(g.url).subscribe(ch);
    await writer.publish({ i: 1 });
    await until(() => r.pubs.length === 1, 'the first publication');
    // As if the server had ended it (it still holds it here: the SDK meets already_subscribed and ends it first).
    const socket = c.socket as unknown as { listeners(e: string): Array<(n: unknown) => void> };
    socket.listeners('channel:resubscribe')[0]!({ channel: ch, reason: 'gap' });
    await until(() => r.log.includes('subscribed:true:true'), 'resubscribed');
    await writer.publish({ i: 2 });
    await settle(writer, r.pubs);
    expect(r.pubs.map((p) => p.offset)).toEqual([1, 2, 3]);
    expect(r.log.filter((e) => e.startsWith('state:'))).toEqual(['state:subscribing:subscribe', 'state:subscribed:subscribe', 'state:subscribing:resubscribe', 'state:subscribed:subscribe']);
  });

  it('channel:unsubscribed (the server API ends a user\'s subscription) ends it for good (reason server), without subscribing again', async () => {
    const g = await gateway();
    const ch = channel();
    const ada = `ada-${randomUUID().slice(0, 8)}`;
    const c = client(g.url, { userId: ada });
    await c.joinRoom(`r-${randomUUID()}`, { userId: ada }); // open mode: the channel user is the one the socket joined as
    const sub = c.createSubscription(ch);
    const r = record(sub);
    await sub.subscribe();
    // The application ends ada's subscriptions to the channel (what the server API's /api/unsubscribe does).
    expect(await g.runtime.local.unsubscribeUser(ada, ch)).toBe(1);
    await until(() => (sub.state === 'unsubscribed' ? true : undefined), 'ended by the server');
    expect(r.log.slice(-2)).toEqual(['state:unsubscribed:server', 'unsubscribed:server']);
    expect(c.getSubscription(ch)).toBeUndefined();
    c.socket.io.engine.close();
    await until(() => (c.state !== 'connected' ? true : undefined), 'disconnected');
    await until(() => (c.state === 'connected' ? true : undefined), 'reconnected');
    const other = await client(g.url).subscribe(ch);
    await other.publish({ after: 'reconnect' });
    await new Promise((res) => setTimeout(res, 100));
    expect(r.log.filter((e) => e.startsWith('subscribed') || e.startsWith('pub'))).toEqual(['subscribed:false:false']);
    expect(await client(g.url).subscribe(ch).then(() => 'ok')).toBe('ok');
  });

  it('errors are RealtimeErrors with the server code; one subscription per channel and client', async () => {
    const g = await gateway({ maxChannelsPerSocket: 2 });
    const c = client(g.url);
    const err = await c.subscribe('a{b}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RealtimeError);
    expect(err).toMatchObject({ name: 'RealtimeError', code: 'invalid_payload' });
    expect(c.getSubscription('a{b}')).toBeUndefined(); // a refused subscribe leaves nothing behind
    const ch = channel();
    const sub = await c.subscribe(ch);
    expect(c.getSubscription(ch)).toBe(sub);
    expect(() => c.createSubscription(ch)).toThrow(expect.objectContaining({ code: 'already_subscribed' }));
    await expect(sub.subscribe()).rejects.toMatchObject({ code: 'already_subscribed' });
    await expect(sub.publish('x'.repeat(70_000))).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(sub.history({ limit: 1_000 })).rejects.toMatchObject({ code: 'invalid_payload' });
    await c.subscribe(channel());
    await expect(c.subscribe(channel())).rejects.toMatchObject({ code: 'forbidden' }); // maxChannelsPerSocket
    // Publishing needs a subscription by default: another client's subscription object that never subscribed is refused.
    await expect(client(g.url).createSubscription(ch).publish({ x: 1 })).rejects.toMatchObject({ code: 'forbidden' });
    const off = await startGateway({ channels: false });
    await expect(client(off.url).subscribe(channel())).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('unsubscribe: no more publications, unsubscribed once, and the channel can be subscribed again at once', async () => {
    const g = await gateway();
    const ch = channel();
    const c = client(g.url);
    const sub = c.createSubscription(ch);
    const r = record(sub);
    await sub.subscribe();
    const writer = await client(g.url).subscribe(ch);
    await writer.publish({ i: 1 });
    await until(() => r.pubs.length === 1, 'one publication');
    await sub.unsubscribe();
    await sub.unsubscribe();
    expect(sub.state).toBe('unsubscribed');
    expect(r.log.filter((e) => e.startsWith('unsubscribed'))).toEqual(['unsubscribed:unsubscribe']);
    expect(c.getSubscription(ch)).toBeUndefined();
    await expect(sub.subscribe()).rejects.toMatchObject({ code: 'closed' });
    // A new one, right away, from the old position.
    const again = c.createSubscription(ch, { since: sub.position! });
    const ra = record(again);
    const unsubscribing = again.unsubscribe(); // idle: nothing to end on the server
    await unsubscribing;
    const third = c.createSubscription(ch, { since: sub.position! });
    const rt = record(third);
    await writer.publish({ i: 2 });
    await third.subscribe();
    await settle(writer, rt.pubs);
    expect(ra.pubs).toEqual([]);
    expect(r.pubs.map((p) => p.offset)).toEqual([1]);
    expect(rt.pubs.map((p) => [p.offset, p.recovered])).toEqual([
      [2, true],
      [3, false],
    ]);
    // Unsubscribe then subscribe at once (no await in between): the new subscribe waits for the server to end the old one.
    const ending = third.unsubscribe();
    const fourth = await c.subscribe(ch);
    await ending;
    const rf = record(fourth);
    await settle(writer, rf.pubs);
    expect(rf.pubs.map((p) => p.offset)).toEqual([4]);
  });

  it('publish and history during a resubscribe wait for it instead of failing', async () => {
    const g = await gateway();
    const ch = channel();
    const c = client(g.url);
    const sub = await c.subscribe(ch);
    const r = record(sub);
    c.socket.io.engine.close();
    await until(() => (sub.state === 'subscribing' ? true : undefined), 'subscribing again');
    const [pos, hist] = await Promise.all([sub.publish({ after: 'drop' }), sub.history({ limit: 5 })]);
    expect(pos.offset).toBe(1);
    expect(hist.offset).toBeLessThanOrEqual(1);
    await until(() => r.pubs.find((p) => p.offset === 1), 'its own publication');
    expect(r.pubs.map((p) => p.data)).toEqual([{ after: 'drop' }]);
  });

  it('a refused resubscribe: transient codes are reported and retried with backoff; a permanent one ends the subscription', async () => {
    let refuse: { code: ErrorCode; times: number } | undefined;
    const gate = {
      name: 'gate',
      onSubscribe: async () => {
        if (refuse && refuse.times-- > 0) throw new PresenceError(refuse.code, `refused (${refuse.code})`);
      },
    };
    const g = await gateway({ extensions: [gate] });
    const ch = channel();
    const c = client(g.url);
    const sub = c.createSubscription(ch);
    const r = record(sub);
    const errors: string[] = [];
    sub.on('error', (e) => errors.push(e.code));
    await sub.subscribe();
    const writer = await client(g.url).subscribe(ch);
    refuse = { code: 'unavailable', times: 2 };
    c.socket.io.engine.close();
    await writer.publish({ i: 1 });
    await until(() => r.log.includes('subscribed:true:true'), 'resubscribed after two refusals', 10_000);
    expect(errors).toEqual(['unavailable', 'unavailable']);
    await settle(writer, r.pubs);
    expect(r.pubs.map((p) => [p.offset, p.recovered])).toEqual([
      [1, true],
      [2, false],
    ]);
    refuse = { code: 'forbidden', times: 1 };
    c.socket.io.engine.close();
    await until(() => (sub.state === 'unsubscribed' ? true : undefined), 'ended');
    expect(errors).toEqual(['unavailable', 'unavailable', 'forbidden']);
    expect(r.log.slice(-2)).toEqual(['state:unsubscribed:error', 'unsubscribed:error']);
    expect(c.getSubscription(ch)).toBeUndefined();
    await expect(sub.publish({ i: 3 })).rejects.toMatchObject({ code: 'forbidden' }); // no longer subscribed on the server
  });

  it('shutdown ends every subscription (unsubscribed, reason shutdown)', async () => {
    const g = await gateway();
    const c = client(g.url);
    const sub = c.createSubscription(channel());
    const r = record(sub);
    await sub.subscribe();
    await c.shutdown();
    expect(sub.state).toBe('unsubscribed');
    expect(r.log.at(-1)).toBe('unsubscribed:shutdown');
    await expect(c.subscribe(channel())).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('SDK channels, Redis storage reset', () => {
  it('a stream whose meta record was lost gets a new epoch: the subscription resubscribes and surfaces recovered: false', async () => {
    const keyPrefix = `sdkch:${randomUUID().slice(0, 8)}:`;
    const g = await startGateway({ redisUrl: inject('redisUrl'), keyPrefix });
    const redis = redisClient({ url: inject('redisUrl') });
    onTestFinished(() => void redis.disconnect());
    const ch = channel();
    const c = client(g.url);
    const sub = c.createSubscription(ch);
    const r = record(sub);
    await sub.subscribe();
    const writer = await client(g.url).subscribe(ch);
    await writer.publish({ i: 1 });
    await until(() => r.pubs.length === 1, 'one publication');
    const epoch = sub.position!.epoch;
    await redis.del(`${keyPrefix}{ch:${ch}}:meta`, `${keyPrefix}{ch:${ch}}:stream`);
    await writer.publish({ i: 2 }).catch(() => undefined); // the writer may itself be resubscribing
    await until(() => r.subscribed.find((s) => s.wasRecovering), 'the resubscribe after the reset', 10_000);
    expect(r.subscribed.at(-1)).toMatchObject({ wasRecovering: true, recovered: false });
    expect(sub.position!.epoch).not.toBe(epoch);
    expect(r.log).toContain('state:subscribing:resubscribe');
  });
});
