import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { startRedis } from 'realtime-message-testing';
import { decodeMessage } from '../src/engines/redis/channel-broker.js';
import {
  ChannelFeeds,
  ChannelNamespaces,
  Hub,
  KeySpace,
  RedisBroker,
  channelSources,
  type ChannelFeedsOptions,
  type ChannelPublication,
  type ReadCommand,
  ChannelService,
  ChannelsConfigError,
  MemoryBroker,
  MemoryEngine,
  PresenceService,
  parseDuration,
  channelParts,
  type Channel,
  type ChannelFeedItem,
  type ChannelPresencePort,
  type ClientInfo,
} from '../src/index.js';

describe('channels config (Centrifugo shape)', () => {
  it('reads a v6 file, its channel section, and a v5 file alike', () => {
    const ns = { name: 'chat', presence: true, history_size: 50, history_ttl: '5m', allow_subscribe_for_client: true };
    const v6 = ChannelNamespaces.fromConfig({ client: { insecure: true }, channel: { without_namespace: { presence: true }, namespaces: [ns], history_meta_ttl: '48h' } });
    const section = ChannelNamespaces.fromConfig({ without_namespace: { presence: true }, namespaces: [ns], history_meta_ttl: '48h' });
    const v5 = ChannelNamespaces.fromConfig({ token_hmac_secret_key: 'x', presence: true, namespaces: [ns], history_meta_ttl: '48h' });
    for (const c of [v6, section, v5]) {
      expect(c.names.sort()).toEqual(['', 'chat']);
      expect(c.unknown).toBe('refuse');
      expect(c.lookup('chat:1')?.options).toMatchObject({ name: 'chat', presence: true, history: true, historySize: 50, historyTtlMs: 300_000, historyMetaTtlMs: 48 * 3_600_000, allowSubscribeForClient: true, allowPublishForClient: false });
      expect(c.lookup('lobby')?.options).toMatchObject({ name: '', presence: true, history: false, historyMetaTtlMs: 48 * 3_600_000 });
      expect(c.lookup('news:1')).toBeUndefined();
      expect(c.warnings).toEqual([]);
    }
  });

  it('no config: every channel of every namespace is open, with history 100 for 300 s (SPEC §8)', () => {
    const d = ChannelNamespaces.defaults();
    expect(d.unknown).toBe('default');
    for (const ch of ['lobby', 'any:thing']) {
      const { options, parts } = d.lookup(ch)!;
      expect(options).toMatchObject({ presence: true, joinLeave: true, history: true, historySize: 100, historyTtlMs: 300_000, historyMetaTtlMs: 720 * 3_600_000 });
      for (const action of ['subscribe', 'publish', 'history', 'presence'] as const) {
        expect(ChannelNamespaces.permits(options, parts, action, { user: '', subscribed: true }), action).toBe(true);
      }
      expect(ChannelNamespaces.permits(options, parts, 'publish', { user: 'ada' }), 'publish needs a subscription').toBe(false);
    }
  });

  it('refuses what the server cannot run with, naming the option; warns about unsupported options', () => {
    const bad: Array<[unknown, RegExp]> = [
      [[], /JSON object/],
      [{ namespaces: {} }, /namespaces must be an array/],
      [{ namespaces: [{ name: 'x' }] }, /namespaces\[0\]\.name/],
      [{ namespaces: [{ name: 'chat' }, { name: 'chat' }] }, /defined twice/],
      [{ without_namespace: { history_size: 10 } }, /set together/],
      [{ without_namespace: { history_size: -1, history_ttl: '1s' } }, /history_size/],
      [{ without_namespace: { history_size: 10, history_ttl: '1 minute' } }, /history_ttl must be a duration/],
      [{ without_namespace: { history_size: 10, history_ttl: '10m', history_meta_ttl: '5m' } }, /must be longer than history_ttl/],
      [{ without_namespace: { force_recovery: true } }, /force_recovery needs history/],
      [{ without_namespace: { channel_regex: '(' } }, /channel_regex/],
      [{ without_namespace: { presence: 'yes' } }, /without_namespace\.presence/],
      [{ without_namespace: { force_recovery_mode: 'cache' } }, /stream/],
    ];
    for (const [config, message] of bad) expect(() => ChannelNamespaces.fromConfig(config), JSON.stringify(config)).toThrow(message);
    expect(() => ChannelNamespaces.fromConfig([])).toThrow(ChannelsConfigError);
    const c = ChannelNamespaces.fromConfig({ without_namespace: { presence: true, allowed_delta_types: ['fossil'] } });
    expect(c.warnings).toEqual(['without_namespace.allowed_delta_types is not supported and is ignored']);
  });

  it('parses Go durations and seconds', () => {
    expect(parseDuration('300s', 'x')).toBe(300_000);
    expect(parseDuration('1h30m', 'x')).toBe(5_400_000);
    expect(parseDuration('1.5s', 'x')).toBe(1_500);
    expect(parseDuration('250ms', 'x')).toBe(250);
    expect(parseDuration(2, 'x')).toBe(2_000);
    expect(parseDuration('0', 'x')).toBe(0);
    for (const bad of ['5', 's', '5 s', '-5s', -1, Number.NaN]) expect(() => parseDuration(bad, 'x'), String(bad)).toThrow(ChannelsConfigError);
  });

  it('permissions follow Centrifugo: client, subscriber, anonymous, user-limited and private channels', () => {
    const c = ChannelNamespaces.fromConfig({
      namespaces: [
        { name: 'pub', allow_subscribe_for_client: true, allow_publish_for_client: true, allow_history_for_client: true, allow_presence_for_client: true, history_size: 1, history_ttl: 1, presence: true },
        { name: 'anon', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, allow_publish_for_subscriber: true, allow_publish_for_anonymous: true },
        { name: 'dm', allow_user_limited_channels: true },
      ],
    });
    const can = (ch: string, action: 'subscribe' | 'publish' | 'history' | 'presence', user: string, subscribed = false) => {
      const { options, parts } = c.lookup(ch)!;
      return ChannelNamespaces.permits(options, parts, action, { user, subscribed });
    };
    expect(can('pub:x', 'subscribe', 'ada')).toBe(true);
    expect(can('pub:x', 'subscribe', '')).toBe(false);
    expect(can('pub:x', 'publish', 'ada')).toBe(true);
    expect(can('pub:x', 'history', '')).toBe(false);
    expect(can('anon:x', 'subscribe', '')).toBe(true);
    expect(can('anon:x', 'publish', '', false)).toBe(false);
    expect(can('anon:x', 'publish', '', true)).toBe(true);
    expect(can('anon:x', 'presence', 'ada', true)).toBe(false);
    expect(can('dm:talk#ada,bob', 'subscribe', 'bob')).toBe(true);
    expect(can('dm:talk#ada,bob', 'subscribe', 'eve')).toBe(false);
    expect(can('dm:talk', 'subscribe', 'ada')).toBe(false);
    expect(can('$pub:secret', 'subscribe', 'ada')).toBe(false);
    expect(channelParts('$pub:secret').namespace).toBe('pub');
  });

  it('channel_regex applies to the name after the namespace', async () => {
    const svc = new ChannelService({ broker: new MemoryBroker(), namespaces: ChannelNamespaces.fromConfig({ namespaces: [{ name: 'ids', channel_regex: '^[0-9]+$' }] }) });
    onTestFinished(() => svc.dispose());
    expect((await svc.publish('ids:42', 1)).offset).toBe(1);
    await expect(svc.publish('ids:abc', 1)).rejects.toMatchObject({ code: 'invalid_payload' });
    await expect(svc.publish('news:1', 1)).rejects.toMatchObject({ code: 'invalid_payload', reason: 'unknown_channel' });
    // Channels without a namespace always have one (without_namespace), as in Centrifugo.
    expect((await svc.publish('other', 1)).offset).toBe(1);
  });
});

