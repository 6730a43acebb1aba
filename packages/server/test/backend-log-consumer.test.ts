import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { keysUnder, redisClient, redisNodes, waitFor, type RedisTarget } from 'realtime-message-testing';
import { ChannelService, RedisBackend, RedisBroker, type RedisClient } from '../src/index.js';
import { logPartition } from '../src/engines/redis/backend-log.js';

const CONSUMER = fileURLToPath(new URL('../../../examples/backend-log-consumer.mjs', import.meta.url));

interface Processed {
  event: 'processed';
  consumer: string;
  partition: number;
  id: string;
  kind: string;
  channel: string;
  offset: number;
}

/** An entry's identity: stream ids are per stream (two partitions may hold the same id). */
const ref = (l: Processed): string => `${l.partition}/${l.id}`;

/** The example consumer as a child process; its JSON lines collected. */
class Worker {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcess;
  private rest = '';

  constructor(env: Record<string, string>) {
    this.proc = spawn(process.execPath, [CONSUMER], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.proc.stdout!.on('data', (d: Buffer) => {
      const text = this.rest + String(d);
      const parts = text.split('\n');
      this.rest = parts.pop()!;
      for (const line of parts) if (line) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    this.proc.stderr!.on('data', (d: Buffer) => this.stderr.push(String(d)));
    onTestFinished(() => void this.kill('SIGKILL'));
  }

  processed(): Processed[] {
    return this.lines.filter((l) => l.event === 'processed') as unknown as Processed[];
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

class Node {
  readonly backend: RedisBackend;
  readonly channels: ChannelService;
  constructor(redis: RedisClient, keyPrefix: string) {
    this.backend = new RedisBackend({ redis, keyPrefix, backendLog: { partitions: 2 }, identityCheckIntervalMs: 0 });
    this.channels = new ChannelService({ broker: new RedisBroker({ backend: this.backend }) });
  }
  async close(): Promise<void> {
    await this.channels.dispose();
    await this.backend.close();
  }
}

const targets: Array<[string, () => RedisTarget, (t: RedisTarget) => Record<string, string>]> = [
  ['redis', () => ({ url: inject('redisUrl') }), (t) => ({ REDIS_URL: (t as { url: string }).url })],
  [
    'redis cluster (3 masters)',
    () => ({ clusterNodes: inject('clusterNodes') }),
    (t) => ({ REDIS_CLUSTER_NODES: (t as { clusterNodes: Array<{ host: string; port: number }> }).clusterNodes.map((n) => `${n.host}:${n.port}`).join(',') }),
  ],
];

describe.each(targets)('examples/backend-log-consumer.mjs on %s', (_name, makeTarget, redisEnv) => {
  it('processes every entry at least once and in order per channel, across a worker killed (SIGKILL) before it acknowledged', async () => {
    const target = makeTarget();
    const { prefix, clients, first: node } = await redisNodes(target, 'blc', (redis, keyPrefix) => new Node(redis, keyPrefix));
    const client = clients[0]!;
    onTestFinished(async () => {
      const c = redisClient(target);
      for (const k of (await keysUnder(c, prefix)).filter((k) => k.includes(':log'))) await c.del(k);
      c.disconnect();
    });
    const channels = ['chat:1', 'chat:2', 'news:sport', 'orders:42'];
    // Both partitions are used.
    expect(new Set(channels.map((c) => logPartition(c, 2)))).toEqual(new Set([0, 1]));
    const publish = (from: number, to: number) =>
      Promise.all(
        channels.map(async (ch) => {
          for (let i = from; i <= to; i++) await node.channels.publish(ch, i);
        }),
      );
    await publish(1, 30);

    const env = { ...redisEnv(target), KEY_PREFIX: prefix, PARTITIONS: '2', GROUP: 'g', CLAIM_IDLE_MS: '300', PROCESS_DELAY_MS: '10', BATCH: '10', BLOCK_MS: '200' };
    const a = new Worker({ ...env, CONSUMER: 'a' });
    await waitFor(() => a.processed().length >= 30, { timeoutMs: 15_000, what: `worker a: ${a.stderr.join('')}` });
    await a.kill('SIGKILL');
    // Killed mid-way: entries delivered to a and not acknowledged (some perhaps processed already).
    const pendingOfA = new Set<string>();
    for (const p of [0, 1]) {
      for (const [id, consumer] of (await client.xpending(`${prefix}log:${p}`, 'g', '-', '+', 1000)) as Array<[string, string]>) {
        expect(consumer).toBe('a');
        pendingOfA.add(`${p}/${id}`);
      }
    }
    expect(pendingOfA.size).toBeGreaterThan(0);

    await publish(31, 50); // while no worker runs
    await node.backend.log!.settled();
    const all = new Map<string, { channel: string; offset: number }>();
    for (const p of [0, 1]) {
      for (const [id, f] of await client.xrange(`${prefix}log:${p}`, '-', '+')) all.set(`${p}/${id}`, { channel: f[3]!, offset: Number(f[7]) });
    }
    expect(all.size).toBe(channels.length * 50);

    const b = new Worker({ ...env, CONSUMER: 'b' });
    await waitFor(
      async () => {
        const done = new Set([...a.processed(), ...b.processed()].map(ref));
        if (![...all.keys()].every((id) => done.has(id))) return false;
        for (const p of [0, 1]) if (Number((await client.xpending(`${prefix}log:${p}`, 'g'))[0]) !== 0) return false;
        return true;
      },
      { timeoutMs: 20_000, what: `worker b: ${b.stderr.join('')}` },
    );
    expect(await b.kill('SIGTERM')).toBe(0);
    expect(b.lines.at(-1)).toMatchObject({ event: 'stopped', consumer: 'b' });
    expect(b.lines.filter((l) => l.event === 'claimed').reduce((n, l) => n + (l.count as number), 0)).toBe(pendingOfA.size);

    // At least once: every entry; more than once only what a had not acknowledged.
    const seen = new Map<string, number>();
    for (const l of [...a.processed(), ...b.processed()]) seen.set(ref(l), (seen.get(ref(l)) ?? 0) + 1);
    for (const [id, n] of seen) if (n > 1) expect(pendingOfA.has(id), id).toBe(true);
    for (const id of pendingOfA) expect(b.processed().some((l) => ref(l) === id)).toBe(true);
    // In order per channel: each worker in offset order; a's work then b's, replays aside, is 1..50.
    for (const ch of channels) {
      for (const w of [a, b]) {
        const offsets = w.processed().filter((l) => l.channel === ch).map((l) => l.offset);
        expect(offsets, `${ch} by ${w.lines[0]?.consumer as string}`).toEqual([...offsets].sort((x, y) => x - y));
        expect(new Set(offsets).size).toBe(offsets.length);
      }
      const firsts: number[] = [];
      for (const l of [...a.processed(), ...b.processed()]) if (l.channel === ch && !firsts.includes(l.offset)) firsts.push(l.offset);
      expect(firsts).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      for (const l of [...a.processed(), ...b.processed()].filter((x) => x.channel === ch)) expect(all.get(ref(l))).toEqual({ channel: ch, offset: l.offset });
    }
  });
});
