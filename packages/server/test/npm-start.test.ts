import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { waitFor } from 'realtime-message-testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('a SIGTERM sent to the npm process reaches the server, which shuts down', async () => {
    // --ignore-scripts skips the prestart build: the test run has built already.
    const npm = spawn('npm', ['start', '--ignore-scripts'], { cwd: root, env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DEMO_DIR: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const logs: string[] = [];
    npm.stdout.on('data', (d: Buffer) => logs.push(String(d)));
    npm.stderr.on('data', (d: Buffer) => logs.push(String(d)));
    let serverPid: number | undefined;
    onTestFinished(() => {
      if (npm.exitCode === null) npm.kill('SIGKILL');
      if (serverPid !== undefined && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
    });
    const line = await waitFor(() => logs.join('').split('\n').find((l) => l.includes('realtime-message listening')), { timeoutMs: 15_000, what: 'the server to listen' });
    serverPid = (JSON.parse(line) as { pid: number }).pid;
    expect(alive(serverPid)).toBe(true);
    npm.kill('SIGTERM');
    await waitFor(() => !alive(serverPid!), { timeoutMs: 10_000, what: `server pid ${serverPid} to exit after SIGTERM to npm` });
  });
});
