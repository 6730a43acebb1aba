// Where the tail comes from: what a measured run records besides latency.
//   - the server's event-loop delay, utilisation and GC (bench/lib/probe.mjs, loaded with --import),
//   - the load generator's own event-loop delay and CPU (this process),
//   - Redis: CPU time, commands, scripts and bytes received per acked heartbeat (INFO),
//   - the machine's load average.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

export const PROBE = fileURLToPath(new URL('./probe.mjs', import.meta.url));
const probeDir = mkdtempSync(join(tmpdir(), 'rm-probe-'));
process.on('exit', () => rmSync(probeDir, { recursive: true, force: true }));

/** Node options and environment that load the probe into a server. */
export function probeOptions() {
  return { execArgv: ['--import', PROBE], env: { PROBE_DIR: probeDir } };
}

/** Asks the server's probe for what it recorded since the last ask (and resets it). */
export async function readProbe(pid) {
  if (!pid) return undefined;
  const file = join(probeDir, `${pid}.json`);
  const before = existsSync(file) ? statSync(file).mtimeMs : 0;
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    return undefined;
  }
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 10));
    if (existsSync(file) && statSync(file).mtimeMs !== before) {
      try {
        return JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        /* being written */
      }
    }
  }
  return undefined;
}

async function redisInfo(client) {
  if (!client) return undefined;
  const text = await client.info('all');
  const num = (re) => Number(re.exec(text)?.[1] ?? 0);
  let calls = 0;
  let scripts = 0;
  for (const m of text.matchAll(/^cmdstat_([a-z_|]+):calls=(\d+)/gm)) {
    calls += Number(m[2]);
    if (m[1] === 'evalsha' || m[1] === 'eval' || m[1] === 'fcall') scripts += Number(m[2]);
  }
  return { cpu: num(/used_cpu_sys:([\d.]+)/) + num(/used_cpu_user:([\d.]+)/), calls, scripts, netIn: num(/total_net_input_bytes:(\d+)/), netOut: num(/total_net_output_bytes:(\d+)/) };
}

/**
 * Starts recording; `stop(acked)` returns the diagnostics of the interval.
 * `server.pid` must run the probe (else its part is missing); `redisUrl` optional.
 */
export async function startDiagnostics(server, redisUrl) {
  const client = redisUrl ? new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 }) : undefined;
  client?.on('error', () => {});
  await readProbe(server.pid);
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const r0 = await redisInfo(client).catch(() => undefined);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const load0 = loadavg()[0];
  return {
    async stop(acked) {
      eld.disable();
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const probe = await readProbe(server.pid);
      const r1 = await redisInfo(client).catch(() => undefined);
      client?.disconnect();
      const ms = (ns) => Math.round(ns / 1e3) / 1e3;
      const per = (x) => (acked > 0 ? Math.round((x / acked) * 100) / 100 : undefined);
      return {
        loadAverage: [Math.round(load0 * 100) / 100, Math.round(loadavg()[0] * 100) / 100],
        server: probe,
        generator: {
          eventLoopDelay: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max) },
          cpuPercent: Math.round(((cpu.user + cpu.system) / 1e4 / seconds) * 10) / 10,
        },
        redis:
          r0 && r1
            ? {
                cpuPercent: Math.round(((r1.cpu - r0.cpu) / seconds) * 1000) / 10,
                cpuMicrosPerAck: per((r1.cpu - r0.cpu) * 1e6),
                commandsPerAck: per(r1.calls - r0.calls),
                scriptsPerAck: per(r1.scripts - r0.scripts),
                bytesInPerAck: per(r1.netIn - r0.netIn),
                bytesOutPerAck: per(r1.netOut - r0.netOut),
              }
            : undefined,
      };
    },
  };
}
