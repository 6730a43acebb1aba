#!/usr/bin/env node
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger, createRealtimeServer } from './server.js';

async function runServer(config: Config): Promise<void> {
  const server = createRealtimeServer(config);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, 'signal received');
    void server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A worker whose primary is gone (killed, or past its deadline) shuts down too:
  // nothing may keep serving without a supervisor.
  if (cluster.isWorker) process.on('disconnect', () => stop('primary gone'));
  process.on('unhandledRejection', (err) => server.logger.error({ err }, 'unhandled rejection'));
  await server.listen();
}

function runPrimary(config: Config): void {
  const logger = createLogger(config.logLevel);
  logger.info({ workers: config.workers, port: config.port }, 'starting workers (Node cluster, one port, shared Redis)');
  let stopping = false;
  for (let i = 0; i < config.workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'worker died; starting a new one');
    setTimeout(() => cluster.fork(), 1_000).unref();
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    // Workers get their own drain delay and shutdown timeout plus a margin; then any that is
    // still running is killed, so the primary never exits leaving workers behind.
    const deadline = setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      process.exit(1);
    }, config.drainReadyDelayMs + config.shutdownTimeoutMs + 2_000);
    deadline.unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`realtime-message: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
if (config.workers > 1 && cluster.isPrimary) runPrimary(config);
else
  runServer(config).catch((err: unknown) => {
    process.stderr.write(`realtime-message: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
