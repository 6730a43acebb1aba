import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Cluster, Redis } from 'ioredis';
import { pino, type Logger as PinoLogger } from 'pino';
import { Server } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from 'realtime-message-protocol';
import type { RedisClient } from '../engines/redis/backend.js';
import { REDIS_BATCHED_COMMANDS } from '../engines/redis/redis-engine.js';
import { Extensions } from '../extensions/extension.js';
import { createJwtVerifier, tokenAuth } from '../extensions/jwt.js';
import { PresenceMetrics } from '../observability/metrics.js';
import { createHttpApp } from '../transports/http/app.js';
import { defaultDemoDir } from '../transports/http/static.js';
import { UpgradeGuard } from '../transports/http/upgrade.js';
import { attachCentrifugo, CENTRIFUGO_WEBSOCKET_PATH, type CentrifugoEndpoint } from '../transports/centrifugo/index.js';
import { checkOriginOnEveryRequest, connectionsPerAddress, oneConnectAtATime } from '../transports/socketio/engine-guard.js';
import { LogSummary } from '../core/shared/log-summary.js';
import { checkHealth, type HealthCheck } from '../core/shared/health.js';
import type { Config } from './config.js';
import { initPresence, type PresenceRuntime } from './init-presence.js';
import { centrifugoRuntime } from './centrifugo-runtime.js';
import { DeferredNatsStatusStore } from './nats-status.js';
import { ClusterCheck } from './cluster-check.js';
import { MemoryStatusStore } from '../engines/memory/status-store.js';
import { ClusterControl, localActions } from './cluster-control.js';

export interface RealtimeServer {
  /** The Node HTTP server every endpoint shares. */
  readonly http: HttpServer;
  /** The Fastify app of the HTTP routes. */
  readonly app: FastifyInstance;
  readonly io: Server<ClientToServerEvents, ServerToClientEvents>;
  readonly presence: PresenceRuntime;
  /** Centrifugo's client protocol at `/connection/websocket` (undefined when channels are off). */
  readonly centrifugo: CentrifugoEndpoint | undefined;
  readonly logger: PinoLogger;
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /**
   * Graceful shutdown (the drain of SPEC §10): `/ready` answers 503 for
   * `drainReadyDelayMs`, then the node stops accepting, tells its clients to
   * reconnect elsewhere and hands its presence connections to the disconnect
   * grace (with Redis; on the memory engine they leave at once), bounded by
   * `shutdownTimeoutMs`. Idempotent.
   */
  close(): Promise<void>;
  /** Whether close() has begun (`/ready` answers 503). */
  readonly draining: boolean;
}

