import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PresenceError, STATUS_LIMITS, StatusUserIdSchema, httpStatusOf, parsePayload, type ErrorCode, type StatusUpdate } from 'realtime-message-protocol';
import type { StatusService } from '../../../core/status/service.js';
import type { TokenVerifier } from '../../../extensions/jwt.js';

/** Most ids in `GET /api/v2/presence?users=`. */
export const MAX_QUERY_IDS = 100;
/** Most ids in `POST /api/v2/presence/batch`. */
export const MAX_BATCH_IDS = 1_000;
/** Largest `PUT` body (a record update is well under 1 KiB). */
const PUT_BODY_LIMIT = 16 * 1_024;
/** Largest batch body: 1,000 ids of 128 UTF-16 units, even fully `\u`-escaped, fit. */
const BATCH_BODY_LIMIT = 1_024 * 1_024;

export interface StatusRoutesOptions {
  service: StatusService;
  /** Verifies `Authorization: Bearer` tokens; undefined = open mode (no `AUTH_*`). */
  verifyToken?: TokenVerifier | undefined;
  /** `API_KEY`: `X-API-Key` with this value may write any user. */
  apiKey?: string | undefined;
  /** `public`: reads need nothing; `token`: reads need a valid bearer token or the API key. @default 'public' */
  reads?: 'public' | 'token';
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

const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: [type, 'null'], ...extra });

const userIdSchema = { type: 'string', minLength: 1, maxLength: 128, description: 'a user id (1-128 UTF-16 code units, no control characters or { })' } as const;

const recordSchema = {
  type: 'object',
  description: 'A user status record (SPEC §7)',
  properties: {
    userId: { type: 'string' },
    status: { type: 'string', enum: ['online', 'away', 'busy', 'offline'] },
    message: nullable('string'),
    manual: { type: 'boolean' },
    expiresAt: nullable('integer', { description: 'when the manual status runs out (ms since epoch)' }),
    messageExpiresAt: nullable('integer'),
    lastSeen: nullable('integer'),
    updatedAt: nullable('integer'),
    nodeId: nullable('string'),
    seq: { type: 'integer' },
  },
  required: ['userId', 'status', 'message', 'manual', 'expiresAt', 'messageExpiresAt', 'lastSeen', 'updatedAt', 'nodeId', 'seq'],
} as const;

const usersSchema = { type: 'object', properties: { users: { type: 'array', items: recordSchema } }, required: ['users'] } as const;

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, errorSchema]));
const readErrors = errors(400, 401, 503);
const writeErrors = errors(400, 401, 403, 413, 415, 503);

const updateSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['online', 'away', 'busy', 'offline'], description: '`online` clears the manual status; `offline` is invisible' },
    message: nullable('string', { maxLength: STATUS_LIMITS.maxMessageLength, description: 'sets the message; null clears it; absent keeps it' }),
    ttlSeconds: { type: 'integer', minimum: 1, maximum: STATUS_LIMITS.maxTtlSeconds, description: 'manual status expiry; with `online`, a keep-alive' },
    messageTtlSeconds: { type: 'integer', minimum: 1, maximum: STATUS_LIMITS.maxTtlSeconds },
  },
  required: ['status'],
} as const;

const security: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];
const tags = ['status'];
const params = { type: 'object', properties: { userId: userIdSchema }, required: ['userId'] } as const;

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * The user status REST API of SPEC §7 under `/api/v2/presence`. The JSON
 * schemas document the routes (OpenAPI); the authoritative checks are the
 * protocol's zod schemas (run by the StatusService), so REST and sockets
 * refuse the same input with the same messages.
 */
