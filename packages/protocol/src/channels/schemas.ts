/**
 * Schemas of the channel API: what every edge (Socket.IO, the Centrifugo
 * codec, the HTTP API, the in-process service) parses, and what tests check
 * publications against. The rules are written once here.
 */
import { z } from 'zod';
import { hasLoneSurrogate, isPlainObject, jsonProblem, utf8Length, type JsonValue } from '../shared/json.js';
import { FORBIDDEN_ID_CHARS } from '../shared/limits.js';
import { messageDataSchema } from '../presence/payloads.js';
import { CHANNEL_LIMITS, type ClientInfo, type Publication, type StreamPosition } from './types.js';

/**
 * A channel name: the rules of a room id (1–128 UTF-16 code units, no
 * control characters, no `{` `}`, well-formed Unicode), since a channel's
 * presence is the presence room of the same name. `ns:name` selects the
 * namespace `ns` (see `channelParts`).
 */
export const ChannelSchema = z
  .string({ error: 'channel must be a string' })
  .min(1, { error: 'channel must not be empty' })
  .refine((s) => s.length <= CHANNEL_LIMITS.maxChannelLength, { error: `channel must be at most ${CHANNEL_LIMITS.maxChannelLength} UTF-16 code units` })
  .refine((s) => !FORBIDDEN_ID_CHARS.test(s), { error: "channel must not contain control characters or '{' '}'" })
  .refine((s) => !hasLoneSurrogate(s), { error: 'channel must be well-formed Unicode' })
  .brand<'Channel'>();

export type Channel = z.infer<typeof ChannelSchema>;

/** An offset: an integer from 0 (before the first publication) to 2^53 − 1. */
export const OffsetSchema = z
  .number({ error: 'offset must be a number' })
  .int({ error: 'offset must be an integer' })
  .min(0, { error: 'offset must be at least 0' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'offset is too large' });

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** An epoch as a request carries it: `''` (Centrifugo: "no epoch, skip the check") or at most 64 printable characters. */
export const EpochTextSchema = z
  .string({ error: 'epoch must be a string' })
  .max(CHANNEL_LIMITS.maxEpochLength, { error: `epoch must be at most ${CHANNEL_LIMITS.maxEpochLength} characters` })
  .refine((s) => !CONTROL_CHARS.test(s), { error: 'epoch must not contain control characters' });

export const StreamPositionSchema: z.ZodType<StreamPosition> = z.object(
  { offset: OffsetSchema, epoch: EpochTextSchema },
  { error: 'expected a stream position { offset, epoch }' },
);

/** Publication tags: at most 32 string → string pairs (Centrifugo's `map<string,string>`). */
export const TagsSchema = z
  .custom<Record<string, string>>((v) => isPlainObject(v), { error: 'tags must be an object of strings' })
  .superRefine((tags, ctx) => {
    const entries = Object.entries(tags);
    if (entries.length > CHANNEL_LIMITS.maxTags) ctx.addIssue({ code: 'custom', message: `tags must have at most ${CHANNEL_LIMITS.maxTags} entries` });
    for (const [k, v] of entries) {
      if (k.length === 0 || k.length > CHANNEL_LIMITS.maxTagKeyLength || CONTROL_CHARS.test(k)) {
        ctx.addIssue({ code: 'custom', message: `tag keys must be 1-${CHANNEL_LIMITS.maxTagKeyLength} characters without control characters` });
        return;
      }
      if (typeof v !== 'string' || v.length > CHANNEL_LIMITS.maxTagValueLength) {
        ctx.addIssue({ code: 'custom', message: `tags.${k} must be a string of at most ${CHANNEL_LIMITS.maxTagValueLength} characters` });
        return;
      }
    }
  });

function infoJson(what: string) {
  return z.unknown().transform((value, ctx): JsonValue => {
    const problem = jsonProblem(value, what, 1);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    const bytes = utf8Length(JSON.stringify(value));
    if (bytes > CHANNEL_LIMITS.maxInfoBytes) {
      ctx.addIssue({ code: 'custom', message: `${what} is ${bytes} bytes of JSON; the limit is ${CHANNEL_LIMITS.maxInfoBytes}`, params: { tooLarge: true } });
      return z.NEVER;
    }
    return value as JsonValue;
  });
}

export const ClientInfoSchema: z.ZodType<ClientInfo, unknown> = z.object(
  {
    user: z.string({ error: 'info.user must be a string' }).max(CHANNEL_LIMITS.maxChannelLength * 2),
    client: z.string({ error: 'info.client must be a string' }).max(CHANNEL_LIMITS.maxChannelLength * 2),
    connInfo: infoJson('info.connInfo').optional(),
    chanInfo: infoJson('info.chanInfo').optional(),
  },
  { error: 'info must be an object { user, client, connInfo?, chanInfo? }' },
) as z.ZodType<ClientInfo, unknown>;

