import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connect, request, startGateway, waitFor } from 'realtime-message-testing';
import { ChannelError, ChannelNamespaces, ChannelService, MemoryBroker, PresenceError, type Channel, type ChannelFeedItem, type Extension } from '../src/index.js';

/**
 * ChannelService.publishParsed: the publish of a request that a transport
 * already parsed with `schemas.publish` (Socket.IO's channel:publish). It
 * skips parsing the channel, data and tags again, but not the namespace,
 * the permission, the publisher info or the size cap.
 */
function service(): ChannelService {
  const namespaces = ChannelNamespaces.fromConfig({
    without_namespace: { history_size: 10, history_ttl: '60s', allow_publish_for_client: true, allow_publish_for_anonymous: true, allow_subscribe_for_client: true },
    namespaces: [{ name: 'closed', history_size: 10, history_ttl: '60s' }],
  });
  const s = new ChannelService({ broker: new MemoryBroker(), namespaces, maxDataBytes: 1_000 });
  onTestFinished(() => s.dispose());
  return s;
}

const name = (prefix = ''): Channel => `${prefix}c${randomUUID().slice(0, 8)}` as Channel;

/** The refusal's channel reason, else its error code; undefined when it resolved. */
async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(PresenceError);
    return err instanceof ChannelError ? err.reason : (err as PresenceError).code;
  }
}

describe('ChannelService.publishParsed', () => {
  it('publishes data, info and tags as given, in offset order, to live subscribers', async () => {
    const s = service();
    const ch = name();
    const seen: ChannelFeedItem[] = [];
    await s.subscribe(ch, (e) => seen.push(e));
    const info = { user: 'ada', client: 'c1' };
    expect(await s.publishParsed(ch, { n: 1 }, { info, tags: { k: 'v' } }, { user: 'ada', subscribed: true })).toMatchObject({ offset: 1 });
    expect(await s.publishParsed(ch, 'two', { info })).toMatchObject({ offset: 2 });
    await waitFor(() => (seen.length === 2 ? true : undefined), { what: 'both publications' });
    expect(seen.map((e) => (e.type === 'publication' ? e.publication : e))).toEqual([
      { channel: ch, epoch: expect.any(String), offset: 1, data: { n: 1 }, info, tags: { k: 'v' } },
      { channel: ch, epoch: expect.any(String), offset: 2, data: 'two', info },
    ]);
    const history = await s.history(ch, { limit: 10 });
    expect(history.publications.map((p) => p.data)).toEqual([{ n: 1 }, 'two']);
  });

  it('still checks the namespace and the permission, the info and the size cap, and stores nothing when it refuses', async () => {
    const s = service();
    const ch = name();
    expect(await code(s.publishParsed('nope:x' as Channel, 1))).toBe('unknown_channel');
    expect(await code(s.publishParsed(name('closed:'), 1, {}, { user: 'ada', subscribed: false }))).toBe('forbidden');
    // An info the transport did not make as { user, client } within bounds goes through the schema.
    expect(await code(s.publishParsed(ch, 1, { info: { user: 'u'.repeat(300), client: 'c' } }))).toBe('invalid_payload');
    expect(await code(s.publishParsed(ch, 1, { info: { user: 'u', client: 'c', connInfo: { f: Number.NaN } } }))).toBe('invalid_payload');
    expect(await s.publishParsed(ch, 1, { info: { user: 'u', client: 'c', connInfo: { name: 'U' } } })).toMatchObject({ offset: 1 });
    // The cap on the whole publication (data + info + tags) holds whatever the caller parsed.
    expect(await code(s.publishParsed(ch, 'x'.repeat(100_000)))).toBe('payload_too_large');
    const history = await s.history(ch, { limit: 10 });
    expect(history.offset).toBe(1);
    expect(history.publications[0]!.info).toEqual({ user: 'u', client: 'c', connInfo: { name: 'U' } });
    // Without history: offset 0, nothing kept.
    expect(await s.publishParsed(ch, 2, { skipHistory: true })).toMatchObject({ offset: 0 });
    expect((await s.history(ch, { limit: 10 })).offset).toBe(1);
  });
});

describe('Socket.IO channel:publish with a publish hook that replaces the data', () => {
  it('publishes valid replacement data, and refuses invalid or oversized replacement data without publishing anything', async () => {
    const replaceWith: { value: unknown } = { value: undefined };
    const hook: Extension = { name: 'replace', onPublish: async (c) => (c.action === 'publish' ? { data: replaceWith.value } : undefined) };
    const g = await startGateway({ extensions: [hook], channels: { maxDataBytes: 100 } });
    const ch = `c${randomUUID().slice(0, 8)}`;
    const sub = await connect(g.url);
    const seen: unknown[] = [];
    sub.on('channel:publication', (p) => seen.push(p.data));
    expect((await request(sub, 'channel:subscribe', { channel: ch })).ok).toBe(true);
    const pub = sub; // publishing is allowed to subscribers of the default namespace
    replaceWith.value = { replaced: true };
    expect(await request(pub, 'channel:publish', { channel: ch, data: { original: true } })).toMatchObject({ ok: true, offset: 1 });
    replaceWith.value = 'x'.repeat(500);
    expect(await request(pub, 'channel:publish', { channel: ch, data: 'small' })).toMatchObject({ ok: false, error: { code: 'payload_too_large' } });
    replaceWith.value = { bad: Number.POSITIVE_INFINITY };
    expect(await request(pub, 'channel:publish', { channel: ch, data: 'small' })).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
    replaceWith.value = undefined; // no replacement: the client's data
    expect(await request(pub, 'channel:publish', { channel: ch, data: { last: true } })).toMatchObject({ ok: true, offset: 2 });
    await waitFor(() => (seen.length === 2 ? true : undefined), { what: 'two publications' });
    expect(seen).toEqual([{ replaced: true }, { last: true }]);
  });
});
