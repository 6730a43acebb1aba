// Helpers of the drain and deploy tests: a tiny TCP balancer (for drain tests
// without nginx), SDK members that count their time without a connection, and
// an observer of every presence event straight from Redis (it never restarts,
// so it sees every leave and join, whichever node emits it).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RealtimeClient, type PresenceRoom } from 'realtime-message-sdk';
import { onTestFinished } from 'vitest';
import type { PresenceEvent } from 'realtime-message-protocol';
import { PresenceService } from 'realtime-message';
import { freePort, waitFor } from 'realtime-message-testing';
import { nginxBinary, renderNginxConf } from '../../../deploy/nginx/render.mjs';

/** Debian's nginx running deploy/nginx/realtime-message.conf (rendered for these nodes) as a child process on a free loopback port. */
export class Nginx {
  readonly logs: string[] = [];
  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly prefix: string,
  ) {}

  static async start(nodePorts: readonly number[]): Promise<Nginx> {
    const port = await freePort();
    const prefix = mkdtempSync(join(tmpdir(), 'rm-nginx-'));
    for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, d));
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, renderNginxConf({ nodes: nodePorts.map((p) => `127.0.0.1:${p}`), listen: `127.0.0.1:${port}`, prefix }));
    const proc = spawn(nginxBinary(), ['-c', conf, '-p', prefix, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const self = new Nginx(proc, port, prefix);
    for (const stream of [proc.stdout, proc.stderr]) stream?.on('data', (d: Buffer) => self.logs.push(String(d)));
    onTestFinished(() => self.stop());
    await waitFor(async () => (await fetch(`${self.url}/nginx-health`)).ok, { timeoutMs: 10_000, what: `nginx on ${port}: ${self.logs.join('')}` });
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.proc.kill('SIGTERM');
      await exited;
    }
    rmSync(this.prefix, { recursive: true, force: true });
  }
}

/**
 * Forwards each TCP connection to the next target that accepts it (round
 * robin, skipping refused ones): the part of a balancer a drain relies on.
 */
export class TcpBalancer {
  private next = 0;
  private readonly open = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targets: () => readonly number[],
  ) {}

  static async start(targets: () => readonly number[]): Promise<TcpBalancer> {
    let self: TcpBalancer | undefined;
    const server = createServer((client) => self!.forward(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new TcpBalancer(server, (server.address() as { port: number }).port, targets);
    onTestFinished(() => self!.close());
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private forward(client: Socket, tried = 0): void {
    const ports = this.targets();
    if (tried >= ports.length) {
      client.destroy();
      return;
    }
    const port = ports[this.next++ % ports.length]!;
    const upstream = netConnect(port, '127.0.0.1');
    let connected = false;
    upstream.once('error', () => {
      if (!connected) this.forward(client, tried + 1);
      else client.destroy();
    });
    upstream.once('connect', () => {
      connected = true;
      this.open.add(client);
      client.pipe(upstream).pipe(client);
      const end = (): void => {
        this.open.delete(client);
        client.destroy();
        upstream.destroy();
      };
      client.once('close', end);
      upstream.once('close', end);
      client.on('error', end);
    });
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** An SDK client in a room that records how long it was without a connection. */
export interface Member {
  readonly userId: string;
  readonly client: RealtimeClient;
  readonly room: PresenceRoom;
  /** Milliseconds of each outage (connected → reconnected). */
  readonly outages: number[];
  /** Connection ids this member had (more than one: it could not resume). */
  readonly connIds: Set<string>;
}

export async function sdkMember(url: string, roomId: string, userId: string, opts: { heartbeatIntervalMs?: number } = {}): Promise<Member> {
  const client = new RealtimeClient({ url, reconnect: { minDelayMs: 100, maxDelayMs: 1_000 }, ackTimeoutMs: 3_000, connectTimeoutMs: 3_000 });
  onTestFinished(() => client.shutdown());
  const outages: number[] = [];
  let lostAt: number | undefined;
  client.on('state', (c) => {
    if (c.oldState === 'connected' && c.newState !== 'connected') lostAt = Date.now();
    if (c.newState === 'connected' && lostAt !== undefined) {
      outages.push(Date.now() - lostAt);
      lostAt = undefined;
    }
  });
  const room = await client.joinRoom(roomId, { userId, ...(opts.heartbeatIntervalMs ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}) });
  const connIds = new Set<string>([room.connId!]);
  room.on('state', () => {
    if (room.connId) connIds.add(room.connId);
  });
  return { userId, client, room, outages, connIds };
}

/** Every presence event of every room, straight from Redis (a library-form service that never restarts). */
export class PresenceObserver {
  readonly events: PresenceEvent[] = [];
  private constructor(private readonly service: PresenceService) {}

  static async start(redisUrl: string, keyPrefix: string): Promise<PresenceObserver> {
    const redis = new Redis(redisUrl);
    const service = new PresenceService(redis, { keyPrefix, startReaper: false });
    const self = new PresenceObserver(service);
    await service.subscribe((e) => self.events.push(e as PresenceEvent));
    onTestFinished(async () => {
      await service.stop();
      redis.disconnect();
    });
    return self;
  }

  of(roomId: string): PresenceEvent[] {
    return this.events.filter((e) => e.roomId === roomId);
  }

  /**
   * Leaves and joins of connections that never left on purpose: a leave of
   * one of `connIds`, or a join of one after its first. A resumed
   * connection shows neither.
   */
  flickers(roomId: string, connIds: Iterable<string>): PresenceEvent[] {
    const watched = new Set(connIds);
    const joined = new Set<string>();
    const out: PresenceEvent[] = [];
    for (const e of this.of(roomId)) {
      if (!watched.has(e.connId)) continue;
      if (e.type === 'leave') out.push(e);
      else if (e.type === 'join') {
        if (joined.has(e.connId)) out.push(e);
        joined.add(e.connId);
      }
    }
    return out;
  }
}

/** p-th percentile (0..100) of `values`, 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
