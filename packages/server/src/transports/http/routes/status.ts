import { timingSafeEqual, createHash } from 'node:crypto';
import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PresenceError, StatusUserIdSchema, httpStatusOf, parsePayload, type ErrorCode, type StatusRecord, type StatusUpdate } from 'realtime-message-protocol';
import type { StatusRead, StatusService } from '../../../core/status/service.js';
import type { TokenVerifier } from '../../../extensions/jwt.js';
import {
  MAX_BATCH_IDS,
  MAX_QUERY_IDS,
  STALE_HEADER,
  STALE_SINCE_HEADER,
  batchSchema,
  errors,
  params,
  readErrors,
  recordRead,
  recordWrite,
  security,
  tags,
  updateSchema,
  usersQuerySchema,
  usersRead,
  writeErrors,
} from './status-schemas.js';
import { ClientRateLimiter, humanSeconds } from './status-rate-limit.js';
import { statusSerializerCompiler } from './status-serialize.js';

export { MAX_BATCH_IDS, MAX_QUERY_IDS } from './status-schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: @fastify/cors leaves the route's answers alone (read by the plugin; its types do not declare it). */
    cors?: false;
  }
}

/** Largest `PUT` body (a record update is well under 1 KiB). */
const PUT_BODY_LIMIT = 16 * 1_024;
/** Largest batch body: 1,000 ids of 128 UTF-16 units, even fully `\u`-escaped, fit. */
const BATCH_BODY_LIMIT = 1_024 * 1_024;

/**
 * Per-client limit of the status routes: a fixed window of `burst`
 * requests per `burst / perSecond` seconds, so a client averages at most
 * `perSecond` and may send `burst` at once. A client is the API key holder,
 * a token's `sub`, or else the remote address (IPv6 by /64).
 */
export interface StatusRateLimit {
  /** Requests per second per client, on average (`STATUS_RATE_LIMIT`). */
  perSecond: number;
  /** Requests a client may send at once; also the window's size (`STATUS_RATE_LIMIT_BURST`). */
  burst: number;
  /** Most clients tracked (an LRU); the least recently seen beyond it start afresh. @default 10000 */
  maxClients?: number;
}

export interface StatusRoutesOptions {
  service: StatusService;
  /** Verifies `Authorization: Bearer` tokens; undefined = open mode (no `AUTH_*`). */
  verifyToken?: TokenVerifier | undefined;
  /** `API_KEY`: `X-API-Key` with this value may write any user. */
  apiKey?: string | undefined;
  /** `public`: reads need nothing; `token`: reads need a valid bearer token or the API key. @default 'public' */
  reads?: 'public' | 'token';
  /** Per-client rate limit of every route, or `false` for none. @default false */
  rateLimit?: StatusRateLimit | false | undefined;
  /**
   * CORS of the routes' answers, when the caller's CORS plugin leaves them
   * to the routes (route config `cors: false`; preflights stay the
   * plugin's); undefined: the routes add no CORS headers themselves.
   */
  cors?: StatusCors | undefined;
}

/** CORS headers of actual (not preflight) requests: `Vary: Origin`, and for an allowed Origin the origin echoed and the exposed headers. */
export interface StatusCors {
  allowed(origin: string): boolean;
  /** `Access-Control-Expose-Headers` for an allowed origin. */
  exposeHeaders: string;
}

/** Sent when a request fails: `{ error: { code, message } }`. */
class HttpError extends PresenceError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly httpStatus: number = httpStatusOf(code),
  ) {
    super(code, message);
  }
}

type Identity = { kind: 'key' } | { kind: 'user'; sub: string } | { kind: 'none' } | { kind: 'refused'; error: HttpError };

/** The request decoration that holds its identity, found once before the rate limit (which is keyed by it) and checked by the route. */
const IDENTITY = 'rmStatusIdentity';
type Identified = FastifyRequest & { [IDENTITY]: Identity | null };

