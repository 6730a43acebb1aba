import { z } from 'zod';
import { ConnIdSchema, RoomIdSchema, UserIdSchema, positiveIntSchema } from '../shared/ids.js';
import { isPlainObject, jsonProblem, utf8Length, type JsonValue } from '../shared/json.js';
import { EVENT_NAME_PATTERN, LIMITS } from '../shared/limits.js';
import type { UpdateForm } from './events.js';
import { stateObjectSchema, type PresenceState, type StatePatch } from './state.js';

/** Epochs are positive safe integers; they only ever grow for one connId. */
export const EpochSchema = positiveIntSchema('epoch');

export interface PayloadLimits {
  /** Largest serialized state of one connection, in UTF-8 bytes. @default 16384 */
  maxStateBytes: number;
  /** Largest serialized `data` of one custom message, in UTF-8 bytes. @default 65536 */
  maxMessageBytes?: number;
}

/** A custom message's `data`: any JSON value (absent means null), within `maxBytes`. */
export function messageDataSchema(maxBytes: number = Infinity) {
  return z.unknown().transform((value, ctx): JsonValue => {
    if (value === undefined) return null;
    const problem = jsonProblem(value, 'data', 1);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    const bytes = utf8Length(JSON.stringify(value));
    if (bytes > maxBytes) {
      ctx.addIssue({ code: 'custom', message: `data is ${bytes} bytes of JSON; the limit is ${maxBytes}`, params: { tooLarge: true } });
      return z.NEVER;
    }
    return value as JsonValue;
  });
}

export const EventNameSchema = z
  .string({ error: 'event must be a string' })
  .regex(EVENT_NAME_PATTERN, { error: "event must be 1-64 characters of letters, digits and '_ . : -', starting with a letter or digit" });

/** How the joining socket receives `update` events of the room. */
export const UpdateFormSchema = z.enum(['state', 'patch'], { error: "updates must be 'state' or 'patch'" });

/** The `seq` of the member list a resuming client holds (0 for a room it saw empty). */
export const KnownSeqSchema = z
  .number({ error: 'knownSeq must be a number' })
  .int({ error: 'knownSeq must be an integer' })
  .min(0, { error: 'knownSeq must be at least 0' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'knownSeq is too large' });

function plainObject() {
  return z.custom<Record<string, unknown>>((v) => isPlainObject(v), { error: 'payload must be a JSON object' });
}

/** Builds the payload schemas of client requests for the given size limits. */
export function createPayloadSchemas(limits: PayloadLimits = { maxStateBytes: LIMITS.defaultMaxStateBytes }) {
  const stateLimits = { maxKeys: LIMITS.maxStateKeys, maxBytes: limits.maxStateBytes };
  const state = stateObjectSchema<PresenceState>('state', stateLimits);
  const patch = stateObjectSchema<StatePatch>('patchState', stateLimits);
  // Unknown fields are stripped (not rejected) so that newer clients that send
  // optional extensions keep working against older servers. Payloads must be
  // plain JSON objects: a Buffer or class instance is not "an object with no fields".
  const join = plainObject().pipe(z.object({
    roomId: RoomIdSchema,
    userId: UserIdSchema,
    state: state.optional(),
    connId: ConnIdSchema.optional(),
    // The original protocol sends full states on update; patches are opt-in per join.
    updates: UpdateFormSchema.optional(),
    knownSeq: KnownSeqSchema.optional(),
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
    event: EventNameSchema,
    // Optional, as MessageRequest says: an absent `data` is delivered as null.
    data: messageDataSchema(limits.maxMessageBytes ?? LIMITS.defaultMaxMessageBytes).optional(),
  })).transform((m) => ({ ...m, data: m.data ?? null }));
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
  /**
   * How this socket receives the room's `update` events: `state` (the full
   * state, the original protocol) or `patch` (only the change). @default 'state'
   */
  updates?: UpdateForm;
  /**
   * With `connId`: the `seq` of the member list the client holds. When the
   * join resumes that live connection and nothing else happened in the room
   * since, the ack is `upToDate` and carries no snapshot.
   */
  knownSeq?: number;
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
