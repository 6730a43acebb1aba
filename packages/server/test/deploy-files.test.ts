// The container files (Dockerfile, deploy/compose/*.yml) cannot be built here
// (no container daemon), so they are checked as files: they run the command
// the tests run, every setting they pass is one the server accepts (and the
// values load), and they use the shipped nginx and NATS configurations. Also
// the local cluster command (npm run cluster:local) in its --check mode.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLI } from 'realtime-message-testing';
import { CONFIG_ENV_NAMES, loadConfig } from '../src/app/config.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string): string => readFileSync(`${root}${path}`, 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
}
const compose = (file: string): Record<string, Service> => (parse(read(`deploy/compose/${file}`), { merge: true }) as { services: Record<string, Service> }).services;
const FILES = ['one-node.yml', 'three-nodes.yml', 'nats-regions.yml'];
/** The command the tests run (NodeProcess): node and the built CLI, relative to the repository root. */
const TEST_COMMAND = ['node', relative(root, CLI)];
const isNode = (s: Service): boolean => s.image === 'realtime-message:local';

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  it('is multi-stage on Node 20 slim, installs only production dependencies, runs as a non-root user', () => {
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(new Set(froms)).toEqual(new Set(['node:20-slim']));
    expect(text).toMatch(/npm ci --omit=dev .*--workspace=realtime-message/);
    const runtime = text.slice(text.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).not.toMatch(/npm ci --no-audit/);
  });

  it('checks /health and runs the tests\u2019 command in exec form (SIGTERM reaches node, which drains)', () => {
    expect(text).toMatch(/^HEALTHCHECK .*\n?.*\/health/m);
    const cmd = /^CMD (\[.*\])$/m.exec(text);
    expect(cmd, 'CMD in exec form').not.toBeNull();
    expect(JSON.parse(cmd![1]!)).toEqual(TEST_COMMAND);
    expect(text).not.toMatch(/^ENTRYPOINT /m);
  });
});

describe.each(FILES)('deploy/compose/%s', (file) => {
  const services = compose(file);
  const nodes = Object.entries(services).filter(([, s]) => isNode(s));

  it('runs the server image with the tests\u2019 command', () => {
    expect(nodes.length).toBeGreaterThanOrEqual(1);
    for (const [, s] of nodes) {
      expect(s.command).toEqual(TEST_COMMAND);
      expect(s.build).toEqual({ context: '../..', dockerfile: 'Dockerfile' });
    }
  });

  it('sets only settings the server accepts, and they load', () => {
    for (const [name, s] of nodes) {
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
      expect(Object.keys(env).filter((k) => !CONFIG_ENV_NAMES.includes(k)), `unknown settings in ${name}`).toEqual([]);
      expect(() => loadConfig(env), name).not.toThrow();
    }
  });
});

describe('compose files use the shipped configurations', () => {
  it('three-nodes.yml: nginx runs deploy/nginx/realtime-message.conf, whose upstreams are its node services', () => {
    const services = compose('three-nodes.yml');
    expect(services.nginx!.volumes).toContain('../nginx/realtime-message.conf:/etc/nginx/conf.d/default.conf:ro');
    const recipe = read('deploy/nginx/realtime-message.conf');
    const upstreams = [...recipe.matchAll(/^\s*server (\S+):(\d+) /gm)].map((m) => `${m[1]}:${m[2]}`);
    const nodes = Object.entries(services).filter(([, s]) => isNode(s)).map(([name, s]) => `${name}:${s.environment!.PORT}`);
    expect(new Set(upstreams)).toEqual(new Set(nodes));
    // Every node shares the settings that must match (docs/deploy.md).
    const shared = ['REDIS_URL', 'REDIS_KEY_PREFIX', 'PRESENCE_TTL_MS', 'PRESENCE_DISCONNECT_GRACE_MS', 'PRESENCE_REAPER_INTERVAL_MS', 'TRUST_PROXY'];
    const envs = Object.values(services).filter(isNode).map((s) => shared.map((k) => s.environment![k]));
    expect(envs.every((e) => JSON.stringify(e) === JSON.stringify(envs[0]))).toBe(true);
  });

  it('nats-regions.yml: the NATS servers run deploy/nats/hub.conf and leaf.conf with every variable they read', () => {
    const services = compose('nats-regions.yml');
    const natsServices = Object.values(services).filter((s) => s.image?.startsWith('nats:'));
    expect(natsServices).toHaveLength(3);
    for (const s of natsServices) {
      const conf = s.command![1]!.replace('/etc/nats/', '');
      expect(s.volumes).toContain(`../nats/${conf}:/etc/nats/${conf}:ro`);
      const vars = new Set([...read(`deploy/nats/${conf}`).replace(/#.*$/gm, '').matchAll(/\$([A-Z_]+)/g)].map((m) => m[1]));
      expect(new Set(Object.keys(s.environment ?? {}))).toEqual(vars);
    }
  });
});

describe('npm run cluster:local', () => {
  it('--check starts Redis, three nodes and nginx on free ports, answers /ready through nginx, and stops', async () => {
    const { stdout } = await exec(process.execPath, [`${root}deploy/local-cluster.mjs`, '--check'], { timeout: 40_000 });
    expect(stdout).toMatch(/^ok: 3 nodes behind nginx at http:\/\/127\.0\.0\.1:\d+/m);
    expect(JSON.parse(read('package.json')).scripts['cluster:local']).toBe('npm run build:app && node deploy/local-cluster.mjs');
  }, 50_000);
});
