import swagger from '@fastify/swagger';
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { checkHealth, type HealthCheck } from '../../core/shared/health.js';
import type { PresenceMetrics } from '../../observability/metrics.js';
import { API_V2_PREFIX, apiV2 } from './api-v2.js';
import type { StatusRoutesOptions } from './routes/status.js';
import { SERVER_API_PREFIX, serverApi, serverApiOff, type ServerApiOptions } from './routes/server-api.js';
import { serveStatic } from './static.js';

export interface HttpAppOptions {
  /** What `/ready` checks. */
  health: readonly HealthCheck[];
  /** Name of the storage shown by `/ready` (`memory`, `redis`, `redis-cluster`). */
  engine: string;
  metrics: PresenceMetrics;
  /** Folder of the built demo served at `/`; undefined to serve a short text page. */
  demoDir: string | undefined;
  /** How long `/ready` waits for each check. @default 1000 */
  readyTimeoutMs?: number;
  /**
   * The user status REST API (`/api/v2/presence`, SPEC §7), with its auth
   * and rate-limit settings, beside the `/api/v2` docs page; left out when undefined.
   */
  status?: StatusRoutesOptions | undefined;
  /** The server HTTP API (`POST /api/<method>`, Centrifugo's shapes); undefined: off, every `/api/<method>` is 404 (no `API_KEY`). */
  serverApi?: ServerApiOptions | undefined;
  /** Origins whose browser pages may call `/api/v2` (CORS; `ALLOWED_ORIGINS`); undefined allows every origin. */
  allowedOrigins?: readonly string[] | undefined;
  /** Fastify's `trustProxy`: which peers' `X-Forwarded-For` sets `req.ip` (`TRUST_PROXY`); undefined: none. */
  trustProxy?: ((address: string, hop: number) => boolean) | undefined;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route sets `cache-control` on every answer itself (errors too): it gets no `no-store` hook. */
    ownCacheControl?: true;
  }
}

/** `cache-control: no-store` unless the route set another. */
function noStore(_req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
  done(null, payload);
}

const statusSchema = {
  type: 'object',
  properties: { status: { type: 'string' } },
  required: ['status'],
} as const;

const readySchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'unavailable'] },
    engine: { type: 'string' },
    checks: { type: 'object', additionalProperties: { type: 'string', enum: ['ok', 'unavailable'] } },
  },
  required: ['status', 'engine', 'checks'],
} as const;

/**
 * The HTTP shell: health, readiness, metrics and the demo as Fastify routes,
 * with response schemas (they serialize the answers, and later produce the
 * OpenAPI document of the REST APIs). Socket.IO and other WebSocket
 * endpoints attach to `app.server` beside these routes.
 */
export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const app = fastify({
    logger: false,
    return503OnClosing: true,
    ...(options.trustProxy ? { trustProxy: options.trustProxy } : {}),
    forceCloseConnections: false,
    // A user id is up to 128 UTF-16 units, up to 9 bytes each once percent-encoded:
    // a long id must reach the route (and get 400), not fall through to 404.
    routerOptions: { maxParamLength: 2_048 },
    // A URL that cannot be decoded (`%zz`, a lone surrogate) never reaches a route.
    frameworkErrors: (err, req, res) => {
      const reply = (res as unknown as FastifyReply).header('cache-control', 'no-store');
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      if (req.url.startsWith('/api/')) void reply.code(status).send({ error: { code: 'invalid_payload', message: `the URL is malformed: ${err.message}` } });
      else void reply.code(status).send({ error: err.message });
    },
  });
  const readyTimeoutMs = options.readyTimeoutMs ?? 1_000;

  // Answers are not cached (`cache-control: no-store`) unless a route says
  // otherwise. A route-level hook, not a global one: a route that sets the
  // header on every answer itself (config `ownCacheControl`, the hot status
  // read) then runs no hook at all. A callback hook: an async one costs a promise per request.
  app.addHook('onRoute', (route) => {
    if (route.config?.ownCacheControl) return;
    route.onSend = [noStore, ...(route.onSend === undefined ? [] : Array.isArray(route.onSend) ? route.onSend : [route.onSend])];
  });

  // The OpenAPI document is generated from the route schemas; routes are
  // declared in a plugin registered after swagger so that it sees them.
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'realtime-message', version: '0.1.0', description: 'HTTP API of the realtime-message server' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'a JWT checked with the AUTH_* settings; writes only its own sub' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'API_KEY: writes any user' },
        },
      },
    },
  });
  void app.register(async (r) => {
    r.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

    r.get('/health', { schema: { summary: 'The process is alive', tags: ['operations'], response: { 200: statusSchema } } }, async () => ({ status: 'ok' }));

    r.get(
      '/ready',
      { schema: { summary: 'Every backend answers (503 while one cannot be reached)', tags: ['operations'], response: { 200: readySchema, 503: readySchema } } },
      async (_req, reply) => {
        const report = await checkHealth(options.health, readyTimeoutMs);
        return reply.code(report.ok ? 200 : 503).send({ status: report.ok ? 'ready' : 'unavailable', engine: options.engine, checks: report.checks });
      },
    );

    r.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['operations'] } }, async (_req, reply) => {
      const text = await options.metrics.registry.metrics();
      return reply.type(options.metrics.registry.contentType).send(text);
    });
  });
  void app.register(options.serverApi ? serverApi(options.serverApi) : serverApiOff(), { prefix: SERVER_API_PREFIX });
  if (options.status) void app.register(apiV2({ status: options.status, allowedOrigins: options.allowedOrigins }), { prefix: API_V2_PREFIX });

  app.setNotFoundHandler({ preHandler: undefined }, async (req, reply) => {
    void reply.header('cache-control', 'no-store'); // no route, so no route hook
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply.code(405).send({ error: 'method not allowed' });
    if (options.demoDir) {
      reply.hijack();
      if (serveStatic(options.demoDir, req.raw, reply.raw)) return;
      reply.raw.writeHead(404, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      reply.raw.end(JSON.stringify({ error: 'not found' }));
      return;
    }
    if (req.url === '/') return reply.type('text/plain; charset=utf-8').send('realtime-message is running. The demo is not built: run `npm run build`.');
    return reply.code(404).send({ error: 'not found' });
  });

  app.setErrorHandler(async (err: { statusCode?: unknown; message?: unknown }, _req, reply) => {
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : String(err.message) });
  });

  return app;
}