/** The port the composition root wires: a channel's presence is the presence room of the same name. */
function presencePort(presence: PresenceService): ChannelPresencePort {
  return {
    async presence(channel) {
      const snap = await presence.snapshot(channel);
      return Object.fromEntries(snap.connections.map((c): [string, ClientInfo] => [c.connId, { user: c.userId, client: c.connId }]));
    },
    async stats(channel) {
      const snap = await presence.snapshot(channel);
      return { numClients: snap.connections.length, numUsers: snap.members.length };
    },
  };
}

describe('ChannelService', () => {
  it("a channel's presence is the presence room of the same name (real memory presence engine)", async () => {
    const presence = new PresenceService({ engine: new MemoryEngine() });
    const svc = new ChannelService({ broker: new MemoryBroker(), presence: presencePort(presence), namespaces: ChannelNamespaces.fromConfig({ namespaces: [{ name: 'chat', presence: true, allow_presence_for_subscriber: true }, { name: 'quiet' }] }) });
    onTestFinished(async () => {
      await svc.dispose();
      await presence.dispose();
    });
    const a = await presence.join({ roomId: 'chat:1', userId: 'ada' });
    await presence.join({ roomId: 'chat:1', userId: 'ada' });
    await presence.join({ roomId: 'chat:1', userId: 'bob' });
    expect(await svc.presenceStats('chat:1')).toEqual({ numClients: 3, numUsers: 2 });
    const clients = await svc.presence('chat:1', { user: 'eve', subscribed: true });
    expect(Object.keys(clients)).toHaveLength(3);
    expect(clients[a.connId]).toEqual({ user: 'ada', client: a.connId });
    await expect(svc.presence('chat:1', { user: 'eve', subscribed: false })).rejects.toMatchObject({ code: 'forbidden' });
    await expect(svc.presence('quiet:1')).rejects.toMatchObject({ code: 'forbidden', reason: 'not_available' });
    expect(await svc.presenceStats('chat:empty')).toEqual({ numClients: 0, numUsers: 0 });
  });

  it('manualStart holds live publications until start(), then hands them on in order after the result', async () => {
    const svc = new ChannelService({ broker: new MemoryBroker() });
    onTestFinished(() => svc.dispose());
    const first = await svc.publish('c', 1);
    const got: ChannelFeedItem[] = [];
    const sub = await svc.subscribe('c', (e) => got.push(e), { since: { offset: 0, epoch: first.epoch }, manualStart: true });
    expect(sub).toMatchObject({ recovered: true, wasRecovering: true, offset: 1, epoch: first.epoch });
    expect(sub.publications).toEqual([{ offset: 1, data: 1 }]);
    await svc.publish('c', 2);
    await svc.publish('c', 3);
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([]);
    sub.start();
    sub.start();
    expect(got.map((e) => e.type === 'publication' && e.publication.offset)).toEqual([2, 3]);
    expect(sub.position).toEqual({ offset: 3, epoch: first.epoch });
    await sub.unsubscribe();
    await svc.publish('c', 4);
    await new Promise((r) => setTimeout(r, 5));
    expect(got).toHaveLength(2);
    expect(sub.closed).toBe(true);
  });

  it('a subscriber that holds more than maxBuffered before start() ends as unrecoverable, never with a gap', async () => {
    const svc = new ChannelService({ broker: new MemoryBroker() });
    onTestFinished(() => svc.dispose());
    const got: ChannelFeedItem[] = [];
    const sub = await svc.subscribe('c', (e) => got.push(e), { manualStart: true, maxBuffered: 3 });
    for (let i = 0; i < 5; i++) await svc.publish('c', i);
    await new Promise((r) => setTimeout(r, 5));
    sub.start();
    expect(got).toEqual([{ type: 'unrecoverable', channel: 'c', reason: 'gap', position: { offset: 0, epoch: sub.epoch } }]);
    expect(sub.closed).toBe(true);
  });

  it('the last subscriber of a channel on a node unsubscribes at the broker; dispose ends every subscription', async () => {
    const broker = new MemoryBroker();
    const svc = new ChannelService({ broker });
    const s1 = await svc.subscribe('c' as Channel, () => {});
    const s2 = await svc.subscribe('c', () => {});
    await s1.unsubscribe();
    await svc.publish('c', 1);
    await svc.dispose();
    expect(s2.closed).toBe(true);
    await expect(svc.publish('c', 2)).rejects.toMatchObject({ code: 'internal' });
    await expect(svc.subscribe('c', () => {})).rejects.toMatchObject({ code: 'internal' });
  });

  it('storage failures become unavailable (unreachable) or internal, with the broker kind', async () => {
    const broker = new MemoryBroker();
    const failing = Object.assign(Object.create(broker) as MemoryBroker, {
      read: async () => {
        throw new Error('ECONNREFUSED 127.0.0.1:1');
      },
      publish: async () => {
        throw new Error('boom');
      },
      isUnavailable: (err: unknown) => err instanceof Error && err.message.startsWith('ECONNREFUSED'),
    });
    const svc = new ChannelService({ broker: failing });
    onTestFinished(() => svc.dispose());
    await expect(svc.history('c')).rejects.toMatchObject({ code: 'unavailable' });
    await expect(svc.publish('c', 1)).rejects.toMatchObject({ code: 'internal' });
    await expect(svc.subscribe('c', () => {})).rejects.toMatchObject({ code: 'unavailable' });
  });
});

