// Starts the servers under test as child processes on free ports.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { processTree } from './stats.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = `${root}packages/server/dist/app/cli.js`;
export const BASELINE = `${root}bench/lib/baseline-server.mjs`;
export const STATUS_BASELINE = `${root}bench/lib/status-baseline-server.mjs`;

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * kind: 'ours' (the realtime-message CLI), 'previous' (the CLI at PREVIOUS_CLI), 'bare' (baseline a), 'lua' (baseline b),
 * 'http-bare' (the bare Fastify routes of the status benchmark).
 * `execArgv`: Node options of the server process (e.g. `--cpu-prof`).
 * `script`: run this file instead (a scenario's own baseline server).
 * Resolves once the server logs that it listens.
 */
export async function startServer(kind, env = {}, { execArgv = [], script: ownScript } = {}) {
  const port = await freePort();
  // 'previous': the CLI of an earlier build (PREVIOUS_CLI), to measure a change against the commit before it.
  // OURS_CLI: run the CLI of another build as ours (a clean build of a commit, while the tree is being edited).
  const script = ownScript ?? (kind === 'ours' ? (process.env.OURS_CLI ?? CLI) : kind === 'previous' ? process.env.PREVIOUS_CLI : kind === 'http-bare' ? STATUS_BASELINE : BASELINE);
  if (!script) throw new Error('PREVIOUS_CLI must point at the cli.js of the earlier build');
  const proc = spawn(process.execPath, [...execArgv, script], {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      // The benchmark measures presence, not the per-connection rate limiter
      // (it still runs, with limits above the offered load).
      RATE_LIMIT_EVENTS_PER_SEC: '100000',
      RATE_LIMIT_BURST: '100000',
      // Likewise the per-client limit of the status REST API (all load comes from 127.0.0.1).
      STATUS_RATE_LIMIT: '10000000',
      STATUS_RATE_LIMIT_BURST: '20000000',
      BASELINE_MODE: kind,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  await new Promise((resolve, reject) => {
    const workers = Number(env.WORKERS ?? 1);
    let listening = 0;
    const onData = (d) => {
      for (const line of String(d).split('\n')) {
        if (!line) continue;
        logs.push(line);
        if (line.includes('listening')) listening++;
        if (listening >= workers) resolve();
      }
    };
    // LOG_LEVEL=warn hides our 'listening' line; ask the process instead.
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}: ${logs.join('\n')}`)));
    const poll = setInterval(async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        if (res.ok) {
          clearInterval(poll);
          // With several workers, wait until every one of them answers.
          if (workers > 1) await new Promise((r) => setTimeout(r, 1_500));
          resolve();
        }
      } catch {
        /* not yet */
      }
    }, 50);
    proc.once('exit', () => clearInterval(poll));
  });
  return {
    kind,
    port,
    pid: proc.pid,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      // Remember the whole tree (workers too) before asking it to stop.
      const tree = processTree(proc.pid);
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await gone;
        clearTimeout(t);
      }
      // Nothing of a run may outlive it: kill whatever of the tree is left.
      for (const pid of tree) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    },
  };
}
