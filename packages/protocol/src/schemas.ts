import { z } from 'zod';
import { EVENT_NAME_PATTERN, FORBIDDEN_ID_CHARS, FORBIDDEN_STATE_KEYS, LIMITS } from './limits.js';

// ---------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------

function hasLoneSurrogate(s: string): boolean {
  // A lone surrogate cannot be encoded as UTF-8, so two different ids could
  // map to the same storage key after replacement. `isWellFormed` is Node 20+.
  return !(s as string & { isWellFormed(): boolean }).isWellFormed();
}

function idSchema<B extends string>(what: string) {
  return z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .max(LIMITS.maxIdLength, { error: `${what} must be at most ${LIMITS.maxIdLength} characters` })
    .refine((s) => !FORBIDDEN_ID_CHARS.test(s), {
      error: `${what} must not contain control characters or '{' '}'`,
    })
    .refine((s) => !hasLoneSurrogate(s), { error: `${what} must be well-formed Unicode` })
    .brand<B>();
}

export const RoomIdSchema = idSchema<'RoomId'>('roomId');
export const UserIdSchema = idSchema<'UserId'>('userId');
export const ConnIdSchema = idSchema<'ConnId'>('connId');

export type RoomId = z.infer<typeof RoomIdSchema>;
export type UserId = z.infer<typeof UserIdSchema>;
export type ConnId = z.infer<typeof ConnIdSchema>;

/** Epochs are positive safe integers; they only ever grow for one connId. */
export const EpochSchema = z
  .number({ error: 'epoch must be a number' })
  .int({ error: 'epoch must be an integer' })
  .min(1, { error: 'epoch must be at least 1' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'epoch is too large' });

// ---------------------------------------------------------------------------
// State: a JSON object, shallow-merged by patches
// ---------------------------------------------------------------------------

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
/** A connection's state: a JSON object. */
export type PresenceState = { [key: string]: JsonValue };
/** A patch: top-level keys replace, `null` deletes the key. */
export type StatePatch = { [key: string]: JsonValue };

