import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { z } from 'zod';
import { ChannelNamespaces, ChannelsConfigError, parseDuration } from '../core/channels/namespaces.js';
import { parseTrustedProxies } from './trusted-proxies.js';
import { CentrifugoConfigError, applyCentrifugoSettings, loadCentrifugoSettings, type CentrifugoSettings } from './centrifugo-config.js';

const int = (name: string, min: number, def: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < min) {
        ctx.addIssue({ code: 'custom', message: `${name} must be an integer >= ${min} (got '${v}')` });
        return z.NEVER;
      }
      return n;
    });

/** A Go duration (`"25s"`, `"500ms"`) or seconds, in ms; `-1` (Centrifugo's "off") is 0. */
const goDuration = (name: string, def: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      if (v.trim() === '-1') return 0;
      try {
        return parseDuration(/^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v.trim(), name);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    });

/** `scheme://host[:port]` with an http(s) scheme and nothing else: what a browser sends as Origin. */
function isOrigin(entry: string): boolean {
  try {
    const u = new URL(entry);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === entry;
  } catch {
    return false;
  }
}

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const EnvSchema = z.object({
  PORT: int('PORT', 0, 3000).refine((p) => p < 65_536, { message: 'PORT must be < 65536' }),
  HOST: optionalString,
  REDIS_URL: optionalString.refine((v) => v === undefined || /^rediss?:\/\//.test(v), { message: "REDIS_URL must start with redis:// or rediss://" }),
  REDIS_CLUSTER_NODES: optionalString.transform((v, ctx) => {
    if (v === undefined) return undefined;
    const nodes = v.split(',').map((s) => s.trim()).filter(Boolean).map((hp) => {
      const m = /^([^:\s]+):(\d{1,5})$/.exec(hp);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `REDIS_CLUSTER_NODES must be host:port,host:port,... (bad entry '${hp}')` });
        return { host: '', port: 0 };
      }
      return { host: m[1]!, port: Number(m[2]) };
    });
    return nodes;
  }),
  REDIS_FAIL_FAST_MS: int('REDIS_FAIL_FAST_MS', 0, 0),
  REDIS_HEARTBEAT_WINDOW_MS: int('REDIS_HEARTBEAT_WINDOW_MS', 0, 2),
  REDIS_STATUS_WINDOW_MS: int('REDIS_STATUS_WINDOW_MS', 0, 5),
  REDIS_KEY_PREFIX: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9_.:-]{1,64}$/.test(v), { message: "REDIS_KEY_PREFIX must be 1-64 characters of letters, digits and '_ . : -'" }),
  PRESENCE_TTL_MS: int('PRESENCE_TTL_MS', 1, 30_000),
  PRESENCE_REAPER_INTERVAL_MS: int('PRESENCE_REAPER_INTERVAL_MS', 1, 3_000),
  PRESENCE_REAPER_LOOKBACK_MS: int('PRESENCE_REAPER_LOOKBACK_MS', 1, 0),
  PRESENCE_DISCONNECT_GRACE_MS: int('PRESENCE_DISCONNECT_GRACE_MS', 0, 5_000),
  PRESENCE_MAX_STATE_BYTES: int('PRESENCE_MAX_STATE_BYTES', 2, 16_384),
  MAX_MESSAGE_BYTES: int('MAX_MESSAGE_BYTES', 1_024, 65_536),
  MAX_FRAME_BYTES: int('MAX_FRAME_BYTES', 4_096, 1_048_576),
  MAX_CONNECTIONS_PER_ADDRESS: int('MAX_CONNECTIONS_PER_ADDRESS', 0, 1_000),
  MAX_OUTBOUND_BYTES: int('MAX_OUTBOUND_BYTES', 65_536, 1_048_576),
  SNAPSHOT_BYTES_PER_SEC: int('SNAPSHOT_BYTES_PER_SEC', 0, 1_048_576),
  RATE_LIMIT_EVENTS_PER_SEC: int('RATE_LIMIT_EVENTS_PER_SEC', 1, 20),
  RATE_LIMIT_BURST: int('RATE_LIMIT_BURST', 1, 40),
  MAX_ROOMS_PER_SOCKET: int('MAX_ROOMS_PER_SOCKET', 1, 64),
  CHANNELS_CONFIG: optionalString,
  // Centrifugo's config.json (v5 or v6); read with Centrifugo's own variables by loadCentrifugoSettings.
  CENTRIFUGO_CONFIG: optionalString,
  MAX_CHANNELS_PER_SOCKET: int('MAX_CHANNELS_PER_SOCKET', 1, 128),
  CHANNEL_MAX_DATA_BYTES: int('CHANNEL_MAX_DATA_BYTES', 1, 65_536),
  // The Centrifugo endpoint (/connection/websocket), under Centrifugo's own environment names; durations are Go durations ("25s") or seconds.
  CENTRIFUGO_CLIENT_PING_INTERVAL: goDuration('CENTRIFUGO_CLIENT_PING_INTERVAL', 25_000),
  CENTRIFUGO_CLIENT_PONG_TIMEOUT: goDuration('CENTRIFUGO_CLIENT_PONG_TIMEOUT', 8_000),
  CENTRIFUGO_CLIENT_STALE_CLOSE_DELAY: goDuration('CENTRIFUGO_CLIENT_STALE_CLOSE_DELAY', 10_000),
  CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY: goDuration('CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY', 25_000),
  CENTRIFUGO_CLIENT_CHANNEL_LIMIT: int('CENTRIFUGO_CLIENT_CHANNEL_LIMIT', 0, 0),
  CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE: int('CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE', 0, 0),
  CENTRIFUGO_CLIENT_HISTORY_MAX_PUBLICATION_LIMIT: int('CENTRIFUGO_CLIENT_HISTORY_MAX_PUBLICATION_LIMIT', 1, 300),
  CENTRIFUGO_WEBSOCKET_MESSAGE_SIZE_LIMIT: int('CENTRIFUGO_WEBSOCKET_MESSAGE_SIZE_LIMIT', 1_024, 65_536),
  AUTH_JWT_SECRET: optionalString,
  AUTH_JWT_PUBLIC_KEY: optionalString,
  AUTH_JWKS_URL: optionalString.refine((v) => v === undefined || /^https?:\/\//.test(v), { message: 'AUTH_JWKS_URL must be an http(s) URL' }),
  AUTH_JWT_ISSUER: optionalString,
  AUTH_JWT_AUDIENCE: optionalString,
  AUTH_JWT_REQUIRE_EXP: optionalString.refine((v) => v === undefined || v === 'true' || v === 'false', { message: "AUTH_JWT_REQUIRE_EXP must be 'true' or 'false'" }),
  AUTH_JWT_MAX_LIFETIME_S: int('AUTH_JWT_MAX_LIFETIME_S', 0, 0),
  API_KEY: optionalString.refine((v) => v === undefined || /^[\x21-\x7e]{16,256}$/.test(v), {
    message: 'API_KEY must be 16-256 printable ASCII characters without spaces',
  }),
  STATUS_RATE_LIMIT: int('STATUS_RATE_LIMIT', 0, 100),
  STATUS_RATE_LIMIT_BURST: int('STATUS_RATE_LIMIT_BURST', 1, 200),
  STATUS_AWAY_AFTER_MS: int('STATUS_AWAY_AFTER_MS', 0, 0),
  MAX_WATCHED_USERS_PER_SOCKET: int('MAX_WATCHED_USERS_PER_SOCKET', 1, 1_000),
  STATUS_STORE: optionalString.refine((v) => v === undefined || v === 'memory' || v === 'redis' || v === 'nats', { message: "STATUS_STORE must be 'memory', 'redis' or 'nats'" }),
  NATS_URL: optionalString.refine((v) => v === undefined || v.split(',').every((u) => /^(nats|tls):\/\/[^\s/]+$/.test(u.trim())), { message: 'NATS_URL must be nats://host:port (or tls://), several comma-separated' }),
  NATS_HUB_DOMAIN: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9_-]{1,64}$/.test(v), { message: "NATS_HUB_DOMAIN must be a JetStream domain name (letters, digits, '_' and '-')" }),
  NATS_BUCKET: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9_-]{1,64}$/.test(v), { message: "NATS_BUCKET must be 1-64 letters, digits, '_' or '-'" }),
  BACKEND_LOG_PARTITIONS: int('BACKEND_LOG_PARTITIONS', 0, 0).refine((n) => n <= 1024, { message: 'BACKEND_LOG_PARTITIONS must be 0 (off) .. 1024' }),
  BACKEND_LOG_MAXLEN: int('BACKEND_LOG_MAXLEN', 1, 100_000).refine((n) => n <= 1e9, { message: 'BACKEND_LOG_MAXLEN must be 1 .. 1000000000' }),
  NODE_ID: optionalString.refine((v) => v === undefined || /^[\x21-\x7e]{1,64}$/.test(v), { message: 'NODE_ID must be 1-64 printable ASCII characters without spaces' }),
  REGION: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9_.-]{1,32}$/.test(v), { message: "REGION must be 1-32 letters, digits, '_', '.' or '-'" }),
  STATUS_READS: optionalString.refine((v) => v === undefined || v === 'public' || v === 'token', { message: "STATUS_READS must be 'public' or 'token'" }),
  ALLOWED_ORIGINS: optionalString.transform((v, ctx) => {
    if (v === undefined) return undefined;
    const list = v.split(',').map((s) => s.trim().replace(/\/$/, '')).filter(Boolean);
    for (const entry of list) {
      if (!isOrigin(entry)) ctx.addIssue({ code: 'custom', message: `ALLOWED_ORIGINS entries must be origins like https://app.example.com or http://localhost:5173 (bad entry '${entry}')` });
    }
    return list;
  }),
  WORKERS: optionalString.transform((v, ctx) => {
    if (v === undefined) return 1;
    if (v === 'auto') return availableParallelism();
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1 || n > 256) {
      ctx.addIssue({ code: 'custom', message: `WORKERS must be 'auto' or an integer 1..256 (got '${v}')` });
      return z.NEVER;
    }
    return n;
  }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().default('info'),
  SHUTDOWN_TIMEOUT_MS: int('SHUTDOWN_TIMEOUT_MS', 100, 10_000),
  CLUSTER_CHECK: optionalString.refine((v) => v === undefined || v === 'strict' || v === 'warn' || v === 'off', { message: "CLUSTER_CHECK must be 'strict', 'warn' or 'off'" }),
  DRAIN_READY_DELAY_MS: int('DRAIN_READY_DELAY_MS', 0, 0).refine((n) => n <= 600_000, { message: 'DRAIN_READY_DELAY_MS must be 0 .. 600000' }),
  TRUST_PROXY: optionalString.transform((v, ctx) => {
    if (v === undefined) return undefined;
    const parsed = parseTrustedProxies(v);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  }),
  DEMO_DIR: optionalString,
});

