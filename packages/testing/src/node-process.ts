import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/** The built CLI of the server package (`npm run build` makes it); the same path from src/ and dist/. */
export const CLI = fileURLToPath(new URL('../../server/dist/app/cli.js', import.meta.url));

/** A standalone server process (the real CLI), killed after the test. */
export class NodeProcess {
  readonly logs: string[] = [];
  private exited: Promise<number | null>;

  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    const collect = (d: Buffer): void => {
      for (const line of String(d).split('\n')) if (line) this.logs.push(line);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
  }

  static async start(env: Record<string, string>, { port, waitReady = true }: { port?: number; waitReady?: boolean } = {}): Promise<NodeProcess> {
    const p = port ?? (await freePort());
    const proc = spawn(process.execPath, [CLI], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', PORT: String(p), HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const node = new NodeProcess(proc, p);
    onTestFinished(async () => {
      await node.kill('SIGKILL');
    });
    if (waitReady) await waitFor(() => node.logs.some((l) => l.includes('realtime-message listening')), { timeoutMs: 15_000, what: `server on ${p}: ${node.logs.join('\n')}` });
    return node;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }

  waitExit(): Promise<number | null> {
    return this.exited;
  }

  async get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`${this.url}${path}`);
    return { status: res.status, body: await res.text() };
  }
}
