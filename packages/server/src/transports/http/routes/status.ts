import { timingSafeEqual, createHash } from 'node:crypto';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PresenceError, StatusUserIdSchema, httpStatusOf, parsePayload, type ErrorCode, type StatusUpdate } from 'realtime-message-protocol';
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

export { MAX_BATCH_IDS, MAX_QUERY_IDS } from './status-schemas.js';

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
export function statusRoutes(options: StatusRoutesOptions) {
  const { service, verifyToken } = options;
  const reads = options.reads ?? 'public';
  const apiKeyHash = options.apiKey === undefined ? undefined : sha256(options.apiKey);
  const openWrites = verifyToken === undefined && apiKeyHash === undefined;
  /** Each request's identity, found once before the rate limit (which is keyed by it) and checked by the route. */
  const identities = new WeakMap<FastifyRequest, Identity>();
  const NOBODY: Identity = { kind: 'none' };

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
    const id = identities.get(req);
    if (id === undefined) throw new HttpError('internal', 'the request was not identified');
    if (id.kind === 'refused') throw id.error;
    return id;
  }

  /** The rate limit's client: the API key holder, a token's sub, or the remote address. */
  function clientKey(req: FastifyRequest): string {
    const id = identities.get(req);
    if (id?.kind === 'key') return 'key';
    if (id?.kind === 'user') return `sub:${id.sub}`;
    return `ip:${normalizeIP(req.ip)}`;
  }

  function checkRead(req: FastifyRequest): void {
    const id = who(req);
    if (reads === 'token' && id.kind === 'none') throw new HttpError('unauthorized', 'reads need Authorization: Bearer <JWT> or X-API-Key (STATUS_READS=token)');
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

  return async function plugin(r: FastifyInstance): Promise<void> {
    // Validation is zod's (in the StatusService, shared with sockets): the
    // JSON schemas below document the routes and serialize the answers.
    r.setValidatorCompiler(() => () => true);

    r.setErrorHandler(async (err: { statusCode?: unknown; message?: unknown; code?: unknown }, req, reply) => {
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
    });

    // A body must be JSON: checked before it is read.
    r.addHook('onRequest', async (req) => {
      if (req.method !== 'PUT' && req.method !== 'POST') return;
      const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
      if (!hasBody) return;
      const type = req.headers['content-type'];
      if (typeof type !== 'string' || !/^application\/json\s*(;|$)/i.test(type)) {
        throw new HttpError('invalid_payload', `the body must be JSON (Content-Type: application/json), got ${type === undefined ? 'no Content-Type' : `'${type}'`}`, 415);
      }
    });

    // Credentials are checked before the rate limit, which counts per client;
    // refused ones count against the address and are answered 401 by the route.
    r.addHook('onRequest', (req, _reply, done) => {
      // Most reads carry no credentials: no promise for them.
      if (req.headers['x-api-key'] === undefined && req.headers.authorization === undefined) {
        identities.set(req, NOBODY);
        return done();
      }
      identify(req).then(
        (id) => {
          identities.set(req, id);
          done();
        },
        (err: Error) => done(err),
      );
    });

    const limit = options.rateLimit;
    if (limit) {
      await r.register(rateLimit, {
        max: limit.burst,
        timeWindow: Math.max(1, Math.round((limit.burst * 1_000) / limit.perSecond)),
        cache: limit.maxClients ?? 10_000,
        // After the headers, before the body is read: a limited client's body is never parsed.
        hook: 'preParsing',
        keyGenerator: clientKey,
        errorResponseBuilder: (_req, ctx) =>
          new HttpError('rate_limited', `too many requests from this client (${limit.burst} per ${ctx.after} window, STATUS_RATE_LIMIT=${limit.perSecond}/s); retry in ${ctx.after}`),
      });
    }

    r.get<{ Params: { userId: string } }>(
      '/presence/:userId',
      { schema: { summary: "A user's status record", tags, params, response: { 200: recordRead, ...readErrors } } },
      async (req, reply) => {
        checkRead(req);
        return answer(reply, await service.getManyOrStale([req.params.userId]), (users) => users[0]!);
      },
    );

    r.get<{ Querystring: { users?: unknown } }>(
      '/presence',
      {
        schema: {
          summary: `Records of several users, in request order (at most ${MAX_QUERY_IDS})`,
          tags,
          querystring: usersQuerySchema,
          response: { 200: usersRead, ...readErrors },
        },
      },
      async (req, reply) => {
        checkRead(req);
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
        schema: {
          summary: `Records of several users, in request order (at most ${MAX_BATCH_IDS})`,
          tags,
          body: batchSchema,
          response: { 200: usersRead, ...errors(400, 401, 413, 415, 429, 503) },
        },
      },
      async (req, reply) => {
        checkRead(req);
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
      { schema: { summary: "Clears a user's manual status and message", tags, security, params, response: { 200: recordWrite, ...errors(400, 401, 403, 429, 503) } } },
      async (req) => {
        const userId = checkId(req.params.userId);
        checkWrite(req, userId);
        return service.clear(userId);
      },
    );
  };
}

/** A bad id is 400 before the auth check can answer 403 for it. */
function checkId(userId: string): string {
  const res = parsePayload(StatusUserIdSchema, userId);
  if (!res.ok) throw new HttpError('invalid_payload', res.error.message);
  return res.value;
}