describe('MemoryBroker', () => {
  it('forgets channels unused for history_meta_ttl without a timer, a few per call', async () => {
    const broker = new MemoryBroker();
    const t = { historySize: 10, historyTtlMs: 100, metaTtlMs: 1_000 };
    for (let i = 0; i < 20; i++) await broker.publish({ ...t, channel: `c${i}` as Channel, body: { data: i }, encoded: '', newEpoch: 'E', now: 0 });
    expect(broker.channelCount).toBe(20);
    for (let i = 0; i < 5; i++) await broker.read({ channel: 'live' as Channel, limit: 0, reverse: false, metaTtlMs: 1_000, newEpoch: 'F', now: 2_000 + i });
    expect(broker.channelCount).toBe(1);
    // History expires before the record: the epoch and offset stay.
    await broker.publish({ ...t, channel: 'live' as Channel, body: { data: 1 }, encoded: '', newEpoch: 'X', now: 2_100 });
    const r = await broker.read({ channel: 'live' as Channel, limit: 10, reverse: false, metaTtlMs: 1_000, newEpoch: 'Y', now: 2_300 });
    expect(r).toEqual({ publications: [], position: { offset: 1, epoch: 'F' } });
  });
});

/**
 * A real MemoryBroker with faults a memory broker cannot produce on its own:
 * live deliveries dropped (a pub/sub reconnect), reads that fail or wait.
 */
