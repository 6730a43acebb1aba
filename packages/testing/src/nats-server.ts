import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/** The nats-server binary: on PATH, or Debian's /usr/sbin one (not on a user's PATH). */
export function natsServerBinary(): string {
  const fromPath = (process.env.PATH ?? '').split(':').find((d) => d && existsSync(join(d, 'nats-server')));
  if (fromPath) return join(fromPath, 'nats-server');
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
}

export interface NatsServerOptions {
  /** Shown in logs and `/varz`. @default a unique name */
  name?: string;
  /** The JetStream domain of this server (hub and leaf servers each need their own). */
  domain?: string;
  /** Accept leaf node connections (a hub). */
  leafListen?: boolean;
  /** Solicit a leaf node connection to this `host:port` (a leaf). */
  leafRemote?: string;
}

/**
 * A real nats-server process with JetStream (store in a temp folder), on
 * free loopback ports, that a test can kill and restart on the same ports
 * with the same store. Never the machine's own server on 4222.
 */
export class NatsServer {
  private proc: ChildProcess | undefined;
  readonly dir: string;
  readonly name: string;

  private constructor(
    readonly port: number,
    readonly monitorPort: number,
    readonly leafPort: number | undefined,
    private readonly options: NatsServerOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'rm-nats-'));
    this.name = options.name ?? `nats-${port}`;
    writeFileSync(join(this.dir, 'nats.conf'), this.config());
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const leafPort = options.leafListen ? await freePort() : undefined;
    const server = new NatsServer(await freePort(), await freePort(), leafPort, options);
    try {
      await server.launch();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The configuration file (as deploy/nats/ writes it, with this server's ports and folders). */
  config(): string {
    const o = this.options;
    const lines = [
      `server_name: ${JSON.stringify(this.name)}`,
      `listen: 127.0.0.1:${this.port}`,
      `http: 127.0.0.1:${this.monitorPort}`,
      'jetstream {',
      `  store_dir: ${JSON.stringify(join(this.dir, 'js'))}`,
      ...(o.domain ? [`  domain: ${o.domain}`] : []),
      '}',
    ];
    // A hub tells its leaves where to reconnect (its INFO); seen here with no_advertise too. A leaf must reach the hub only through its configured URL, which a test may cut: the advertised address refuses connections.
    if (this.leafPort !== undefined) lines.push(`leafnodes { listen: 127.0.0.1:${this.leafPort}, advertise: "127.0.0.1:1" }`);
    // reconnect: seconds between a leaf's attempts to reach its hub.
    if (o.leafRemote) lines.push(`leafnodes { reconnect: 1, remotes: [ { urls: ["nats://${o.leafRemote}"] } ] }`);
    return lines.join('\n') + '\n';
  }

  async launch(): Promise<void> {
    const proc = spawn(natsServerBinary(), ['-c', join(this.dir, 'nats.conf'), '-l', join(this.dir, 'nats.log')], { stdio: 'ignore' });
    this.proc = proc;
    const exited = new Promise<never>((_, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`nats-server ${this.name} on ${this.port} exited with ${String(code)} (log: ${join(this.dir, 'nats.log')})`)));
    });
    exited.catch(() => {});
    await Promise.race([waitFor(() => this.healthy(), { timeoutMs: 15_000, intervalMs: 25, what: `nats-server ${this.name} healthy on ${this.port}` }), exited]);
  }

  /** `/healthz` answers ok (the server and its JetStream are up). */
  async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`);
      return res.ok;
    } catch {
      return false;
    }
  }

  /** A monitoring endpoint's JSON (`varz`, `leafz`, `jsz`, ...). */
  async monitor<T = Record<string, unknown>>(endpoint: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}/${endpoint}`);
    return (await res.json()) as T;
  }

  /** Leaf node connections this server has (a hub: one per connected leaf). */
  async leafCount(): Promise<number> {
    return ((await this.monitor<{ leafs?: unknown[] }>('leafz')).leafs ?? []).length;
  }

  /** SIGKILL: the store stays on disk (restart keeps it); clients and leaves see a dropped connection. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  }

  /** Kills and starts it again on the same ports with the same store. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP relay between a leaf and its hub that a test can cut and heal: the
 * link fails while both servers keep running (as a WAN link does). Cutting
 * closes every relayed connection and refuses new ones; healing listens again
 * on the same port.
 */
export class LinkProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  static async start(target: number): Promise<LinkProxy> {
    const proxy = new LinkProxy(await freePort(), target);
    await proxy.heal();
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.server === undefined;
  }

  async heal(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = tcpConnect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * A hub with JetStream domain `hub` and `leaves` leaf servers (domains
 * `leaf1`, `leaf2`, ...), each linked to the hub through its own
 * {@link LinkProxy}: the topology of SPEC §10 on loopback.
 */
export class NatsHubAndLeaves {
  private constructor(
    readonly hub: NatsServer,
    readonly leaves: NatsServer[],
    readonly links: LinkProxy[],
  ) {}

  static async start(leafCount = 2): Promise<NatsHubAndLeaves> {
    const hub = await NatsServer.start({ name: 'hub', domain: 'hub', leafListen: true });
    const leaves: NatsServer[] = [];
    const links: LinkProxy[] = [];
    const topo = new NatsHubAndLeaves(hub, leaves, links);
    try {
      for (let i = 1; i <= leafCount; i++) {
        const link = await LinkProxy.start(hub.leafPort!);
        links.push(link);
        leaves.push(await NatsServer.start({ name: `leaf${i}`, domain: `leaf${i}`, leafRemote: link.address }));
      }
      await topo.linked();
      return topo;
    } catch (err) {
      await topo.stop();
      throw err;
    }
  }

  /** Waits until every leaf whose link is not cut is connected to the hub. */
  async linked(timeoutMs = 15_000): Promise<void> {
    const expected = this.links.filter((l) => !l.isCut).length;
    await waitFor(async () => (await this.hub.leafCount()) === expected, { timeoutMs, intervalMs: 50, what: `${expected} leaf nodes connected to the hub` });
  }

  async stop(): Promise<void> {
    await Promise.all([this.hub.stop(), ...this.leaves.map((l) => l.stop()), ...this.links.map((l) => l.cut())]);
  }
}