/** A publication's `data`: any JSON value (present; `null` is a value) within `maxBytes`. */
export function publicationDataSchema(maxBytes: number = CHANNEL_LIMITS.defaultMaxDataBytes) {
  return z.unknown().superRefine((v, ctx) => {
    if (v === undefined) ctx.addIssue({ code: 'custom', message: 'data is required (any JSON value)' });
  }).pipe(messageDataSchema(maxBytes));
}

/** One publication as history returns it (strict: an extra field is a bug in a broker). */
export const PublicationSchema: z.ZodType<Publication, unknown> = z.strictObject({
  offset: OffsetSchema.min(1, { error: 'a publication offset is at least 1' }),
  data: publicationDataSchema(Infinity),
  info: ClientInfoSchema.optional(),
  tags: TagsSchema.optional(),
}) as z.ZodType<Publication, unknown>;

/** A live publication (`channel:publication`); offset 0 is one published without history (`skipHistory`), which is not in the stream. */
export const ChannelPublicationSchema = z.strictObject({
  channel: ChannelSchema,
  epoch: z.string().min(1),
  offset: OffsetSchema,
  data: publicationDataSchema(Infinity),
  info: ClientInfoSchema.optional(),
  tags: TagsSchema.optional(),
});

export interface ChannelSchemaLimits {
  /** Largest `data` of one publication, in UTF-8 bytes of JSON. @default 65536 */
  maxDataBytes?: number;
  /** Largest history `limit` (and what `-1` means). @default 300 */
  historyMaxLimit?: number;
}

function plainObject(what: string) {
  return z.custom<Record<string, unknown>>((v) => isPlainObject(v), { error: `${what} must be a JSON object` });
}

/** History `limit`: an integer from -1 (as many as allowed) to `max`. */
export function historyLimitSchema(max: number) {
  return z
    .number({ error: 'limit must be a number' })
    .int({ error: 'limit must be an integer' })
    .min(-1, { error: 'limit must be -1 (as many as allowed), 0 (position only) or a positive count' })
    .max(max, { error: `limit must be at most ${max}` });
}

/**
 * The schemas of channel requests for the given limits. Unknown fields are
 * stripped, as for presence payloads.
 * @example createChannelSchemas().publish.parse({ channel: 'chat:1', data: { text: 'hi' } })
 */
function historyFields(maxLimit: number) {
  return {
    since: StreamPositionSchema.optional(),
    limit: historyLimitSchema(maxLimit).optional(),
    reverse: z.boolean({ error: 'reverse must be a boolean' }).optional(),
  };
}

/** Reverse paging from offset 0 names nothing (Centrifugo answers 107 bad request). */
const REVERSE_FROM_ZERO = {
  error: 'since.offset 0 with reverse: true names no publication (omit since to read from the newest)',
  path: ['since'],
};

/**
 * The schemas of channel requests for the given limits. Unknown fields are
 * stripped, as for presence payloads. History `limit` defaults to 0 (the
 * stream position only) and `reverse` to false, as in Centrifugo.
 * @example createChannelSchemas().publish.parse({ channel: 'chat:1', data: { text: 'hi' } })
 */
export function createChannelSchemas(limits: ChannelSchemaLimits = {}) {
  const maxLimit = limits.historyMaxLimit ?? CHANNEL_LIMITS.defaultHistoryMaxLimit;
  const withDefaults = <T extends { limit?: number | undefined; reverse?: boolean | undefined }>(o: T) => ({ ...o, limit: o.limit ?? 0, reverse: o.reverse ?? false });
  const notReverseFromZero = (o: { since?: StreamPosition | undefined; reverse: boolean }) => !(o.reverse && o.since?.offset === 0);
  const historyOptions = plainObject('history options').pipe(z.object(historyFields(maxLimit))).transform(withDefaults).refine(notReverseFromZero, REVERSE_FROM_ZERO);
  const history = plainObject('payload')
    .pipe(z.object({ channel: ChannelSchema, ...historyFields(maxLimit) }))
    .transform(withDefaults)
    .refine(notReverseFromZero, REVERSE_FROM_ZERO);
  const publish = plainObject('payload').pipe(
    z.object({ channel: ChannelSchema, data: publicationDataSchema(limits.maxDataBytes), tags: TagsSchema.optional() }),
  );
  const subscribe = plainObject('payload').pipe(z.object({ channel: ChannelSchema, since: StreamPositionSchema.optional() }));
  const unsubscribe = plainObject('payload').pipe(z.object({ channel: ChannelSchema }));
  return { data: publicationDataSchema(limits.maxDataBytes), historyOptions, publish, history, subscribe, unsubscribe };
}

export type ChannelSchemas = ReturnType<typeof createChannelSchemas>;
export type PublishPayload = z.output<ChannelSchemas['publish']>;
export type HistoryPayload = z.output<ChannelSchemas['history']>;
export type SubscribePayload = z.output<ChannelSchemas['subscribe']>;