/** The two plugins of {@link statusRoutes}. */
export interface StatusPlugins {
  /**
   * `GET /presence/:userId`, the hot read: register it where no hook runs
   * (outside the CORS plugin; the app adds none to it): it sets its CORS and
   * cache headers, identifies the caller and counts the rate limit itself.
   */
  read: (r: FastifyInstance) => Promise<void>;
  /** Every other route, behind one onRequest hook doing the same; preflights are the caller's CORS plugin's. */
  routes: (r: FastifyInstance) => Promise<void>;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * The user status REST API of SPEC §7: `/presence` routes, registered
 * under the `/api/v2` prefix. Reads answer from this node's cache, marked
 * `Status-Stale: 1` and `"stale": true` on each record, while the store cannot be reached. The JSON
 * schemas document the routes (OpenAPI); the authoritative checks are the
 * protocol's zod schemas (run by the StatusService), so REST and sockets
 * refuse the same input with the same messages.
 */
export function statusRoutes(options: StatusRoutesOptions): StatusPlugins {
  const { service, verifyToken } = options;
  const reads = options.reads ?? 'public';
  const apiKeyHash = options.apiKey === undefined ? undefined : sha256(options.apiKey);
  const openWrites = verifyToken === undefined && apiKeyHash === undefined;
  const NOBODY: Identity = { kind: 'none' };
  const limit = options.rateLimit || undefined;
  const windowMs = limit ? Math.max(1, Math.round((limit.burst * 1_000) / limit.perSecond)) : 0;
  const limiter = limit ? new ClientRateLimiter(limit.burst, windowMs, limit.maxClients ?? 10_000) : undefined;
  const cors = options.cors;
  const limitText = limiter ? String(limiter.max) : '';

  async function identify(req: FastifyRequest): Promise<Identity> {
    try {
      return await credentials(req);
    } catch (err) {
      if (err instanceof HttpError) return { kind: 'refused', error: err };
      throw err;
    }
  }

  /** Who the request is: `key` (API key), a token's `sub`, or nobody. Throws 401 for bad credentials. */
  async function credentials(req: FastifyRequest): Promise<Identity> {
    const key = req.headers['x-api-key'];
    if (key !== undefined) {
      if (apiKeyHash === undefined) throw new HttpError('unauthorized', 'X-API-Key was sent but this server has no API_KEY');
      if (typeof key !== 'string' || !timingSafeEqual(sha256(key), apiKeyHash)) throw new HttpError('unauthorized', 'X-API-Key is not valid');
      return { kind: 'key' };
    }
    const auth = req.headers.authorization;
    if (auth === undefined) return { kind: 'none' };
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
    if (!m) throw new HttpError('unauthorized', "Authorization must be 'Bearer <JWT>'");
    if (!verifyToken) return { kind: 'none' }; // open mode: tokens are not checked
    try {
      const v = await verifyToken(m[1]!);
      return { kind: 'user', sub: v.userId };
    } catch (err) {
      const why = err instanceof Error ? err.message : 'invalid token';
      throw new HttpError('unauthorized', `the bearer token was refused: ${why}`);
    }
  }

  /** The request's identity; throws the 401 of refused credentials. */
  function who(req: FastifyRequest): Exclude<Identity, { kind: 'refused' }> {
    const id = (req as Identified)[IDENTITY];
    if (id === null || id === undefined) throw new HttpError('internal', 'the request was not identified');
    return accepted(id);
  }

  function accepted(id: Identity): Exclude<Identity, { kind: 'refused' }> {
    if (id.kind === 'refused') throw id.error;
    return id;
  }

  /** The key of the latest address, reused while requests come from it (a keep-alive connection): no string built, and its hash kept, per request. */
  let lastIp: string | undefined;
  let lastIpKey = '';

  /** The rate limit's client: the API key holder, a token's sub, or the remote address. */
  function clientKey(req: FastifyRequest, id: Identity): string {
    if (id.kind === 'key') return 'key';
    if (id.kind === 'user') return `sub:${id.sub}`;
    const ip = req.ip;
    if (ip !== lastIp) {
      lastIp = ip;
      // An IPv4 address is its own key (normalizeIP's IPv6 check is a long regex; IPv6 goes by /64).
      lastIpKey = `ip:${ip.includes(':') ? normalizeIP(ip) : ip}`;
    }
    return lastIpKey;
  }

  /** The rate limit, once the request's identity is known: sets the limit headers; the 429 error when the client is over. */
  function overLimit(req: FastifyRequest, reply: FastifyReply, id: Identity): HttpError | undefined {
    if (!limiter || !limit) return undefined;
    const w = limiter.hit(clientKey(req, id));
    const reset = limiter.resetInSeconds(w);
    if (w.count > limiter.max) {
      void reply.header('x-ratelimit-limit', limiter.max).header('x-ratelimit-remaining', 0).header('x-ratelimit-reset', reset).header('retry-after', reset);
      const window = humanSeconds(Math.max(1, Math.round(windowMs / 1_000)));
      return new HttpError('rate_limited', `too many requests from this client (${limit.burst} per ${window} window, STATUS_RATE_LIMIT=${limit.perSecond}/s); retry in ${humanSeconds(reset)}`);
    }
    // Strings: Node checks and writes a header's value as text (a number would be converted twice).
    void reply.header('x-ratelimit-limit', limitText).header('x-ratelimit-remaining', String(limiter.max - w.count)).header('x-ratelimit-reset', String(reset));
    return undefined;
  }

  function checkRead(id: Exclude<Identity, { kind: 'refused' }>): void {
    if (reads === 'token' && id.kind === 'none') throw new HttpError('unauthorized', 'reads need Authorization: Bearer <JWT> or X-API-Key (STATUS_READS=token)');
  }

  /**
   * CORS and cache headers of every answer (errors too): `no-store`; for a
   * request with an Origin (a browser's), `Vary: Origin` and, when the origin
   * is allowed, the origin echoed. An answer to a request without Origin (a
   * server's) has no Vary: nothing may store any of these answers
   * (`no-store`), so no cache could give it to a browser.
   */
  function edgeHeaders(req: FastifyRequest, reply: FastifyReply): void {
    const origin = req.headers.origin;
    if (cors && origin !== undefined) {
      if (cors.allowed(origin)) void reply.header('vary', 'Origin').header('access-control-allow-origin', origin).header('access-control-expose-headers', cors.exposeHeaders);
      else void reply.header('vary', 'Origin');
    }
    void reply.header('cache-control', 'no-store');
  }

  /** The hot read, once the caller is identified: the limit, the read check, then the cache (no promise on a hit) or the store. */
  function readOne(req: FastifyRequest<{ Params: { userId: string } }>, reply: FastifyReply, id: Identity): Promise<StatusRecord> | undefined {
    const over = overLimit(req, reply, id);
    if (over) throw over;
    checkRead(accepted(id));
    const userId = req.params.userId;
    const record = service.cachedRecord(userId);
    if (record !== undefined) {
      void reply.send(record);
      return undefined;
    }
    return service.getManyOrStale([userId]).then((read) => answer(reply, read, (users) => users[0]!));
  }

  async function onError(err: { statusCode?: unknown; message?: unknown; code?: unknown }, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    let e: HttpError;
    if (err instanceof HttpError) e = err;
    else if (err instanceof PresenceError) e = new HttpError(err.code, err.message);
    else {
      const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
      if (status === 413) e = new HttpError('payload_too_large', 'the request body is too large');
      else if (status === 415) e = new HttpError('invalid_payload', "the body must be JSON (Content-Type: application/json)", 415);
      else if (status >= 400 && status < 500) e = new HttpError('invalid_payload', `the request is malformed: ${String(err.message)}`);
      else e = new HttpError('internal', 'the server failed; retry with backoff');
    }
    if (e.code === 'internal') req.log.error({ err }, 'status route failed');
    return reply.code(e.httpStatus).send({ error: { code: e.code, message: e.message } });
  }

  function checkWrite(req: FastifyRequest, userId: string): void {
    const id = who(req);
    if (id.kind === 'key') return;
    if (id.kind === 'user') {
      if (id.sub !== userId) throw new HttpError('forbidden', `this token (sub '${id.sub}') may change only its own status, not '${userId}'`);
      return;
    }
    if (openWrites) return;
    throw new HttpError('unauthorized', verifyToken ? 'writes need Authorization: Bearer <JWT> (a token for this user) or X-API-Key' : 'writes need X-API-Key');
  }

  function idList(raw: unknown, max: number, what: string): string[] {
    if (!Array.isArray(raw)) throw new HttpError('invalid_payload', `${what} must be a list of user ids`);
    if (raw.length === 0) throw new HttpError('invalid_payload', `${what} must not be empty`);
    if (raw.length > max) throw new HttpError('invalid_payload', `${what} has ${raw.length} ids; at most ${max} per request`);
    const seen = new Set<unknown>();
    for (const id of raw) {
      if (seen.has(id)) throw new HttpError('invalid_payload', `${what} lists '${String(id)}' twice; ids must be unique`);
      seen.add(id);
    }
    return raw as string[];
  }

  /** A read's answer, marked when it comes from the cache while the store is unreachable. */
  function answer<T>(reply: FastifyReply, read: StatusRead, body: (users: StatusRead['users']) => T): T {
    if (read.stale) void reply.header(STALE_HEADER, '1').header(STALE_SINCE_HEADER, String(read.since));
    return body(read.users);
  }

  // Validation is zod's (in the StatusService, shared with sockets): the
  // JSON schemas below document the routes and serialize the answers.
  const noValidation = () => () => true;

  async function read(r: FastifyInstance): Promise<void> {
    r.setValidatorCompiler(noValidation);
    r.setSerializerCompiler(statusSerializerCompiler);
    r.setErrorHandler(onError);
    // No hook: each is a function call, a hook runner and often a closure per
    // request, on the most frequent request of the API. The route does the
    // hooks' work itself, in their order; no promise unless credentials are sent or the user is not cached.
    r.get<{ Params: { userId: string } }>(
      '/presence/:userId',
      { config: { ownCacheControl: true }, schema: { summary: "A user's status record", tags, params, response: { 200: recordRead, ...readErrors } } },
      (req, reply) => {
        edgeHeaders(req, reply);
        if (req.headers['x-api-key'] === undefined && req.headers.authorization === undefined) return readOne(req, reply, NOBODY);
        return identify(req).then((id) => readOne(req, reply, id));
      },
    );
  }

  async function routes(r: FastifyInstance): Promise<void> {
    r.setValidatorCompiler(noValidation);
    r.setSerializerCompiler(statusSerializerCompiler);
    r.setErrorHandler(onError);

    r.decorateRequest(IDENTITY, null);

    // One callback hook for every status request, before its body is read
    // (a refused or limited client's body is never parsed), in this order:
    // CORS and cache headers (so that error answers carry them too), the
    // body's type, the credentials, the per-client rate limit. Refused
    // credentials count against the address and are answered 401 by the route.
    r.addHook('onRequest', (req, reply, done) => {
      edgeHeaders(req, reply);
      if (req.method === 'PUT' || req.method === 'POST') {
        const bad = badBodyType(req);
        if (bad) return done(bad);
      }
      // Most reads carry no credentials: no promise for them.
      if (req.headers['x-api-key'] === undefined && req.headers.authorization === undefined) {
        (req as Identified)[IDENTITY] = NOBODY;
        return done(overLimit(req, reply, NOBODY));
      }
      identify(req).then(
        (id) => {
          (req as Identified)[IDENTITY] = id;
          done(overLimit(req, reply, id));
        },
        (err: Error) => done(err),
      );
    });
    const config = cors ? { cors: false as const } : {};

    r.get<{ Querystring: { users?: unknown } }>(
      '/presence',
      {
        config,
        schema: {
          summary: `Records of several users, in request order (at most ${MAX_QUERY_IDS})`,
          tags,
          querystring: usersQuerySchema,
          response: { 200: usersRead, ...readErrors },
        },
      },
      async (req, reply) => {
        checkRead(who(req));
        const raw = req.query.users;
        if (typeof raw !== 'string') throw new HttpError('invalid_payload', raw === undefined ? 'users is required: ?users=a,b,c' : 'users must be given once: ?users=a,b,c');
        const ids = idList(raw === '' ? [] : raw.split(','), MAX_QUERY_IDS, 'users');
        return answer(reply, await service.getManyOrStale(ids), (users) => ({ users }));
      },
    );

    r.post<{ Body: unknown }>(
      '/presence/batch',
      {
        bodyLimit: BATCH_BODY_LIMIT,
        config,
        schema: {
          summary: `Records of several users, in request order (at most ${MAX_BATCH_IDS})`,
          tags,
          body: batchSchema,
          response: { 200: usersRead, ...errors(400, 401, 413, 415, 429, 503) },
        },
      },
      async (req, reply) => {
        checkRead(who(req));
        const body = req.body;
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError('invalid_payload', 'the body must be an object { userIds: [...] }');
        const ids = idList((body as { userIds?: unknown }).userIds, MAX_BATCH_IDS, 'userIds');
        return answer(reply, await service.getManyOrStale(ids), (users) => ({ users }));
      },
    );

    r.put<{ Params: { userId: string }; Body: unknown }>(
      '/presence/:userId',
      {
        bodyLimit: PUT_BODY_LIMIT,
        config,
        schema: { summary: "Sets a user's status and message", tags, security, params, body: updateSchema, response: { 200: recordWrite, ...writeErrors } },
      },
      async (req) => {
        const userId = checkId(req.params.userId);
        checkWrite(req, userId);
        return service.set(userId, req.body as StatusUpdate);
      },
    );

    r.delete<{ Params: { userId: string } }>(
      '/presence/:userId',
      { config, schema: { summary: "Clears a user's manual status and message", tags, security, params, response: { 200: recordWrite, ...errors(400, 401, 403, 429, 503) } } },
      async (req) => {
        const userId = checkId(req.params.userId);
        checkWrite(req, userId);
        return service.clear(userId);
      },
    );
  }

  return { read, routes };
}

/** A body must be JSON: 415 for a body of another type, checked before it is read. */
function badBodyType(req: FastifyRequest): HttpError | undefined {
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return undefined;
  const type = req.headers['content-type'];
  if (typeof type === 'string' && /^application\/json\s*(;|$)/i.test(type)) return undefined;
  return new HttpError('invalid_payload', `the body must be JSON (Content-Type: application/json), got ${type === undefined ? 'no Content-Type' : `'${type}'`}`, 415);
}

/** A bad id is 400 before the auth check can answer 403 for it. */
function checkId(userId: string): string {
  const res = parsePayload(StatusUserIdSchema, userId);
  if (!res.ok) throw new HttpError('invalid_payload', res.error.message);
  return res.value;
}
