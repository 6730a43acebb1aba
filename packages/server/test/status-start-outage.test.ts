import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connect, request, room, startRedis, startServer, waitFor } from 'realtime-message-testing';

const user = (): string => `u-${randomUUID().slice(0, 8)}`;

describe('user status on a node started while Redis is down', () => {
  it('starts by itself once Redis is up: the presence bridge marks members online and socket watchers get events', async () => {
    const redis = await startRedis();
    await redis.kill();
    const { url } = await startServer({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: `sso:${randomUUID().slice(0, 8)}:`, DEMO_DIR: 'off' });
    // The first attempts to follow the status feed fail at once (connection refused); give them time to.
    await new Promise((r) => setTimeout(r, 1_500));
    await redis.restart();

    const ada = user();
    const watcher = await connect(url);
    const events: Array<{ userId: string; status: string }> = [];
    watcher.on('status:event', (e: { userId: string; status: string }) => events.push(e));
    await waitFor(async () => ((await request(watcher, 'status:subscribe', { userIds: [ada] })).ok ? true : undefined), { what: 'status:subscribe once Redis is up', timeoutMs: 15_000, intervalMs: 200 });
    const member = await connect(url);
    await waitFor(async () => ((await request(member, 'presence:join', { roomId: room(), userId: ada })).ok ? true : undefined), { what: 'a join once Redis is up', timeoutMs: 10_000, intervalMs: 200 });
    // The bridge (started in the background after the outage) reports the join: ada is online, and the watcher is told.
    await waitFor(() => events.find((e) => e.userId === ada && e.status === 'online'), { what: 'the watcher told that ada is online', timeoutMs: 15_000 });
    const read = await (await fetch(`${url}/api/v2/presence/${ada}`)).json();
    expect(read).toMatchObject({ userId: ada, status: 'online' });
    member.disconnect();
    watcher.disconnect();
  }, 60_000);
});
