// A private redis-server on a free port for a benchmark run (unless REDIS_URL is given).
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './servers.mjs';

export async function startRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {}, own: false };
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      break;
    } catch {
      c.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    pid: proc.pid,
    own: true,
    async usedMemory() {
      const c = new Redis(url);
      const info = await c.info('memory');
      c.disconnect();
      return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    },
    /** Calls per command since the last CONFIG RESETSTAT (INFO commandstats), e.g. { evalsha: 1200, spublish: 300 }. */
    async commandCalls({ reset = false } = {}) {
      const c = new Redis(url);
      const info = await c.info('commandstats');
      if (reset) await c.config('RESETSTAT');
      c.disconnect();
      return Object.fromEntries([...info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
    },
    /** Microseconds Redis spent per command since the last CONFIG RESETSTAT (INFO commandstats `usec`; a script's own commands are counted under them too). */
    async commandMicros() {
      const c = new Redis(url);
      const info = await c.info('commandstats');
      c.disconnect();
      return Object.fromEntries([...info.matchAll(/cmdstat_([^:]+):calls=\d+,usec=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
    },
    async flush() {
      const c = new Redis(url);
      await c.flushall();
      c.disconnect();
    },
    stop: async () => {
      proc.kill('SIGKILL');
    },
  };
}