/** Every environment variable the server reads (deploy files are checked against it). */
export const CONFIG_ENV_NAMES: readonly string[] = Object.keys(EnvSchema.shape);

export type Config = ReturnType<typeof toConfig>;

function toConfig(e: z.output<typeof EnvSchema>) {
  const ttlMs = e.PRESENCE_TTL_MS;
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    redisKeyPrefix: e.REDIS_KEY_PREFIX ?? 'rm:',
    /** When > 0, the server exits at start unless Redis answers within this many ms; 0 = wait for it (/ready 503 meanwhile). */
    redisFailFastMs: e.REDIS_FAIL_FAST_MS,
    redisHeartbeatWindowMs: e.REDIS_HEARTBEAT_WINDOW_MS,
    redisStatusWindowMs: e.REDIS_STATUS_WINDOW_MS,
    engine: (e.REDIS_CLUSTER_NODES ? 'redis-cluster' : e.REDIS_URL ? 'redis' : 'memory') as 'memory' | 'redis' | 'redis-cluster',
    /** The backend log (docs/channels.md): publications and status events in N partitioned Redis Streams; undefined = off. */
    backendLog: e.BACKEND_LOG_PARTITIONS > 0 ? { partitions: e.BACKEND_LOG_PARTITIONS, maxLen: e.BACKEND_LOG_MAXLEN } : undefined,
    ttlMs,
    reaperIntervalMs: e.PRESENCE_REAPER_INTERVAL_MS,
    reaperLookbackMs: e.PRESENCE_REAPER_LOOKBACK_MS || 2 * ttlMs,
    disconnectGraceMs: e.PRESENCE_DISCONNECT_GRACE_MS,
    maxStateBytes: e.PRESENCE_MAX_STATE_BYTES,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    /** Largest Socket.IO frame; a payload above its own limit but within this gets `payload_too_large`, a larger frame closes the connection. */
    maxFrameBytes: e.MAX_FRAME_BYTES,
    /** Most open Socket.IO connections from one client address; 0 = no limit. */
    maxConnectionsPerAddress: e.MAX_CONNECTIONS_PER_ADDRESS,
    /** Bytes waiting for one socket beyond which it is disconnected as a slow consumer. */
    maxOutboundBytes: e.MAX_OUTBOUND_BYTES,
    /** Snapshot bytes one socket may pull per second through joins; 0 = no limit. */
    snapshotBytesPerSecond: e.SNAPSHOT_BYTES_PER_SEC,
    rateLimit: { eventsPerSecond: e.RATE_LIMIT_EVENTS_PER_SEC, burst: e.RATE_LIMIT_BURST },
    maxRoomsPerSocket: e.MAX_ROOMS_PER_SOCKET,
    channels: {
      /** `CHANNELS_CONFIG`: a Centrifugo-shaped config.json whose namespaces the channels follow; undefined = every channel open (SPEC §8 defaults). */
      configPath: e.CHANNELS_CONFIG,
      /** The namespaces read from `configPath` by loadConfig (its warnings are logged at start); undefined without a config. */
      namespaces: undefined as ChannelNamespaces | undefined,
      /** Most channels one socket may be subscribed to at once. */
      maxChannelsPerSocket: e.MAX_CHANNELS_PER_SOCKET,
      /** Largest `data` of one publication, in UTF-8 bytes of JSON. */
      maxDataBytes: e.CHANNEL_MAX_DATA_BYTES,
    },
    /** What `CENTRIFUGO_CONFIG` and Centrifugo's environment variables set (proxies, ignored options); undefined without either. */
    centrifugoConfig: undefined as CentrifugoSettings | undefined,
    /** The Centrifugo endpoint's limits and timings (Centrifugo's names and defaults); 0 disables pings / pong checks. */
    centrifugo: {
      pingIntervalMs: e.CENTRIFUGO_CLIENT_PING_INTERVAL,
      pongTimeoutMs: e.CENTRIFUGO_CLIENT_PONG_TIMEOUT,
      staleCloseDelayMs: e.CENTRIFUGO_CLIENT_STALE_CLOSE_DELAY,
      expiredCloseDelayMs: e.CENTRIFUGO_CLIENT_EXPIRED_CLOSE_DELAY,
      /** Default: MAX_CHANNELS_PER_SOCKET. */
      maxChannelsPerConnection: e.CENTRIFUGO_CLIENT_CHANNEL_LIMIT || e.MAX_CHANNELS_PER_SOCKET,
      /** Default: MAX_OUTBOUND_BYTES. */
      maxOutboundBytes: e.CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE || e.MAX_OUTBOUND_BYTES,
      historyMaxLimit: e.CENTRIFUGO_CLIENT_HISTORY_MAX_PUBLICATION_LIMIT,
      maxMessageBytes: e.CENTRIFUGO_WEBSOCKET_MESSAGE_SIZE_LIMIT,
    },
    auth: {
      secret: e.AUTH_JWT_SECRET,
      publicKey: e.AUTH_JWT_PUBLIC_KEY,
      jwksUrl: e.AUTH_JWKS_URL,
      issuer: e.AUTH_JWT_ISSUER,
      audience: e.AUTH_JWT_AUDIENCE,
      requireExp: e.AUTH_JWT_REQUIRE_EXP === 'true',
      maxLifetimeSec: e.AUTH_JWT_MAX_LIFETIME_S > 0 ? e.AUTH_JWT_MAX_LIFETIME_S : undefined,
    },
    authMode: (e.AUTH_JWT_SECRET || e.AUTH_JWT_PUBLIC_KEY || e.AUTH_JWKS_URL ? 'jwt' : 'open') as 'jwt' | 'open',
    /** `X-API-Key` value that may write any user's status. */
    apiKey: e.API_KEY,
    /** Who may read user status over REST: anyone, or a valid token / the API key. */
    statusReads: (e.STATUS_READS ?? 'public') as 'public' | 'token',
    /** Automatic away after this long without reported activity; 0 = off. */
    statusAwayAfterMs: e.STATUS_AWAY_AFTER_MS,
    /** Where user status lives: `memory` (this process), `redis` (the presence Redis) or `nats` (a JetStream KV bucket on a hub, SPEC §10). */
    statusStore: (e.STATUS_STORE ?? (e.REDIS_CLUSTER_NODES || e.REDIS_URL ? 'redis' : 'memory')) as 'memory' | 'redis' | 'nats',
    /** The NATS status store (`STATUS_STORE=nats`): the region's own server, the hub's JetStream domain, the bucket. */
    nats: { url: e.NATS_URL, hubDomain: e.NATS_HUB_DOMAIN, bucket: e.NATS_BUCKET ?? 'rm_status' },
    /** `nodeId` of the records this node writes: `<REGION>-<NODE_ID>` (either part alone when the other is unset); undefined: `<hostname>-<pid>`. */
    nodeId: e.REGION && e.NODE_ID ? `${e.REGION}-${e.NODE_ID}` : (e.NODE_ID ?? (e.REGION ? `${e.REGION}-${hostname()}-${process.pid}` : undefined)),
    region: e.REGION,
    /** Most users one socket may watch with `status:subscribe`. */
    maxWatchedUsersPerSocket: e.MAX_WATCHED_USERS_PER_SOCKET,
    /**
     * Per-client limit of the status REST routes: on average `perSecond`
     * requests per second, `burst` at once (a window of burst / perSecond s);
     * `false` when STATUS_RATE_LIMIT=0.
     */
    statusRateLimit: e.STATUS_RATE_LIMIT > 0 ? { perSecond: e.STATUS_RATE_LIMIT, burst: e.STATUS_RATE_LIMIT_BURST } : (false as const),
    /** Origins allowed for Socket.IO and for CORS on /api/v2; undefined allows every origin. */
    allowedOrigins: e.ALLOWED_ORIGINS,
    workers: e.WORKERS,
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    /** On SIGTERM, how long `/ready` answers 503 (the node still serving) before the node stops accepting and drains (SPEC §10). */
    drainReadyDelayMs: e.DRAIN_READY_DELAY_MS,
    /** With Redis: compare presence settings and clocks across the nodes (docs/deploy.md); `strict` makes a misconfigured newcomer unready. */
    clusterCheck: (e.CLUSTER_CHECK ?? 'strict') as 'strict' | 'warn' | 'off',
    /** `TRUST_PROXY`: the balancers whose `X-Forwarded-For` gives the client address (rate limits, per-address limits, logs); undefined: none. */
    trustedProxies: e.TRUST_PROXY,
    /** Folder of the built demo served at `/`; `off` to serve none; unset = the repository's apps/demo/dist when present. */
    demoDir: e.DEMO_DIR,
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Reads and validates the configuration; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const res = EnvSchema.safeParse(env);
  if (!res.success) {
    const lines = res.error.issues.map((i) => {
      const name = String(i.path[0] ?? '');
      return i.message.startsWith(name) ? `  - ${i.message}` : `  - ${name}: ${i.message}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const c = toConfig(res.data);
  const problems: string[] = [];
  // A Centrifugo config.json and Centrifugo's variables: token keys, API key, origins, namespaces, limits (the server's own variables win).
  try {
    const cf = loadCentrifugoSettings(env);
    if (cf) {
      c.centrifugoConfig = cf;
      problems.push(...applyCentrifugoSettings(c, cf, env));
    }
  } catch (err) {
    if (!(err instanceof CentrifugoConfigError)) throw err;
    problems.push(err.message);
  }
  if (c.redisUrl && c.redisClusterNodes) problems.push('set either REDIS_URL or REDIS_CLUSTER_NODES, not both');
  if (c.redisHeartbeatWindowMs > 1_000) problems.push(`REDIS_HEARTBEAT_WINDOW_MS must be at most 1000 (got ${c.redisHeartbeatWindowMs}): it delays heartbeat acks by up to that much`);
  if (c.redisStatusWindowMs > 50) problems.push(`REDIS_STATUS_WINDOW_MS must be at most 50 (got ${c.redisStatusWindowMs}): it delays a user's online and offline by up to that much, and a status change must show within 100 ms`);
  const authVars = [c.auth.secret, c.auth.publicKey, c.auth.jwksUrl].filter(Boolean).length;
  if (authVars > 1) problems.push('set only one of AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY, AUTH_JWKS_URL');
  if (c.auth.secret && Buffer.byteLength(c.auth.secret) < 32) problems.push('AUTH_JWT_SECRET must be at least 32 bytes (HS256)');
  if (c.statusReads === 'token' && c.authMode === 'open' && !c.apiKey) problems.push('STATUS_READS=token needs AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY, AUTH_JWKS_URL or API_KEY (nothing could read otherwise)');
  if (c.workers > 1 && c.engine === 'memory') {
    problems.push(`WORKERS=${c.workers} needs REDIS_URL or REDIS_CLUSTER_NODES: the memory engine lives in one process, so workers would not share presence`);
  }
  if (c.statusStore === 'nats' && !c.nats.url) problems.push('STATUS_STORE=nats needs NATS_URL (the region\'s own NATS server, hub or leaf)');
  if (c.statusStore === 'redis' && c.engine === 'memory') problems.push('STATUS_STORE=redis needs REDIS_URL or REDIS_CLUSTER_NODES');
  if (c.backendLog && c.engine === 'memory') problems.push('BACKEND_LOG_PARTITIONS needs REDIS_URL or REDIS_CLUSTER_NODES (the log is a set of Redis Streams)');
  if (c.statusStore !== 'nats' && (c.nats.url || c.nats.hubDomain)) problems.push(`NATS_URL and NATS_HUB_DOMAIN are used only with STATUS_STORE=nats (it is ${c.statusStore})`);
  if (c.disconnectGraceMs > c.ttlMs) problems.push('PRESENCE_DISCONNECT_GRACE_MS must not exceed PRESENCE_TTL_MS (a connection expires at the TTL anyway)');
  if (c.rateLimit.burst < 1) problems.push('RATE_LIMIT_BURST must be >= 1');
  if (c.maxFrameBytes < c.maxMessageBytes + 1_024) problems.push(`MAX_FRAME_BYTES must be at least MAX_MESSAGE_BYTES + 1024 (${c.maxMessageBytes + 1_024}) so that a message at its limit fits in a frame`);
  if (c.maxFrameBytes < c.channels.maxDataBytes + 1_024) problems.push(`MAX_FRAME_BYTES must be at least CHANNEL_MAX_DATA_BYTES + 1024 (${c.channels.maxDataBytes + 1_024}) so that a publication at its limit fits in a frame`);
  if (c.channels.configPath !== undefined) {
    const read = readChannelsConfig(c.channels.configPath);
    if (typeof read === 'string') problems.push(read);
    else c.channels.namespaces = read;
  }
  if (problems.length) throw new ConfigError(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return c;
}

/** The namespaces of the `CHANNELS_CONFIG` file, or the problem with it (naming the setting, the file and the option). */
function readChannelsConfig(path: string): ChannelNamespaces | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `CHANNELS_CONFIG=${path} cannot be read: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return `CHANNELS_CONFIG=${path} is not valid JSON: ${(err as Error).message}`;
  }
  try {
    return ChannelNamespaces.fromConfig(json);
  } catch (err) {
    if (err instanceof ChannelsConfigError) return `CHANNELS_CONFIG=${path}: ${err.message}`;
    throw err;
  }
}
