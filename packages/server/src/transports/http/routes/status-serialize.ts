import type { StatusRecord } from 'realtime-message-protocol';

/**
 * The JSON of the status routes' answers, written by hand for the two shapes
 * they send (a record, `{ users: [...] }`), and JSON.stringify for the rest
 * (error bodies). The response schemas still document the routes (OpenAPI);
 * this only replaces their compiled serializer on the hot read: a record's
 * timestamps differ per user, so each is a number V8 has not converted
 * before, and {@link intJson} converts one in about half the time (two small
 * integers instead of one double). Output is byte for byte JSON.stringify's
 * (the tests compare them).
 */

const PAD = ['', '0', '00', '000', '0000', '00000', '000000'];

/**
 * JSON of an integer. A millisecond timestamp (above 2³¹) is written as its
 * millions and its six low digits: both small integers, whose conversion is
 * V8's quick one (and the millions repeat from user to user).
 */
export function intJson(n: number): string {
  if (n < 2_147_483_648 && n > -2_147_483_649) return '' + n;
  // Below 10^15 the quotient n / 10^6 is exact enough that floor never overshoots.
  if (n > 0 && n < 1e15 && Number.isInteger(n)) {
    const hi = Math.floor(n / 1e6);
    const lo = '' + (n - hi * 1e6);
    return '' + hi + PAD[6 - lo.length]! + lo;
  }
  return JSON.stringify(n);
}

const nullableInt = (n: number | null): string => (n === null ? 'null' : intJson(n));
const nullableString = (s: string | null): string => (s === null ? 'null' : JSON.stringify(s));

const STATUS: Record<string, string> = { online: '"online"', away: '"away"', busy: '"busy"', offline: '"offline"' };

/** JSON of a status record, in the schema's field order (`stale` only when true). */
export function recordJson(r: StatusRecord): string {
  return (
    '{"userId":' +
    JSON.stringify(r.userId) +
    ',"status":' +
    (STATUS[r.status] ?? JSON.stringify(r.status)) +
    ',"message":' +
    nullableString(r.message) +
    ',"manual":' +
    (r.manual ? 'true' : 'false') +
    ',"expiresAt":' +
    nullableInt(r.expiresAt) +
    ',"messageExpiresAt":' +
    nullableInt(r.messageExpiresAt) +
    ',"lastSeen":' +
    nullableInt(r.lastSeen) +
    ',"updatedAt":' +
    nullableInt(r.updatedAt) +
    ',"nodeId":' +
    nullableString(r.nodeId) +
    ',"seq":' +
    intJson(r.seq) +
    (r.stale === true ? ',"stale":true}' : '}')
  );
}

/** JSON of `{ users: [...] }`. */
export function usersJson(body: { users: readonly StatusRecord[] }): string {
  let out = '{"users":[';
  const users = body.users;
  for (let i = 0; i < users.length; i++) out += (i === 0 ? '' : ',') + recordJson(users[i]!);
  return out + ']}';
}

/** Fastify serializer compiler of the status routes: the two shapes above by their schema, JSON.stringify for the others. */
export function statusSerializerCompiler({ schema }: { schema: unknown }): (data: unknown) => string {
  const props = (schema as { properties?: Record<string, unknown> } | undefined)?.properties;
  if (props?.users !== undefined) return usersJson as (data: unknown) => string;
  if (props?.userId !== undefined) return recordJson as (data: unknown) => string;
  return (data) => JSON.stringify(data);
}