export function statusRoutes(options: StatusRoutesOptions) {
  const { service, verifyToken } = options;
  const reads = options.reads ?? 'public';
  const apiKeyHash = options.apiKey === undefined ? undefined : sha256(options.apiKey);
  const openWrites = verifyToken === undefined && apiKeyHash === undefined;

  /** Who the request is: `key` (API key), a token's `sub`, or nobody. Throws 401 for bad credentials. */
  async function identify(req: FastifyRequest): Promise<{ kind: 'key' } | { kind: 'user'; sub: string } | { kind: 'none' }> {
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

  async function checkRead(req: FastifyRequest): Promise<void> {
    const who = await identify(req);
    if (reads === 'token' && who.kind === 'none') throw new HttpError('unauthorized', 'reads need Authorization: Bearer <JWT> or X-API-Key (STATUS_READS=token)');
  }

  async function checkWrite(req: FastifyRequest, userId: string): Promise<void> {
    const who = await identify(req);
    if (who.kind === 'key') return;
    if (who.kind === 'user') {
      if (who.sub !== userId) throw new HttpError('forbidden', `this token (sub '${who.sub}') may change only its own status, not '${userId}'`);
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

    r.get(
      '/api/v2/openapi.json',
      { schema: { hide: true } },
      async () => (r as unknown as { swagger(): unknown }).swagger(),
    );

    r.get<{ Params: { userId: string } }>(
      '/api/v2/presence/:userId',
      { schema: { summary: "A user's status record", tags, params, response: { 200: recordSchema, ...readErrors } } },
      async (req) => {
        await checkRead(req);
        return service.get(req.params.userId);
      },
    );

    r.get<{ Querystring: { users?: unknown } }>(
      '/api/v2/presence',
      {
        schema: {
          summary: `Records of several users, in request order (at most ${MAX_QUERY_IDS})`,
          tags,
          querystring: { type: 'object', properties: { users: { type: 'string', description: 'comma-separated user ids' } }, required: ['users'] },
          response: { 200: usersSchema, ...readErrors },
        },
      },
      async (req) => {
        await checkRead(req);
        const raw = req.query.users;
        if (typeof raw !== 'string') throw new HttpError('invalid_payload', raw === undefined ? 'users is required: ?users=a,b,c' : 'users must be given once: ?users=a,b,c');
        const ids = idList(raw === '' ? [] : raw.split(','), MAX_QUERY_IDS, 'users');
        return { users: await service.getMany(ids) };
      },
    );

    r.post<{ Body: unknown }>(
      '/api/v2/presence/batch',
      {
        bodyLimit: BATCH_BODY_LIMIT,
        schema: {
          summary: `Records of several users, in request order (at most ${MAX_BATCH_IDS})`,
          tags,
          body: { type: 'object', properties: { userIds: { type: 'array', items: userIdSchema, minItems: 1, maxItems: MAX_BATCH_IDS, uniqueItems: true } }, required: ['userIds'] },
          response: { 200: usersSchema, ...errors(400, 401, 413, 415, 503) },
        },
      },
      async (req) => {
        await checkRead(req);
        const body = req.body;
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError('invalid_payload', 'the body must be an object { userIds: [...] }');
        const ids = idList((body as { userIds?: unknown }).userIds, MAX_BATCH_IDS, 'userIds');
        return { users: await service.getMany(ids) };
      },
    );

    r.put<{ Params: { userId: string }; Body: unknown }>(
      '/api/v2/presence/:userId',
      {
        bodyLimit: PUT_BODY_LIMIT,
        schema: { summary: "Sets a user's status and message", tags, security, params, body: updateSchema, response: { 200: recordSchema, ...writeErrors } },
      },
      async (req) => {
        const userId = checkId(req.params.userId);
        await checkWrite(req, userId);
        return service.set(userId, req.body as StatusUpdate);
      },
    );

    r.delete<{ Params: { userId: string } }>(
      '/api/v2/presence/:userId',
      { schema: { summary: "Clears a user's manual status and message", tags, security, params, response: { 200: recordSchema, ...errors(400, 401, 403, 503) } } },
      async (req) => {
        const userId = checkId(req.params.userId);
        await checkWrite(req, userId);
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
