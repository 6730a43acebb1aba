import { STATUS_LIMITS } from 'realtime-message-protocol';

/**
 * JSON schemas of the status REST API: they document the routes in the
 * OpenAPI document and serialize the answers. The authoritative checks of
 * input are the protocol's zod schemas (run by the StatusService).
 */

/** Most ids in `GET /api/v2/presence?users=`. */
export const MAX_QUERY_IDS = 100;
/** Most ids in `POST /api/v2/presence/batch`. */
export const MAX_BATCH_IDS = 1_000;

/** Set to `true` on a read answered from the node-local cache while the store cannot be reached. */
export const STALE_HEADER = 'status-stale';
/** With {@link STALE_HEADER}: since when (ms since epoch) the node may have missed changes. */
export const STALE_SINCE_HEADER = 'status-stale-since';

const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: [type, 'null'], ...extra });

export const userIdSchema = { type: 'string', minLength: 1, maxLength: 128, description: 'a user id (1-128 UTF-16 code units, no control characters or { })' } as const;

export const recordSchema = {
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
    stale: { type: 'boolean', enum: [true], description: "present (true) only when the status storage cannot be reached and the record comes from this node's cache (exact as of status-stale-since)" },
  },
  required: ['userId', 'status', 'message', 'manual', 'expiresAt', 'messageExpiresAt', 'lastSeen', 'updatedAt', 'nodeId', 'seq'],
} as const;

const usersSchema = { type: 'object', properties: { users: { type: 'array', items: recordSchema } }, required: ['users'] } as const;

/** Headers of every answer while rate limits are on (STATUS_RATE_LIMIT > 0; @fastify/rate-limit). */
const rateLimitHeaders = {
  'x-ratelimit-limit': { type: 'integer', description: 'requests a client may send per window (STATUS_RATE_LIMIT_BURST)' },
  'x-ratelimit-remaining': { type: 'integer', description: 'requests left in the current window' },
  'x-ratelimit-reset': { type: 'integer', description: 'seconds until the window restarts' },
} as const;

const staleHeaders = {
  [STALE_HEADER]: {
    type: 'string',
    enum: ['1'],
    description: 'present (1) when the status storage cannot be reached and every requested user was answered from this node\'s cache; each record then carries "stale": true and is exact as of status-stale-since',
  },
  [STALE_SINCE_HEADER]: { type: 'integer', description: 'with status-stale: since when (ms since epoch) this node may have missed changes' },
} as const;

/** A successful read: the body, the rate-limit headers and the stale mark. */
export const readAnswer = <S extends object>(schema: S) => ({ ...schema, headers: { ...rateLimitHeaders, ...staleHeaders } });
/** A successful write: the body and the rate-limit headers. */
export const writeAnswer = <S extends object>(schema: S) => ({ ...schema, headers: { ...rateLimitHeaders } });

export const recordRead = readAnswer(recordSchema);
export const usersRead = readAnswer(usersSchema);
export const recordWrite = writeAnswer(recordSchema);

const errorBody = {
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

const DESCRIPTIONS: Record<number, string> = {
  400: 'invalid_payload: the request is malformed',
  401: 'unauthorized: missing or refused credentials',
  403: 'forbidden: the token may not change this user',
  413: 'payload_too_large',
  415: 'invalid_payload: the body is not JSON',
  429: 'rate_limited: this client sent too many requests; retry after Retry-After seconds',
  503: 'unavailable: the status storage cannot be reached (and, for reads, a requested user is not in this node\'s cache); retry with backoff',
};

const tooMany = {
  ...errorBody,
  headers: { 'retry-after': { type: 'integer', description: 'seconds until the client may send again' }, ...rateLimitHeaders },
};

/** `{ error: { code, message } }` answers for these HTTP statuses. */
export function errors(...codes: number[]): Record<number, object> {
  return Object.fromEntries(codes.map((c) => [c, { ...(c === 429 ? tooMany : errorBody), description: DESCRIPTIONS[c] ?? 'error' }]));
}

export const readErrors = errors(400, 401, 429, 503);
export const writeErrors = errors(400, 401, 403, 413, 415, 429, 503);

export const updateSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['online', 'away', 'busy', 'offline'], description: '`online` clears the manual status; `offline` is invisible' },
    message: nullable('string', { maxLength: STATUS_LIMITS.maxMessageLength, description: 'sets the message; null clears it; absent keeps it' }),
    ttlSeconds: { type: 'integer', minimum: 1, maximum: STATUS_LIMITS.maxTtlSeconds, description: 'manual status expiry; with `online`, a keep-alive' },
    messageTtlSeconds: { type: 'integer', minimum: 1, maximum: STATUS_LIMITS.maxTtlSeconds },
  },
  required: ['status'],
} as const;

export const batchSchema = {
  type: 'object',
  properties: { userIds: { type: 'array', items: userIdSchema, minItems: 1, maxItems: MAX_BATCH_IDS, uniqueItems: true } },
  required: ['userIds'],
} as const;

export const usersQuerySchema = { type: 'object', properties: { users: { type: 'string', description: 'comma-separated user ids' } }, required: ['users'] } as const;

export const security: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];
export const tags = ['status'];
export const params = { type: 'object', properties: { userId: userIdSchema }, required: ['userId'] } as const;