class FaultyBroker extends MemoryBroker {
  drop = 0;
  failReads = 0;
  gate: Promise<void> | undefined;
  rewind: number | undefined;
  override async subscribe(channel: Channel, deliver: (p: ChannelPublication) => void) {
    return super.subscribe(channel, (p) => {
      if (this.drop > 0) this.drop--;
      else deliver(p);
    });
  }
  override async read(cmd: ReadCommand) {
    await this.gate;
    if (this.failReads > 0) {
      this.failReads--;
      throw new Error('read failed');
    }
    const res = await super.read(cmd);
    if (this.rewind !== undefined) return { publications: [], position: { ...res.position, offset: this.rewind } };
    return res;
  }
}

describe('ChannelFeeds', () => {
  async function setup(opts: Partial<ChannelFeedsOptions> = {}) {
    const broker = new FaultyBroker();
    const namespaces = ChannelNamespaces.defaults();
    const feeds = new ChannelFeeds({ broker, namespaces, positionCheckMs: 0, fillPageSize: 3, retryMs: 5, ...opts });
    const hub = new Hub(channelSources(feeds));
    const svc = new ChannelService({ broker, namespaces, hub });
    onTestFinished(async () => {
      await svc.dispose();
      feeds.dispose();
      await hub.dispose();
    });
    const got: ChannelFeedItem[] = [];
    const sub = await svc.subscribe('c', (e) => got.push(e));
    const offsets = () => got.flatMap((e) => (e.type === 'publication' ? [e.publication.offset] : []));
    return { broker, feeds, svc, sub, got, offsets };
  }

  it('fills a gap from history in pages, and retries a failed read with backoff', async () => {
    const { broker, svc, offsets, got } = await setup();
    await svc.publish('c', 1);
    broker.drop = 10;
    broker.failReads = 2;
    for (let i = 2; i <= 12; i++) await svc.publish('c', i);
    await expect.poll(offsets).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(got.every((e) => e.type === 'publication')).toBe(true);
  });

  it('the position check finds a lost tail; a stream that went back is reported as rewound', async () => {
    const { broker, feeds, svc, offsets, got } = await setup();
    await svc.publish('c', 1);
    broker.drop = 2;
    await svc.publish('c', 2);
    await svc.publish('c', 3);
    await new Promise((r) => setTimeout(r, 5));
    expect(offsets()).toEqual([1]);
    feeds.checkAll();
    feeds.checkAll(); // a second check while one is queued is merged
    await expect.poll(offsets).toEqual([1, 2, 3]);
    broker.rewind = 1;
    feeds.checkAll();
    await expect.poll(() => got.at(-1)).toMatchObject({ type: 'unrecoverable', reason: 'rewound', position: { offset: 1 } });
  });

  it('too many publications held while storage does not answer: they are dropped and re-read from history, none lost', async () => {
    const { broker, svc, got, offsets } = await setup({ maxPending: 5 });
    await svc.publish('c', 1);
    let open!: () => void;
    broker.gate = new Promise((r) => (open = r));
    broker.drop = 1;
    for (let i = 2; i <= 10; i++) await svc.publish('c', i);
    await new Promise((r) => setTimeout(r, 10));
    expect(offsets()).toEqual([1]);
    open();
    broker.gate = undefined;
    await svc.publish('c', 11);
    await expect.poll(offsets).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(got.every((e) => e.type === 'publication')).toBe(true);
  });
});

