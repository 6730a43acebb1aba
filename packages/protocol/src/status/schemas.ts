/**
 * Schemas of the status API: what the edge (REST, sockets) parses, and what
 * tests check every record and event against. Both sides import these, so
 * the rules (id, message length, ttl range) are written once.
 */
import { z } from 'zod';
import { UserIdSchema } from '../shared/ids.js';
import { hasLoneSurrogate } from '../shared/json.js';
import { STATUS_SOCKET_LIMITS, type StatusActivityRequest, type StatusSetRequest, type StatusWatchRequest } from './events.js';
import { STATUS_LIMITS, type StatusRecord, type StatusUpdate } from './types.js';

/** A status user id: the same rules as a presence user id (they name the same people). */
export const StatusUserIdSchema = UserIdSchema;

export const UserStatusSchema = z.enum(['online', 'away', 'busy', 'offline'], {
  error: "status must be 'online', 'away', 'busy' or 'offline'",
});

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** A status message: at most 100 UTF-16 code units, no control characters (they corrupt UIs and logs), well-formed Unicode. */
export const StatusMessageSchema = z
  .string({ error: 'message must be a string or null' })
  .refine((s) => s.length <= STATUS_LIMITS.maxMessageLength, { error: `message must be at most ${STATUS_LIMITS.maxMessageLength} characters` })
  .refine((s) => !CONTROL_CHARS.test(s), { error: 'message must not contain control characters (line breaks included)' })
  .refine((s) => !hasLoneSurrogate(s), { error: 'message must be well-formed Unicode' });

/** `ttlSeconds` / `messageTtlSeconds`: an integer from 1 to 604800 (7 days). */
export function ttlSecondsSchema(what: string) {
  return z
    .number({ error: `${what} must be a number` })
    .int({ error: `${what} must be an integer` })
    .min(1, { error: `${what} must be at least 1` })
    .max(STATUS_LIMITS.maxTtlSeconds, { error: `${what} must be at most ${STATUS_LIMITS.maxTtlSeconds} (7 days)` });
}

/**
 * A status write (`PUT` body, `status:set`). Unknown fields are ignored
 * (SPEC: "unknown fields are ignored"); `messageTtlSeconds` needs a message.
 * @example StatusUpdateSchema.parse({ status: 'busy', message: 'in a meeting', ttlSeconds: 3600 })
 */
export const StatusUpdateSchema = z
  .object(
    {
      status: UserStatusSchema,
      message: StatusMessageSchema.nullable().optional(),
      ttlSeconds: ttlSecondsSchema('ttlSeconds').optional(),
      messageTtlSeconds: ttlSecondsSchema('messageTtlSeconds').optional(),
    },
    { error: 'expected an object { status, message?, ttlSeconds?, messageTtlSeconds? }' },
  )
  .refine((u) => u.messageTtlSeconds === undefined || (typeof u.message === 'string' && u.message !== ''), {
    error: 'messageTtlSeconds needs a message',
    path: ['messageTtlSeconds'],
  });

/**
 * `status:subscribe` / `status:unsubscribe`: 1 to 1,000 unique user ids.
 * @example StatusWatchRequestSchema.parse({ userIds: ['ada', 'grace'] })
 */
export const StatusWatchRequestSchema = z.object(
  {
    userIds: z
      .array(StatusUserIdSchema, { error: 'userIds must be a list of user ids' })
      .min(1, { error: 'userIds must not be empty' })
      .max(STATUS_SOCKET_LIMITS.maxIdsPerRequest, { error: `userIds may list at most ${STATUS_SOCKET_LIMITS.maxIdsPerRequest} ids per request` })
      .refine((ids) => new Set(ids).size === ids.length, { error: 'userIds must be unique' }),
  },
  { error: 'expected an object { userIds: [...] }' },
);

/** `status:set`: a status update, with `userId` only meaningful in open mode. */
export const StatusSetRequestSchema = z
  .object({ ...StatusUpdateSchema.shape, userId: StatusUserIdSchema.optional() }, { error: 'expected an object { status, message?, ttlSeconds?, messageTtlSeconds? }' })
  .refine((u) => u.messageTtlSeconds === undefined || (typeof u.message === 'string' && u.message !== ''), {
    error: 'messageTtlSeconds needs a message',
    path: ['messageTtlSeconds'],
  });

/** `status:activity`: nothing, or `{ userId }` in open mode. */
export const StatusActivityRequestSchema = z
  .object({ userId: StatusUserIdSchema.optional() }, { error: 'expected nothing or an object { userId? }' })
  .optional()
  .transform((v) => v ?? {});

const timeSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** One record as the server reports it (strict: an extra or misspelt field is a bug in the builder). */
export const StatusRecordSchema = z
  .strictObject({
    userId: StatusUserIdSchema,
    status: UserStatusSchema,
    message: StatusMessageSchema.nullable(),
    manual: z.boolean(),
    expiresAt: timeSchema.nullable(),
    messageExpiresAt: timeSchema.nullable(),
    lastSeen: timeSchema.nullable(),
    updatedAt: timeSchema.nullable(),
    nodeId: z.string().nullable(),
    seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    stale: z.literal(true).optional(),
  })
  .refine((r) => r.manual || r.expiresAt === null, { error: 'expiresAt is set only for a manual status', path: ['expiresAt'] })
  .refine((r) => r.message !== null || r.messageExpiresAt === null, { error: 'messageExpiresAt is set only with a message', path: ['messageExpiresAt'] });

/** A pushed `status:event`: the record right after the change. */
export const StatusEventSchema = StatusRecordSchema;

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type _SchemasMatchTypes = [
  Assert<Same<z.output<typeof StatusRecordSchema>, StatusRecord>>,
  Assert<Same<z.input<typeof StatusUpdateSchema>, StatusUpdate>>,
  Assert<Same<z.input<typeof StatusWatchRequestSchema>, StatusWatchRequest>>,
  Assert<Same<z.input<typeof StatusSetRequestSchema>, StatusSetRequest>>,
  Assert<Same<z.input<typeof StatusActivityRequestSchema>, StatusActivityRequest | undefined>>,
];
