import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createShardedAdapter } from '@socket.io/redis-adapter';
import { Cluster, Redis } from 'ioredis';
import { pino, type Logger as PinoLogger } from 'pino';
import { Server } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from 'realtime-message-protocol';
import { createJwtVerifier } from '../gateway/auth.js';
import { initPresence, type PresenceRuntime } from '../gateway/init-presence.js';
import { PresenceMetrics } from '../gateway/metrics.js';
import type { RedisClient } from '../engines/redis/redis-engine.js';
import type { Config } from './config.js';
import { defaultDemoDir, serveStatic } from './static.js';

export interface RealtimeServer {
  readonly http: HttpServer;
  readonly io: Server<ClientToServerEvents, ServerToClientEvents>;
  readonly presence: PresenceRuntime;
  readonly logger: PinoLogger;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Graceful shutdown, bounded by `shutdownTimeoutMs`. Idempotent. */
  close(): Promise<void>;
}

export function createLogger(level: string): PinoLogger {
  return pino({
    level,
    base: { pid: process.pid },
    // Never log credentials, wherever they appear.
    redact: { paths: ['token', '*.token', 'auth', '*.auth', 'headers.authorization', '*.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
  });
}

function originAllowed(origin: string | undefined, allowed: string[] | undefined): boolean {
  if (!allowed) return true;
  // Non-browser clients send no Origin; browsers always do on WebSocket and CORS requests.
  if (origin === undefined) return true;
  return allowed.includes(origin.replace(/\/$/, ''));
}

function redisClients(config: Config, logger: PinoLogger): { command: RedisClient; pub: RedisClient; sub: RedisClient } {
  // Bounded waits: commands fail after one retry while Redis is unreachable
  // (clients are then told `internal`), and reconnects back off to 2 s.
  const common = {
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2_000),
    commandTimeout: 5_000,
  };
  const make = (): RedisClient =>
    config.redisClusterNodes
      ? new Cluster(config.redisClusterNodes, { redisOptions: common, clusterRetryStrategy: common.retryStrategy, enableAutoPipelining: true })
      : new Redis(config.redisUrl!, common);
  const command = make();
  const pub = make();
  const sub = config.redisClusterNodes
    ? new Cluster(config.redisClusterNodes, { redisOptions: { ...common, commandTimeout: undefined }, shardedSubscribers: true })
    : new Redis(config.redisUrl!, { ...common, commandTimeout: undefined });
  for (const [name, c] of [['command', command], ['pub', pub], ['sub', sub]] as const) {
    let last = 0;
    c.on('error', (err: Error) => {
      // One line per client per 5 s at most: a down Redis must not flood the log.
      if (Date.now() - last > 5_000) {
        last = Date.now();
        logger.warn({ client: name, err: err.message }, 'redis connection error');
      }
    });
  }
  return { command, pub, sub };
}

/** The complete standalone server: Socket.IO presence, health, readiness, metrics. */
export function createRealtimeServer(config: Config, opts: { logger?: PinoLogger } = {}): RealtimeServer {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = new PresenceMetrics({ defaultMetrics: true });
  const redis = config.engine === 'memory' ? undefined : redisClients(config, logger);

  const http = createServer();
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(http, {
    maxHttpBufferSize: config.maxMessageBytes + 4_096,
    cors: { origin: config.allowedOrigins ?? true, credentials: false },
    // Socket.IO's `cors` does not stop WebSocket upgrades; this check does.
    allowRequest: (req, cb) => {
      const ok = originAllowed(req.headers.origin, config.allowedOrigins);
      if (!ok) logger.info({ origin: req.headers.origin }, 'refused a connection from a disallowed origin');
      cb(ok ? null : 'origin not allowed', ok);
    },
    // Several workers share one port without sticky sessions: WebSocket only.
    transports: config.workers > 1 ? ['websocket'] : ['websocket', 'polling'],
    adapter: redis ? createShardedAdapter(redis.pub, redis.sub, { subscriptionMode: 'dynamic', channelPrefix: `${config.redisKeyPrefix}sio` }) : undefined,
  });

  if (config.authMode === 'open') {
    logger.warn('auth is off (open mode): clients assert their own userId; set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL for production');
  }
  const presence = initPresence({
    io,
    redis: redis?.command,
    keyPrefix: config.redisKeyPrefix,
    ttlMs: config.ttlMs,
    reaperIntervalMs: config.reaperIntervalMs,
    reaperLookbackMs: config.reaperLookbackMs,
    disconnectGraceMs: config.disconnectGraceMs,
    maxStateBytes: config.maxStateBytes,
    maxMessageBytes: config.maxMessageBytes,
    rateLimit: config.rateLimit,
    maxRoomsPerSocket: config.maxRoomsPerSocket,
    verifyToken: config.authMode === 'jwt' ? createJwtVerifier(config.auth) : undefined,
    logger,
    metrics,
  });

  const demoDir = config.demoDir === 'off' ? undefined : (config.demoDir ?? defaultDemoDir());
  const send = (res: ServerResponse, status: number, body: string, type = 'application/json'): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // Socket.IO answers its own path; everything else is ours.
    if (req.url?.startsWith('/socket.io/')) return;
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON.stringify({ error: 'method not allowed' }));
    if (path === '/health') return send(res, 200, JSON.stringify({ status: 'ok' }));
    if (path === '/ready') {
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 1_000).unref());
      void Promise.race([presence.service.engine.ping(), timeout]).then(
        () => send(res, 200, JSON.stringify({ status: 'ready', engine: presence.service.engine.kind })),
        () => send(res, 503, JSON.stringify({ status: 'unavailable', engine: presence.service.engine.kind })),
      );
      return;
    }
    if (path === '/metrics') {
      void metrics.registry.metrics().then(
        (text) => send(res, 200, text, metrics.registry.contentType),
        () => send(res, 500, 'metrics failed', 'text/plain'),
      );
      return;
    }
    if (demoDir && serveStatic(demoDir, req, res)) return;
    if (path === '/' && !demoDir) return send(res, 200, 'realtime-message is running. The demo is not built: run `npm run build`.', 'text/plain; charset=utf-8');
    send(res, 404, JSON.stringify({ error: 'not found' }));
  });

  let closing: Promise<void> | undefined;
  return {
    http,
    io,
    presence,
    logger,
    listen: () =>
      new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          const port = (http.address() as AddressInfo).port;
          logger.info({ port, engine: presence.service.engine.kind, authMode: config.authMode, workers: config.workers }, 'realtime-message listening');
          resolve(port);
        });
      }),
    close: () =>
      (closing ??= (async () => {
        logger.info('shutting down');
        const work = (async () => {
          // Stop accepting, make every local connection leave at once (other
          // nodes see `leave` now, not after TTL), then close sockets and Redis.
          http.close();
          await presence.dispose({ leave: true });
          await io.close();
          if (redis) for (const c of [redis.command, redis.pub, redis.sub]) c.disconnect();
        })();
        const timer = new Promise<void>((resolve) => setTimeout(() => {
          logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting anyway');
          resolve();
        }, config.shutdownTimeoutMs).unref());
        await Promise.race([work.catch((err: unknown) => logger.error({ err }, 'shutdown failed')), timer]);
        http.closeAllConnections();
      })()),
  };
}