const utf8 = new TextEncoder();
export function utf8Length(s: string): number {
  // Fast path: pure ASCII strings are as long in UTF-8 as in UTF-16.
  // eslint-disable-next-line no-control-regex
  return /^[\u0000-\u007f]*$/.test(s) ? s.length : utf8.encode(s).length;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Returns why `value` is not plain JSON within the depth limit, or undefined. */
function jsonProblem(value: unknown, path: string, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return hasLoneSurrogate(value) ? `${path} is not well-formed Unicode` : undefined;
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} must be a finite number`;
    case 'object': {
      if (value === null) return undefined;
      if (depth > LIMITS.maxStateDepth) return `${path} is nested deeper than ${LIMITS.maxStateDepth} levels`;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const p = jsonProblem(value[i], `${path}[${i}]`, depth + 1);
          if (p) return p;
        }
        return undefined;
      }
      if (!isPlainObject(value)) return `${path} must be plain JSON (got a non-plain object)`;
      for (const key of Object.keys(value)) {
        if (FORBIDDEN_STATE_KEYS.has(key)) return `${path} uses the forbidden key '${key}'`;
        if (hasLoneSurrogate(key)) return `${path} has a key that is not well-formed Unicode`;
        const p = jsonProblem(value[key], `${path}.${key}`, depth + 1);
        if (p) return p;
      }
      return undefined;
    }
    default:
      return `${path} must be JSON (got ${typeof value})`;
  }
}

function objectSchema<T>(what: 'state' | 'patchState', maxStateBytes: number) {
  return z.unknown().transform((value, ctx): T => {
    if (!isPlainObject(value)) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a JSON object` });
      return z.NEVER;
    }
    const keys = Object.keys(value);
    if (keys.length > LIMITS.maxStateKeys) {
      ctx.addIssue({ code: 'custom', message: `${what} has more than ${LIMITS.maxStateKeys} keys` });
      return z.NEVER;
    }
    for (const key of keys) {
      if (key.length === 0 || key.length > LIMITS.maxStateKeyLength) {
        ctx.addIssue({ code: 'custom', message: `${what} keys must be 1..${LIMITS.maxStateKeyLength} characters` });
        return z.NEVER;
      }
    }
    const problem = jsonProblem(value, what, 1);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    const bytes = utf8Length(JSON.stringify(value));
    if (bytes > maxStateBytes) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} is ${bytes} bytes of JSON; the limit is ${maxStateBytes}`,
        params: { tooLarge: true },
      });
      return z.NEVER;
    }
    return value as T;
  });
}

// ---------------------------------------------------------------------------
// Client -> server payloads
// ---------------------------------------------------------------------------

export interface PayloadLimits {
  /** Largest serialized state of one connection, in UTF-8 bytes. @default 16384 */
  maxStateBytes: number;
  /** Largest serialized `data` of one custom message, in UTF-8 bytes. @default 65536 */
  maxMessageBytes?: number;
}

function messageDataSchema(maxBytes: number) {
  return z.unknown().transform((value, ctx): JsonValue => {
    const problem = jsonProblem(value, 'data', 1);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    const bytes = value === undefined ? 4 : utf8Length(JSON.stringify(value));
    if (bytes > maxBytes) {
      ctx.addIssue({ code: 'custom', message: `data is ${bytes} bytes of JSON; the limit is ${maxBytes}`, params: { tooLarge: true } });
      return z.NEVER;
    }
    return (value ?? null) as JsonValue;
  });
}

function plainObject() {
  return z.custom<Record<string, unknown>>((v) => isPlainObject(v), { error: 'payload must be a JSON object' });
}

/** Builds the payload schemas for the given size limits. */
export function createPayloadSchemas(limits: PayloadLimits = { maxStateBytes: LIMITS.defaultMaxStateBytes }) {
  const state = objectSchema<PresenceState>('state', limits.maxStateBytes);
  const patch = objectSchema<StatePatch>('patchState', limits.maxStateBytes);
  // Unknown fields are stripped (not rejected) so that newer clients that send
  // optional extensions keep working against older servers. Payloads must be
  // plain JSON objects: a Buffer or class instance is not "an object with no fields".
  const join = plainObject().pipe(z.object({
    roomId: RoomIdSchema,
    userId: UserIdSchema,
    state: state.optional(),
    connId: ConnIdSchema.optional(),
  }));
  // The original protocol allowed a heartbeat/leave with no payload at all.
  const heartbeat = z.preprocess(
    (v) => (v === undefined || v === null ? {} : v),
    plainObject().pipe(z.object({ roomId: RoomIdSchema.optional(), patchState: patch.optional(), epoch: EpochSchema.optional() })),
  );
  const leave = z.preprocess(
    (v) => (v === undefined || v === null ? {} : v),
    plainObject().pipe(z.object({ roomId: RoomIdSchema.optional() })),
  );
  const message = plainObject().pipe(z.object({
    roomId: RoomIdSchema.optional(),
    event: z
      .string({ error: 'event must be a string' })
      .regex(EVENT_NAME_PATTERN, { error: "event must be 1-64 characters of letters, digits and '_ . : -', starting with a letter or digit" }),
    data: messageDataSchema(limits.maxMessageBytes ?? LIMITS.defaultMaxMessageBytes),
  }));
  return { state, patch, join, heartbeat, leave, message };
}

export type PayloadSchemas = ReturnType<typeof createPayloadSchemas>;
export type JoinPayload = z.output<PayloadSchemas['join']>;
export type HeartbeatPayload = z.output<PayloadSchemas['heartbeat']>;
export type LeavePayload = z.output<PayloadSchemas['leave']>;
export type MessagePayload = z.output<PayloadSchemas['message']>;

/** Wire (input) shapes, as a client sends them. */
export interface JoinRequest {
  roomId: string;
  userId: string;
  state?: PresenceState;
  connId?: string;
}
export interface HeartbeatRequest {
  roomId?: string;
  patchState?: StatePatch;
  epoch?: number;
}
export interface LeaveRequest {
  roomId?: string;
}
/** A custom event for the other members of a room (`presence:message`). */
export interface MessageRequest {
  roomId?: string;
  /** The application's event name, e.g. `chat:message`. */
  event: string;
  /** Any JSON value. */
  data?: JsonValue;
}

export type ParseResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: 'invalid_payload' | 'payload_too_large'; message: string } };

/**
 * Validates with a schema and turns the first issue into a coded error whose
 * message names the field.
 */
export function parsePayload<S extends z.ZodType>(schema: S, input: unknown): ParseResult<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  const tooLarge = issue?.code === 'custom' && (issue as { params?: { tooLarge?: boolean } }).params?.tooLarge === true;
  const path = issue && issue.path.length > 0 ? issue.path.join('.') : '';
  let message = issue?.message ?? 'invalid payload';
  if (path && !message.startsWith(String(issue?.path[0]))) message = `${path}: ${message}`;
  if (issue?.code === 'invalid_type' && path === '') message = `payload must be an object (${issue.message})`;
  return { ok: false, error: { code: tooLarge ? 'payload_too_large' : 'invalid_payload', message } };
}