export function createLogger(level: string): PinoLogger {
  return pino({
    level,
    base: { pid: process.pid },
    // Never log credentials, wherever they appear.
    redact: { paths: ['token', '*.token', 'auth', '*.auth', 'headers.authorization', '*.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
  });
}

/** The package's version, for `/api/info`. */
function packageVersion(): string {
  try {
    return String((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version ?? '0.0.0');
  } catch {
    return '0.0.0';
  }
}

function originAllowed(origin: string | undefined, allowed: string[] | undefined): boolean {
  if (!allowed) return true;
  // Non-browser clients send no Origin; browsers always do on WebSocket and CORS requests.
  if (origin === undefined) return true;
  return allowed.includes(origin.replace(/\/$/, ''));
}

/** The URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function redisClients(config: Config, logger: PinoLogger): { command: RedisClient; sub: RedisClient } {
  // Bounded waits: commands fail after one retry while Redis is unreachable
  // (clients are then told `internal`), and reconnects back off to 2 s.
  const common = {
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    // Heartbeats, joins, leaves and disconnects are already gathered per
    // event-loop turn (WriteBatcher): a batch, or a turn's lone write, is sent
    // at once, not held for the next turn's auto-pipeline, which would also
    // build a Pipeline (~3 KB of garbage) around that one command.
    autoPipeliningIgnoredCommands: [...REDIS_BATCHED_COMMANDS],
    retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2_000),
    commandTimeout: 5_000,
  };
  // Commands fail at once while the connection is down (no offline queue): a
  // client gets `unavailable` in milliseconds instead of waiting through the
  // reconnect backoff (seconds). The subscriber keeps its queue: subscriptions
  // made during an outage are sent when it reconnects.
  const command: RedisClient = config.redisClusterNodes
    ? new Cluster(config.redisClusterNodes, { redisOptions: common, clusterRetryStrategy: common.retryStrategy, enableAutoPipelining: true, autoPipeliningIgnoredCommands: common.autoPipeliningIgnoredCommands, enableOfflineQueue: false })
    : new Redis(config.redisUrl!, { ...common, enableOfflineQueue: false });
  const sub: RedisClient = config.redisClusterNodes
    ? new Cluster(config.redisClusterNodes, { redisOptions: { ...common, commandTimeout: undefined }, shardedSubscribers: true })
    : new Redis(config.redisUrl!, { ...common, commandTimeout: undefined });
  // One line when Redis cannot be reached, naming what was tried; then at
  // most one summary line per 5 s with how many more errors there were.
  const target = config.redisClusterNodes ? `REDIS_CLUSTER_NODES=${config.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}` : `REDIS_URL=${redactUrl(config.redisUrl!)}`;
  const summary = new LogSummary(logger, `redis unreachable (${target}); retrying every 2 s at most`);
  for (const [name, c] of [['command', command], ['sub', sub]] as const) {
    c.on('error', (err: Error) => summary.note(name, { client: name, err: err.message }));
  }
  return { command, sub };
}

/**
 * The complete standalone server, composed from its parts: the storage
 * (memory, or Redis with one shared subscriber connection), presence over
 * Socket.IO with the configured extensions, and the HTTP routes on Fastify,
 * all on one port. Room messages travel through the engine's own pub/sub: no
 * Socket.IO adapter is installed.
 */
export function createRealtimeServer(config: Config, opts: { logger?: PinoLogger } = {}): RealtimeServer {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const refusals = new LogSummary(logger, 'refused connections');
  const metrics = new PresenceMetrics({ defaultMetrics: true });
  const redis = config.engine === 'memory' ? undefined : redisClients(config, logger);
  const demoDir = config.demoDir === 'off' ? undefined : (config.demoDir ?? defaultDemoDir());

  let perAddress: ((req: IncomingMessage) => boolean) | undefined;
  let draining = false;
  // The client's address: behind a trusted balancer (TRUST_PROXY) from X-Forwarded-For, otherwise the connection's.
  const trusted = config.trustedProxies;
  const addressOf = (req: IncomingMessage): string | undefined => (trusted ? trusted.clientAddress(req) : req.socket.remoteAddress);
  const io = new Server<ClientToServerEvents, ServerToClientEvents>({
    // A payload above its own limit but within the frame cap gets a
    // payload_too_large ack; only a larger frame closes the connection.
    maxHttpBufferSize: config.maxFrameBytes,
    cors: { origin: config.allowedOrigins ?? true, credentials: false },
    // Socket.IO's `cors` does not stop WebSocket upgrades; this check does
    // (and checkOriginOnEveryRequest covers requests of an existing session).
    allowRequest: (req, cb) => {
      if (!originAllowed(req.headers.origin, config.allowedOrigins)) {
        refusals.note('origin', { origin: req.headers.origin });
        return cb('origin not allowed', false);
      }
      if (draining) return cb('the server is shutting down', false);
      if (perAddress && !perAddress(req)) {
        refusals.note('address', { address: addressOf(req), max: config.maxConnectionsPerAddress });
        return cb('too many connections from this address', false);
      }
      cb(null, true);
    },
    // Several workers share one port without sticky sessions: WebSocket only.
    transports: config.workers > 1 ? ['websocket'] : ['websocket', 'polling'],
    // Other WebSocket endpoints share the server: the UpgradeGuard answers stray upgrades.
    destroyUpgrade: false,
  });

  if (config.authMode === 'open') {
    logger.warn('auth is off (open mode): clients assert their own userId; set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL for production');
  }
  const verifyToken = config.authMode === 'jwt' ? createJwtVerifier(config.auth) : undefined;
  const channelNamespaces = config.channels.namespaces;
  if (config.channels.configPath !== undefined && channelNamespaces?.warnings.length) {
    logger.warn({ setting: 'CHANNELS_CONFIG', path: config.channels.configPath, ignored: channelNamespaces.warnings }, `CHANNELS_CONFIG: ${channelNamespaces.warnings.length} option(s) not supported and ignored: ${channelNamespaces.warnings.join('; ')}`);
  }
  // Centrifugo's config: one warning naming every ignored option; the HTTP callback proxies (subscribe and publish serve Socket.IO clients too).
  const cfRuntime = centrifugoRuntime(config.centrifugoConfig, channelNamespaces, logger);
  // User status on its own store when STATUS_STORE says so (NATS: a hub bucket reached through the region's server).
  const natsStatus =
    config.statusStore === 'nats' ? new DeferredNatsStatusStore({ servers: config.nats.url!.split(',').map((u) => u.trim()), hubDomain: config.nats.hubDomain, bucket: config.nats.bucket, name: config.nodeId, logger }) : undefined;
  const statusStore = natsStatus ?? (config.statusStore === 'memory' && config.engine !== 'memory' ? new MemoryStatusStore() : undefined);
  const presence = initPresence({
    io,
    redis: redis?.command,
    subscriber: redis?.sub,
    keyPrefix: config.redisKeyPrefix,
    backendLog: config.backendLog,
    heartbeatWindowMs: config.redisHeartbeatWindowMs,
    statusWindowMs: config.redisStatusWindowMs,
    ttlMs: config.ttlMs,
    reaperIntervalMs: config.reaperIntervalMs,
    reaperLookbackMs: config.reaperLookbackMs,
    disconnectGraceMs: config.disconnectGraceMs,
    maxStateBytes: config.maxStateBytes,
    maxMessageBytes: config.maxMessageBytes,
    rateLimit: config.rateLimit,
    maxRoomsPerSocket: config.maxRoomsPerSocket,
    maxChannelsPerSocket: config.channels.maxChannelsPerSocket,
    channels: { maxDataBytes: config.channels.maxDataBytes, ...(channelNamespaces ? { namespaces: channelNamespaces } : {}) },
    maxWatchedUsersPerSocket: config.maxWatchedUsersPerSocket,
    statusReads: config.statusReads,
    status: { awayAfterMs: config.statusAwayAfterMs, nodeId: config.nodeId, store: statusStore },
    maxOutboundBytes: config.maxOutboundBytes,
    snapshotBytesPerSecond: config.snapshotBytesPerSecond > 0 ? config.snapshotBytesPerSecond : false,
    verifyToken,
    extensions: cfRuntime.extensions,
    logger,
    metrics,
  });
  const engine = config.engine;

  // What /ready checks; the drain adds its own failing check (503 on the way down).
  const readiness: HealthCheck[] = natsStatus ? [...presence.health, natsStatus.health] : [...presence.health];
  // A misconfigured node (other presence timings than older nodes, a clock far off) reports it at start and in /ready.
  const clusterCheck =
    redis && config.clusterCheck !== 'off'
      ? new ClusterCheck({
          redis: redis.command,
          id: `${config.nodeId ?? hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
          settings: { prefix: config.redisKeyPrefix, ttlMs: config.ttlMs, graceMs: config.disconnectGraceMs, lookbackMs: config.reaperLookbackMs },
          mode: config.clusterCheck,
          logger,
          onChange: (problems) => {
            const i = readiness.findIndex((c) => c.name === 'cluster');
            if (i >= 0) readiness.splice(i, 1);
            if (problems.length > 0) readiness.push({ name: 'cluster', check: () => Promise.reject(new Error(problems.join('; '))) });
          },
        })
      : undefined;
  // The server API's cluster-wide operations (node info, channels survey, disconnect/unsubscribe on every node) over the engine's control bus.
  let centrifugo: CentrifugoEndpoint | undefined;
  const cluster = presence.channels
    ? new ClusterControl({
        bus: presence.control,
        node: { uid: randomUUID(), name: config.nodeId ?? `${hostname()}-${process.pid}`, version: packageVersion(), startedAt: Date.now() },
        local: localActions(presence.local, () => centrifugo),
        logger,
      })
    : undefined;
  const app = createHttpApp({
    health: readiness,
    trustProxy: trusted ? (address) => trusted.trusts(address) : undefined,
    engine,
    metrics,
    demoDir,
    status: presence.status ? { service: presence.status, verifyToken, apiKey: config.apiKey, reads: config.statusReads, rateLimit: config.statusRateLimit } : undefined,
    allowedOrigins: config.allowedOrigins,
    serverApi:
      config.apiKey && presence.channels && cluster
        ? {
            channels: presence.channels,
            apiKey: config.apiKey,
            maxDataBytes: config.channels.maxDataBytes,
            cluster,
          }
        : undefined,
  });
  const http = app.server;
  io.attach(http);
  const guard = new UpgradeGuard(http);
  guard.claim('/socket.io/');
  centrifugo = presence.channels
    ? attachCentrifugo(http, {
        channels: presence.channels,
        presence: presence.service,
        // The connect proxy answers connects without a token, before the token check.
        extensions: new Extensions([...cfRuntime.extensions, ...(verifyToken ? [tokenAuth(verifyToken)] : [])]),
        tokens: config.authMode === 'jwt' ? config.auth : undefined,
        allowOrigin: (origin) => originAllowed(origin, config.allowedOrigins),
        version: packageVersion(),
        logger,
        clientAddress: addressOf,
        ...config.centrifugo,
      })
    : undefined;
  if (centrifugo) guard.claim(CENTRIFUGO_WEBSOCKET_PATH);
  oneConnectAtATime(io, () => refusals.note('connect-flood', {}));
  if (config.allowedOrigins) checkOriginOnEveryRequest(io, (origin) => originAllowed(origin, config.allowedOrigins), (origin) => refusals.note('origin', { origin }));
  if (config.maxConnectionsPerAddress > 0) perAddress = connectionsPerAddress(io, config.maxConnectionsPerAddress, addressOf);

  let closing: Promise<void> | undefined;
  return {
    http,
    app,
    io,
    presence,
    centrifugo,
    logger,
    get draining() {
      return draining;
    },
    listen: async () => {
      await app.ready();
      // A wrong NATS setting (bucket) stops the start with its message; NATS not reachable yet is retried (/ready 503 meanwhile).
      await natsStatus?.waitOpen(3_000);
      if (redis && redis.command.status !== 'ready') {
        // Without an offline queue, requests before the first connection would
        // fail: give Redis a moment to answer before accepting clients.
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            redis.command.off('ready', done);
            resolve();
          };
          const timer = setTimeout(done, 3_000);
          redis.command.once('ready', done);
        });
      }
      if (config.redisFailFastMs > 0 && redis) {
        // Operators who prefer an exit (and a restart by their supervisor) to waiting for Redis.
        const report = await checkHealth(presence.health, config.redisFailFastMs);
        if (!report.ok) {
          refusals.stop();
          await presence.dispose({ leave: false });
          for (const c of [redis.command, redis.sub]) c.disconnect();
          throw new Error(`Redis could not be reached within REDIS_FAIL_FAST_MS=${config.redisFailFastMs} (${config.redisClusterNodes ? 'REDIS_CLUSTER_NODES' : 'REDIS_URL'})`);
        }
      }
      await clusterCheck?.start();
      // Subscribed to the control bus before clients arrive, within 3 s (with Redis down it keeps trying in the background; the node is missing from the others' /api/info meanwhile).
      if (cluster) await Promise.race([cluster.start(), new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          const port = (http.address() as AddressInfo).port;
          logger.info({ port, engine, authMode: config.authMode, workers: config.workers }, 'realtime-message listening');
          resolve(port);
        });
      });
    },
    close: () =>
      (closing ??= (async () => {
        // With Redis the connections resume on other nodes; the memory engine has nowhere to resume them.
        const handOff = engine !== 'memory';
        draining = true;
        const leftRegistry = clusterCheck?.stop();
        readiness.push({ name: 'drain', check: () => Promise.reject(new Error('draining')) });
        logger.info({ drainReadyDelayMs: config.drainReadyDelayMs, handOff }, 'draining: /ready answers 503');
        if (config.drainReadyDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.drainReadyDelayMs));
        logger.info('shutting down');
        const work = (async () => {
          // Stop accepting (new handshakes are refused from here), then tell
          // every client to reconnect elsewhere: Centrifugo with 3001, Socket.IO
          // by closing its transport (clients reconnect on a transport close).
          http.close();
          refusals.stop();
          cfRuntime.stop();
          // Presence: with Redis each connection gets the disconnect grace, as
          // when its client goes away, so that its client resumes it on another
          // node and others see no leave and no join; with memory, leave now.
          await centrifugo?.close({ grace: handOff });
          // The other nodes drop this one from /api/info at once.
          await cluster?.stop();
          await presence.dispose({ leave: handOff ? 'grace' : true });
          await natsStatus?.close();
          await io.close();
          await leftRegistry;
          if (redis) for (const c of [redis.command, redis.sub]) c.disconnect();
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
