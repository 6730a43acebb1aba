import cors from '@fastify/cors';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { statusRoutes, type StatusRoutesOptions } from './routes/status.js';
import { STALE_HEADER, STALE_SINCE_HEADER } from './routes/status-schemas.js';

/** Where the `/api/v2` routes live. */
export const API_V2_PREFIX = '/api/v2';

export interface ApiV2Options {
  /** The user status routes (`/api/v2/presence`) with their auth and rate-limit settings. */
  status: StatusRoutesOptions;
  /**
   * Origins (`scheme://host[:port]`) whose browser pages may call the API
   * (`ALLOWED_ORIGINS`); undefined allows every origin, as Socket.IO does
   * without `ALLOWED_ORIGINS`.
   */
  allowedOrigins?: readonly string[] | undefined;
}

/** Response headers a browser script may read: the limits and the stale mark. */
const EXPOSED_HEADERS = ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', STALE_HEADER, STALE_SINCE_HEADER];

/** How long a browser may reuse a preflight answer (seconds). */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * The `/api/v2` HTTP API, registered with `prefix: API_V2_PREFIX`: CORS
 * that follows `ALLOWED_ORIGINS`, the OpenAPI document
 * (`/api/v2/openapi.json`), its readable page (`/api/v2/docs`, Swagger UI
 * served from the package's own files, no CDN) and the user status routes.
 */
export function apiV2(options: ApiV2Options) {
  const allowed = options.allowedOrigins;
  /** Non-browser clients send no Origin: nothing to check. Browsers send the origin without a trailing slash. */
  const originAllowed = (origin: string | undefined): boolean => origin === undefined || allowed === undefined || allowed.includes(origin.replace(/\/$/, ''));

  const status = statusRoutes({ ...options.status, cors: { allowed: originAllowed, exposeHeaders: EXPOSED_HEADERS.join(', ') } });

  return async function plugin(api: FastifyInstance): Promise<void> {
    // The hot status read in a context of its own, beside the CORS plugin's:
    // it runs no hook (it adds its CORS headers itself); its preflight is the plugin's (`OPTIONS *`).
    await api.register(status.read);
    await api.register(async (edge) => {
      // A preflight from an origin that is not allowed is refused outright (the
      // browser then never sends the request); other requests from it are
      // answered without CORS headers, so a browser hides the answer.
      // A callback hook: an async one costs a promise per request.
      edge.addHook('onRequest', (req, reply, done) => {
        if (req.method !== 'OPTIONS' || originAllowed(req.headers.origin)) return done();
        void reply.code(403).send({ error: { code: 'forbidden', message: `origin '${req.headers.origin}' is not in ALLOWED_ORIGINS` } });
      });
      await edge.register(cors, {
        // The request's Origin is echoed when allowed (with Vary: Origin), never `*`.
        origin: (origin, cb) => cb(null, originAllowed(origin)),
        methods: ['GET', 'PUT', 'DELETE', 'POST'],
        allowedHeaders: ['Authorization', 'Content-Type', 'X-API-Key'],
        exposedHeaders: EXPOSED_HEADERS,
        credentials: false,
        maxAge: PREFLIGHT_MAX_AGE_S,
      });

      edge.get('/openapi.json', { schema: { hide: true } }, async () => api.swagger());
      await edge.register(swaggerUi, {
        routePrefix: '/docs',
        // The page's asset links are absolute: they need the outer prefix too.
        indexPrefix: API_V2_PREFIX,
        uiConfig: { deepLinking: true, displayRequestDuration: true },
      });

      // The other status routes add the CORS headers of their answers themselves
      // (route config `cors: false`: the plugin skips its per-request work); preflights stay the plugin's.
      await edge.register(status.routes);
    });
  };
}
