import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freePort, natsServerBinary } from 'realtime-message-testing';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));

// deploy/nats/: the hub and leaf configurations, and the loopback launcher (a hub, two leaves, one node per region).
describe('deploy/nats', () => {
  it('hub.conf and leaf.conf are valid nats-server configurations', async () => {
    const env = { ...process.env, NATS_SERVER_NAME: 'x', NATS_LISTEN: '127.0.0.1:1', NATS_MONITOR: '127.0.0.1:2', NATS_STORE_DIR: '/tmp/none', NATS_LEAF_LISTEN: '127.0.0.1:3', NATS_DOMAIN: 'eu', NATS_HUB_LEAF_URL: 'nats://127.0.0.1:3' };
    for (const conf of ['hub.conf', 'leaf.conf']) {
      const { stderr, stdout } = await exec(natsServerBinary(), ['-c', `${root}deploy/nats/${conf}`, '-t'], { env });
      expect(stdout + stderr).toContain(`configuration file ${root}deploy/nats/${conf} is valid`);
    }
  });

  it('loopback.mjs --check starts the topology, a write in one region is read in the other, and it stops', async () => {
    // The launcher uses BASE_PORT + 0..40; start from a free port (the run's other ports are random too).
    const base = Math.min(await freePort(), 65_000);
    const { stdout } = await exec(process.execPath, [`${root}deploy/nats/loopback.mjs`, '--check'], { env: { ...process.env, BASE_PORT: String(base), LOG_LEVEL: 'warn' }, timeout: 60_000 });
    expect(stdout).toMatch(/^ok: written in eu .* read in us .* after \d+ ms/m);
  }, 70_000);
});
