import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { freePort, NatsHubAndLeaves, startServer } from 'realtime-message-testing';
import { ConfigError, loadConfig } from '../src/index.js';

// The standalone server with STATUS_STORE=nats: one node per region, each on
// its region's leaf, the bucket on the hub (SPEC §10).

let topo: NatsHubAndLeaves;
beforeAll(async () => {
  topo = await NatsHubAndLeaves.start(2);
});
afterAll(() => topo?.stop());

const json = async (res: Response) => ({ status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> });
const put = (url: string, id: string, body: unknown) =>
  fetch(`${url}/api/v2/presence/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(json);
const get = (url: string, id: string) => fetch(`${url}/api/v2/presence/${id}`).then(json);
const ready = (url: string) => fetch(`${url}/ready`).then(json);

describe('STATUS_STORE and the NATS settings', () => {
  it('are validated at start, naming the setting', () => {
    const bad = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    expect(bad({ STATUS_STORE: 'nats' })).toMatch(/STATUS_STORE=nats needs NATS_URL/);
    expect(bad({ STATUS_STORE: 'etcd' })).toMatch(/STATUS_STORE must be 'memory', 'redis' or 'nats'/);
    expect(bad({ STATUS_STORE: 'redis' })).toMatch(/STATUS_STORE=redis needs REDIS_URL/);
    expect(bad({ STATUS_STORE: 'nats', NATS_URL: 'http://x:4222' })).toMatch(/NATS_URL must be nats:\/\/host:port/);
    expect(bad({ STATUS_STORE: 'nats', NATS_URL: 'nats://x:4222', NATS_HUB_DOMAIN: 'a.b' })).toMatch(/NATS_HUB_DOMAIN must be/);
    expect(bad({ STATUS_STORE: 'nats', NATS_URL: 'nats://x:4222', NATS_BUCKET: 'a.b' })).toMatch(/NATS_BUCKET must be/);
    expect(bad({ NATS_URL: 'nats://x:4222' })).toMatch(/used only with STATUS_STORE=nats/);
    expect(bad({ REGION: 'eu west' })).toMatch(/REGION must be/);
    expect(loadConfig({})).toMatchObject({ statusStore: 'memory', nodeId: undefined });
    expect(loadConfig({ REDIS_URL: 'redis://x:6379' }).statusStore).toBe('redis');
    expect(loadConfig({ REDIS_URL: 'redis://x:6379', STATUS_STORE: 'memory' }).statusStore).toBe('memory');
    const c = loadConfig({ STATUS_STORE: 'nats', NATS_URL: 'nats://a:4222, nats://b:4222', NATS_HUB_DOMAIN: 'hub', REGION: 'eu', NODE_ID: '1' });
    expect(c).toMatchObject({ statusStore: 'nats', nats: { url: 'nats://a:4222, nats://b:4222', hubDomain: 'hub', bucket: 'rm_status' }, nodeId: 'eu-1' });
  });
});

describe('the server with STATUS_STORE=nats', () => {
  it('one node per region: writes reach the other region; a cut region answers stale reads, 503 writes and /ready 503, then converges', async () => {
    const bucket = `srv_${randomUUID().slice(0, 8)}`;
    const [eu, us] = await Promise.all(
      topo.leaves.map((leaf, i) => startServer({ STATUS_STORE: 'nats', NATS_URL: leaf.url, NATS_HUB_DOMAIN: 'hub', NATS_BUCKET: bucket, REGION: i === 0 ? 'eu' : 'us', NODE_ID: '1' })),
    );
    const ada = `ada-${randomUUID().slice(0, 6)}`;
    expect(await ready(eu!.url)).toMatchObject({ status: 200, body: { checks: { nats: 'ok' } } });
    const written = await put(eu!.url, ada, { status: 'busy', message: 'from eu' });
    expect(written).toMatchObject({ status: 200, body: { userId: ada, message: 'from eu', nodeId: 'eu-1' } });
    await expect.poll(async () => (await get(us!.url, ada)).body.message, { timeout: 2_000 }).toBe('from eu');
    expect((await get(eu!.url, ada)).headers.get('status-stale')).toBeNull();

    await topo.links[0]!.cut();
    onTestFinished(async () => {
      await topo.links[0]!.heal();
      await topo.linked();
    });
    await expect.poll(async () => (await get(eu!.url, ada)).headers.get('status-stale'), { timeout: 5_000 }).toBe('1');
    expect((await get(eu!.url, ada)).body).toMatchObject({ message: 'from eu', stale: true });
    expect(await put(eu!.url, ada, { status: 'away' })).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
    expect(await ready(eu!.url)).toMatchObject({ status: 503, body: { checks: { nats: 'unavailable' } } });
    expect(await put(us!.url, ada, { status: 'away', message: 'from us' })).toMatchObject({ status: 200 });

    await topo.links[0]!.heal();
    await expect.poll(async () => (await ready(eu!.url)).status, { timeout: 10_000 }).toBe(200);
    await expect.poll(async () => (await get(eu!.url, ada)).body.message, { timeout: 2_000 }).toBe('from us');
    expect((await get(eu!.url, ada)).headers.get('status-stale')).toBeNull();
  });

  it('NATS down at start: the server starts, status answers 503 and /ready says why, until NATS is there', async () => {
    const port = await freePort();
    const { url } = await startServer({ STATUS_STORE: 'nats', NATS_URL: `nats://127.0.0.1:${port}`, NATS_BUCKET: 'never' });
    expect(await ready(url)).toMatchObject({ status: 503, body: { checks: { nats: 'unavailable' } } });
    expect(await put(url, 'ada', { status: 'busy' })).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('a bucket with other settings stops the start with a message naming NATS_BUCKET', async () => {
    const { Kvm } = await import('@nats-io/kv');
    const { jetstream } = await import('@nats-io/jetstream');
    const { connect } = await import('@nats-io/transport-node');
    const nc = await connect({ servers: topo.hub.url });
    onTestFinished(() => nc.close());
    const name = `bad_${randomUUID().slice(0, 8)}`;
    await new Kvm(jetstream(nc)).create(name, { ttl: 5_000 });
    await expect(startServer({ STATUS_STORE: 'nats', NATS_URL: topo.leaves[0]!.url, NATS_HUB_DOMAIN: 'hub', NATS_BUCKET: name })).rejects.toThrow(/\(NATS_BUCKET\) exists with other settings/);
  });
});
