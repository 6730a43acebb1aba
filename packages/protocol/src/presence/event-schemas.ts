/**
 * Schemas of what the server sends (`presence:event`, `presence:message`, the
 * join ack's snapshot). The server builds these itself, so it does not parse
 * them on the hot path; they exist so that tests (the engine conformance
 * suite, the SDK) can check every event an engine builds, including the JSON
 * that the Redis engine's Lua scripts assemble by hand. Unknown keys are
 * rejected: an extra or misspelt field is a bug in the builder.
 */
import { z } from 'zod';
import { ConnIdSchema, RoomIdSchema, UserIdSchema, positiveIntSchema } from '../shared/ids.js';
import type { ConnectionInfo, PresenceEvent, PresencePatchEvent, PresenceWireEvent, RoomMessage, RoomSnapshot } from './events.js';
import { EpochSchema, EventNameSchema, messageDataSchema } from './payloads.js';
import { stateObjectSchema, type PresenceState, type StatePatch } from './state.js';

/**
 * A state as the server reports it. Looser than the join payload's state on
 * purpose: `maxStateKeys` bounds each join or patch, not the merged state,
 * and the byte limit is a server option; both are checked when the state
 * comes in.
 */
const ReportedStateSchema = stateObjectSchema<PresenceState>('state');
/** An update's patch: the same shape as a state, where `null` (delete the key) is one more JSON value. */
const ReportedPatchSchema = stateObjectSchema<StatePatch>('patch');

const LeaveReasonSchema = z.enum(['leave', 'disconnect', 'timeout'], {
  error: "reason must be 'leave', 'disconnect' or 'timeout'",
});

const eventBase = {
  roomId: RoomIdSchema,
  userId: UserIdSchema,
  connId: ConnIdSchema,
  ts: positiveIntSchema('ts'),
  epoch: EpochSchema,
  seq: positiveIntSchema('seq'),
};

/**
 * One presence event as the engines build it (and as a socket with the
 * default `updates: 'state'` receives it, without `patch`): `join` and
 * `update` carry the connection's whole state (an `update` also reports a
 * resumed join) and an `update` the patch that made it; `leave` carries the
 * reason and no state.
 * @example PresenceEventSchema.parse(JSON.parse(message))
 */
export const PresenceEventSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('join'), ...eventBase, state: ReportedStateSchema }),
    z.strictObject({ type: z.literal('update'), ...eventBase, state: ReportedStateSchema, patch: ReportedPatchSchema.optional() }),
    z.strictObject({ type: z.literal('leave'), ...eventBase, reason: LeaveReasonSchema }),
  ],
  { error: "type must be 'join', 'update' or 'leave'" },
);

/** An `update` in patch form, as a socket that joined with `updates: 'patch'` receives it. */
export const PresencePatchEventSchema = z.strictObject({ type: z.literal('update'), ...eventBase, patch: ReportedPatchSchema });

/** Anything `presence:event` may carry: the full form, or an update in patch form. */
export const PresenceWireEventSchema = z.union([PresenceEventSchema, PresencePatchEventSchema]);

const ConnectionInfoSchema = z.strictObject({
  connId: ConnIdSchema,
  userId: UserIdSchema,
  state: ReportedStateSchema,
  epoch: EpochSchema,
  joinedAt: positiveIntSchema('joinedAt'),
  lastSeen: positiveIntSchema('lastSeen'),
});

const MemberInfoSchema = z.strictObject({
  userId: UserIdSchema,
  connIds: z.array(ConnIdSchema).min(1, { error: 'a member has at least one connection' }),
});

/**
 * A room as of `seq` (0 for a room that never changed): its live
 * connections, and its members, which must be exactly the users of those
 * connections, each listing exactly its own connIds.
 */
export const RoomSnapshotSchema = z
  .strictObject({
    roomId: RoomIdSchema,
    seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    members: z.array(MemberInfoSchema),
    connections: z.array(ConnectionInfoSchema),
  })
  .superRefine((snap, ctx) => {
    const expected = new Map<string, Set<string>>();
    for (const c of snap.connections) {
      const set = expected.get(c.userId) ?? new Set<string>();
      if (set.has(c.connId)) ctx.addIssue({ code: 'custom', path: ['connections'], message: `connection ${c.connId} is listed twice` });
      set.add(c.connId);
      expected.set(c.userId, set);
    }
    const seen = new Set<string>();
    for (const m of snap.members) {
      const want = expected.get(m.userId);
      const same = want !== undefined && want.size === m.connIds.length && m.connIds.every((id) => want.has(id));
      if (!same || seen.has(m.userId)) {
        ctx.addIssue({ code: 'custom', path: ['members'], message: `member ${m.userId} does not match the connections` });
      }
      seen.add(m.userId);
    }
    if (seen.size !== expected.size) ctx.addIssue({ code: 'custom', path: ['members'], message: 'a user with connections is missing from members' });
  });

/**
 * One `presence:message` push. `userId` and `connId` name the sending member
 * and come together; both are absent when the server application sent it.
 * The size of `data` is a server option, so it is not checked here.
 */
export const RoomMessageSchema = z
  .strictObject({
    roomId: RoomIdSchema,
    event: EventNameSchema,
    data: messageDataSchema(),
    userId: UserIdSchema.optional(),
    connId: ConnIdSchema.optional(),
    ts: positiveIntSchema('ts'),
  })
  .refine((m) => (m.userId === undefined) === (m.connId === undefined), {
    error: 'userId and connId come together (a member sent it) or not at all (the server sent it)',
  });

// The schemas and the hand-written types must describe the same values: a
// drift in either breaks the build here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type _SchemasMatchTypes = [
  Assert<Same<z.output<typeof PresenceEventSchema>, PresenceEvent>>,
  Assert<Same<z.output<typeof PresencePatchEventSchema>, PresencePatchEvent>>,
  Assert<Same<z.output<typeof PresenceWireEventSchema>, PresenceWireEvent>>,
  Assert<Same<z.output<typeof RoomSnapshotSchema>, RoomSnapshot>>,
  Assert<Same<z.output<typeof ConnectionInfoSchema>, ConnectionInfo>>,
  Assert<Same<z.output<typeof RoomMessageSchema>, RoomMessage>>,
];
