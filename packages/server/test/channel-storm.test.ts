import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { ChannelPublication, Publication, StreamPosition } from 'realtime-message-protocol';
import { connect, request, startGateway, waitFor, type Client } from 'realtime-message-testing';
import { ChannelNamespaces, DEFAULT_NAMESPACE } from '../src/index.js';

/**
 * A recovery storm (issue 14): subscribers on two nodes are kicked again and
 * again while a publisher on each node keeps publishing; each comes back with
 * its last position. Every subscriber must end with every publication exactly
 * once, in order: gaps and duplicates are counted, not just asserted at the
 * first event.
 */
interface Tally {
  position: StreamPosition | undefined;
  applied: number;
  gaps: number;
  duplicates: number;
  resubscribes: number;
  recovered: number;
  notRecovered: number;
}

function apply(t: Tally, p: Publication, epoch: string): void {
  if (!t.position || t.position.epoch !== epoch) {
    t.position = { offset: p.offset, epoch };
    t.applied++;
    return;
  }
  if (p.offset <= t.position.offset) t.duplicates++;
  else {
    if (p.offset !== t.position.offset + 1) t.gaps++;
    t.position = { offset: p.offset, epoch };
    t.applied++;
  }
}

/** A subscriber that resubscribes from its last position on every (re)connect; a kick while it reconnects is skipped. */
async function subscriber(url: string, channel: string, t: Tally, errors: unknown[]): Promise<{ kick: () => boolean; idle: () => boolean }> {
  let socket: Client | undefined;
  let opening: Promise<void> | undefined;
  const open = async (): Promise<void> => {
    const s = await connect(url);
    socket = s;
    // Live publications that arrive before the ack are held: the ack's publications come first.
    const early: ChannelPublication[] = [];
    let acked = false;
    s.on('channel:publication', (p) => (acked ? apply(t, p, p.epoch) : early.push(p)));
    const ack = await request(s, 'channel:subscribe', { channel, ...(t.position ? { since: t.position } : {}) });
    if (!ack.ok) throw new Error(`subscribe failed: ${JSON.stringify(ack)}`);
    t.resubscribes++;
    if (t.position) ack.recovered ? t.recovered++ : t.notRecovered++;
    for (const p of ack.publications as Publication[]) apply(t, p, ack.epoch);
    if (!t.position) t.position = { offset: ack.offset, epoch: ack.epoch };
    acked = true;
    for (const p of early) apply(t, p, p.epoch);
  };
  await open();
  return {
    kick: () => {
      if (opening) return false;
      socket!.disconnect();
      // A failed resubscribe is counted (the test asserts none), never left unhandled.
      opening = open()
        .catch((err: unknown) => void errors.push(err))
        .finally(() => (opening = undefined));
      return true;
    },
    idle: () => opening === undefined,
  };
}

describe('channels: recovery storm on two nodes (Redis)', () => {
  it('subscribers kicked repeatedly during continuous publishing end with every publication once, in order', { timeout: 60_000 }, async () => {
    const keyPrefix = `storm:${randomUUID().slice(0, 8)}:`;
    // History long enough for any subscriber's absence: a recovery must never be refused here.
    const namespaces = ChannelNamespaces.fromConfig({ namespaces: [{ ...DEFAULT_NAMESPACE, name: 'storm', history_size: 100_000 }] });
    const opts = { redisUrl: inject('redisUrl'), keyPrefix, channels: { namespaces } };
    const [a, b] = [await startGateway(opts), await startGateway(opts)];
    const channel = `storm:${randomUUID().slice(0, 8)}`;
    const tallies: Tally[] = Array.from({ length: 20 }, () => ({ position: undefined, applied: 0, gaps: 0, duplicates: 0, resubscribes: 0, recovered: 0, notRecovered: 0 }));
    const errors: unknown[] = [];
    const subs = await Promise.all(tallies.map((t, i) => subscriber(i % 2 ? a.url : b.url, channel, t, errors)));
    // The application publishes on both nodes (runtime.channels), as fast as each publish returns, with a 2 ms pause.
    let published = 0;
    let stop = false;
    const loops = [a, b].map(async (node, i) => {
      while (!stop) {
        await node.runtime.channels!.publish(channel, { from: i, n: published });
        published++;
        await new Promise((r) => setTimeout(r, 2));
      }
    });
    const deadline = Date.now() + 4_000;
    let kicked = 0;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 40));
      if (subs[Math.floor(Math.random() * subs.length)]!.kick()) kicked++;
    }
    stop = true;
    await Promise.all(loops);
    const top = (await a.runtime.channels!.history(channel)).offset;
    expect(top).toBe(published);
    // Every resubscribe has finished (none is left in flight for the teardown to cut) and every subscriber is at the top.
    await waitFor(() => (subs.every((x) => x.idle()) && tallies.every((t) => t.position?.offset === top) ? true : undefined), {
      timeoutMs: 15_000,
      what: 'every subscriber idle at the top offset',
    });
    expect(errors).toEqual([]);
    const sum = (k: keyof Omit<Tally, 'position'>) => tallies.reduce((n, t) => n + t[k], 0);
    console.info(
      `recovery storm: ${published} publications, ${kicked} kicks, ${sum('resubscribes')} subscribes (${sum('recovered')} recovered, ${sum('notRecovered')} not), ` +
        `${sum('applied')} applied, gaps ${sum('gaps')}, duplicates ${sum('duplicates')}`,
    );
    expect(sum('gaps')).toBe(0);
    expect(sum('duplicates')).toBe(0);
    expect(sum('notRecovered')).toBe(0);
    // Each subscriber applied every publication once: the first subscribe started at offset 0.
    for (const t of tallies) expect(t.applied).toBe(top);
    expect(kicked).toBeGreaterThan(20);
  });
});
