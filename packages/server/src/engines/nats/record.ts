import type { UserId, UserStatus } from 'realtime-message-protocol';
import { z } from 'zod';
import type { StatusState } from '../../core/status/model.js';

/**
 * One user's value in the bucket: the state, the connection marks and the
 * effective pair of the last event, in one JSON value so that one
 * compare-and-set (the key's revision) covers all of it.
 */
export interface StoredRecord {
  /** Format version of the value. */
  f: 1;
  /** The state; null while only connection marks are known (a leave that arrived before its join). */
  st: StatusState | null;
  /** Connection marks: `room\x1fconnId` → [epoch, live 1 | ended 0, when it was marked]. */
  c: Record<string, [number, 0 | 1, number]>;
  /** Live connections (marks with live 1). */
  n: number;
  /** The effective status and message of the last event: changes are measured against them. */
  ps: UserStatus;
  pm: string | null;
  /** The next time the effective status or message may change on its own (the sweepers' deadline), or null. */
  due: number | null;
  /** Automatic away (ms) of the node that wrote it: every watcher computes the event exactly as the writer did. */
  aw: number;
  /** True when this write changed the effective pair (it is a status event). */
  ev?: boolean | undefined;
  /** When `ev` is not set: the revision of the last write that was an event (0: none). */
  er?: number | undefined;
}

const nullableInt = z.number().int().nullable();

const StateSchema = z.strictObject({
  version: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
  connected: z.boolean(),
  keepAliveUntil: nullableInt,
  manual: z.enum(['away', 'busy', 'offline']).nullable(),
  manualExpiresAt: nullableInt,
  message: z.string().nullable(),
  messageExpiresAt: nullableInt,
  lastSeen: nullableInt,
  lastActivity: nullableInt,
  updatedAt: z.number().int(),
  nodeId: z.string(),
});

const RecordSchema = z.strictObject({
  f: z.literal(1),
  st: StateSchema.nullable(),
  c: z.record(z.string(), z.tuple([z.number().int(), z.union([z.literal(0), z.literal(1)]), z.number().int()])),
  n: z.number().int().nonnegative(),
  ps: z.enum(['online', 'away', 'busy', 'offline']),
  pm: z.string().nullable(),
  due: nullableInt,
  aw: z.number().int().nonnegative(),
  ev: z.boolean().optional(),
  er: z.number().int().nonnegative().optional(),
});

/** A value in the bucket that is not a status record: reported with its key, never overwritten. */
export class InvalidStatusValueError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    detail: string,
  ) {
    super(`the value of key "${key}" in NATS KV bucket "${bucket}" is not a valid status record (${detail}); fix or purge that key`);
    this.name = 'InvalidStatusValueError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeRecord(r: StoredRecord): Uint8Array {
  return encoder.encode(JSON.stringify(r));
}

export function decodeRecord(bucket: string, key: string, value: Uint8Array): StoredRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(value));
  } catch {
    throw new InvalidStatusValueError(bucket, key, 'not JSON');
  }
  const res = RecordSchema.safeParse(raw);
  if (!res.success) throw new InvalidStatusValueError(bucket, key, res.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '));
  return res.data as StoredRecord;
}

/** The revision of the last status event this value records (its own when it is one). */
export function eventRevision(r: StoredRecord, revision: number): number {
  return r.ev ? revision : (r.er ?? 0);
}

/**
 * Keys are `u.` + the user id in base64url: KV keys allow only `[-/=.\w]`,
 * and user ids may hold any printable character.
 */
export function keyOf(userId: UserId): string {
  return `u.${Buffer.from(userId, 'utf8').toString('base64url')}`;
}

/** The user of a key, or undefined for a key that is not a user's. */
export function userOf(key: string): UserId | undefined {
  if (!key.startsWith('u.') || key.length < 3) return undefined;
  const id = Buffer.from(key.slice(2), 'base64url').toString('utf8');
  return keyOf(id as UserId) === key ? (id as UserId) : undefined;
}

/**
 * Applies one presence connection change to the marks: keeps the highest
 * (epoch, ended) per connection ((e, live) < (e, ended) < (e+1, live)) and
 * forgets ended marks older than `retentionMs`. Returns the live count after,
 * or undefined when the change is not above the mark (nothing to write).
 */
export function applyMark(r: Pick<StoredRecord, 'c' | 'n'>, conn: string, epoch: number, live: boolean, now: number, retentionMs: number): number | undefined {
  const m = r.c[conn];
  if (m && (epoch < m[0] || (epoch === m[0] && (live || m[1] === 0)))) return undefined;
  let n = r.n;
  if (m?.[1] === 1) n -= 1;
  if (live) n += 1;
  r.c[conn] = [epoch, live ? 1 : 0, now];
  for (const [k, v] of Object.entries(r.c)) if (v[1] === 0 && now - v[2] > retentionMs) delete r.c[k];
  r.n = n;
  return n;
}