describe('RedisBroker', () => {
  it('over a client of its own: pings, classifies errors, drops foreign pub/sub messages, removes history', async () => {
    const redis = new Redis(inject('redisUrl'));
    const broker = new RedisBroker({ redis, keyPrefix: `tcb:${randomUUID().slice(0, 8)}:` });
    onTestFinished(async () => {
      await broker.close();
      redis.disconnect();
    });
    await broker.ping();
    expect(broker.isUnavailable(new Error('connect ECONNREFUSED 127.0.0.1:1'))).toBe(true);
    expect(broker.isUnavailable(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(() => new RedisBroker({})).toThrow(TypeError);
    const ch = 'c' as Channel;
    const got: ChannelPublication[] = [];
    await broker.subscribe(ch, (p) => got.push(p));
    const keys = new KeySpace(`tcb:`).channel('c');
    expect(keys.pubsub).toMatch(/\{ch:c\}:pub$/);
    const pubsub = (broker as unknown as { backend: { keys: KeySpace } }).backend.keys.channel('c').pubsub;
    for (const junk of ['junk', '__p1:x:E__{}', '__p1:1:E__not json', '__p1:1']) await redis.spublish(pubsub, junk);
    const cmd = { channel: ch, body: { data: 1 }, encoded: '{"data":1}', historySize: 5, historyTtlMs: 60_000, metaTtlMs: 120_000, newEpoch: 'Epochabc', now: Date.now() };
    expect(await broker.publish(cmd)).toEqual({ offset: 1, epoch: 'Epochabc' });
    await expect.poll(() => got).toEqual([{ channel: 'c', epoch: 'Epochabc', offset: 1, data: 1 }]);
    await broker.removeHistory(ch);
    expect(await broker.read({ channel: ch, limit: 5, reverse: false, metaTtlMs: 120_000, newEpoch: 'Other', now: Date.now() })).toEqual({ publications: [], position: { offset: 1, epoch: 'Epochabc' } });
    // Offset 0: a publication without history (skipHistory); no offset or a negative one is not a publication.
    expect(decodeMessage(ch, '__p1:0:E__{"data":1}')).toEqual({ channel: 'c', epoch: 'E', offset: 0, data: 1 });
    for (const bad of ['__p1::E__{"data":1}', '__p1:-1:E__{"data":1}', '__p1:1.5:E__{"data":1}']) expect(decodeMessage(ch, bad)).toBeUndefined();
    expect(decodeMessage(ch, '__p1:2:E__{"data":1,"tags":{"a":"b"}}')).toEqual({ channel: 'c', epoch: 'E', offset: 2, data: 1, tags: { a: 'b' } });
  });
});

it('RedisBroker.onResync fires when the subscriber connection is back after a drop (the feeds then check every position)', async () => {
  const server = await startRedis();
  const redis = new Redis(server.url);
  const broker = new RedisBroker({ redis });
  onTestFinished(async () => {
    await broker.close();
    redis.disconnect();
  });
  let resyncs = 0;
  const off = broker.onResync(() => resyncs++);
  await broker.subscribe('c' as Channel, () => {});
  const list = (await redis.client('LIST')) as string;
  const id = /id=(\d+) .*ssub=1/.exec(list)![1]!;
  await redis.client('KILL', 'ID', id);
  await expect.poll(() => resyncs, { timeout: 5_000 }).toBeGreaterThan(0);
  off();
});
