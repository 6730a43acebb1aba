import {
  PresenceError,
  STATUS_EVENTS,
  StatusActivityRequestSchema,
  StatusSetRequestSchema,
  StatusWatchRequestSchema,
  type StatusActivityAck,
  type StatusRecord,
  type StatusSetAck,
  type StatusSubscribeAck,
  type StatusUnsubscribeAck,
  type UserId,
} from 'realtime-message-protocol';
import type { StatusService } from '../../core/status/service.js';
import { parse, sendGuarded, type Handler, type HandlerContext } from './handlers.js';
import type { SocketSession } from './session.js';

/** What the status handlers need besides the presence context. */
export interface StatusContext {
  service: StatusService;
  watchers: StatusWatchers;
  /** Most users one socket may watch at once. */
  maxWatchedPerSocket: number;
  /** `token`: only sockets with a verified token may watch (SPEC §7 `STATUS_READS`). */
  reads: 'public' | 'token';
}

/**
 * Which sockets of this node watch which users. One listener on the status
 * service's feed (every change of every user, from every node) looks the
 * user up here, so the cost of an event is one map lookup plus one send per
 * watching socket.
 */
export class StatusWatchers {
  private readonly byUser = new Map<UserId, Set<SocketSession>>();
  /** Watches held, (socket, user) pairs. */
  watches = 0;

  constructor(private readonly onChange: (watches: number) => void = () => {}) {}

  add(session: SocketSession, userId: UserId): void {
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    if (set.has(session)) return;
    set.add(session);
    session.watched.add(userId);
    this.onChange(++this.watches);
  }

  remove(session: SocketSession, userId: UserId): void {
    session.watched.delete(userId);
    const set = this.byUser.get(userId);
    if (!set?.delete(session)) return;
    if (set.size === 0) this.byUser.delete(userId);
    this.onChange(--this.watches);
  }

  /** Forgets every user the session watches (it disconnected). */
  removeAll(session: SocketSession): void {
    for (const userId of [...session.watched]) this.remove(session, userId);
  }

  /** The sockets watching `userId`, if any. */
  of(userId: UserId): ReadonlySet<SocketSession> | undefined {
    return this.byUser.get(userId);
  }

  /** Every user watched by a socket of this node. */
  users(): UserId[] {
    return [...this.byUser.keys()];
  }

  /** Users watched by at least one socket of this node. */
  get size(): number {
    return this.byUser.size;
  }
}

/** Pushes one status event to every socket of this node that watches its user. */
export function deliverStatus(ctx: HandlerContext, event: StatusRecord): void {
  const sessions = ctx.status?.watchers.of(event.userId);
  if (!sessions) return;
  for (const session of sessions) sendGuarded(ctx, session, STATUS_EVENTS.event, event);
}

/**
 * The node's status feed resumed after an interruption (a Redis subscriber
 * reconnect): changes of the gap never reached the watchers. Reads every
 * watched user again, in batches, and pushes the records: a client keeps a
 * record only when its `seq` is higher than the one it holds, so unchanged
 * users cost a send and nothing else.
 */
export async function repushWatched(ctx: HandlerContext, batch = 1_000): Promise<number> {
  const status = ctx.status;
  if (!status) return 0;
  const users = status.watchers.users();
  let pushed = 0;
  for (let i = 0; i < users.length; i += batch) {
    const records = await status.service.getMany(users.slice(i, i + batch));
    for (const r of records) deliverStatus(ctx, r);
    pushed += records.length;
  }
  return pushed;
}

function statusOf(ctx: HandlerContext): StatusContext {
  if (!ctx.status) throw new PresenceError('forbidden', 'user status is turned off on this server');
  return ctx.status;
}

/**
 * The user a `status:set` / `status:activity` acts for: the token's `sub`
 * when auth is on; in open mode the `userId` sent, or else the user the
 * socket joined its rooms as. Never another user than the socket's own.
 */
function ownUser(session: SocketSession, asked: UserId | undefined): UserId {
  if (session.authUserId !== undefined) {
    if (asked !== undefined && asked !== session.authUserId) {
      throw new PresenceError('forbidden', 'a socket may set only the status of its own user (the subject of its token)');
    }
    return session.authUserId as UserId;
  }
  const joinedAs = new Set([...session.rooms.values()].map((m) => m.userId));
  if (asked !== undefined) {
    if (joinedAs.size > 0 && !joinedAs.has(asked)) throw new PresenceError('forbidden', `this socket joined its rooms as another user than '${asked}'`);
    return asked;
  }
  if (joinedAs.size === 1) return joinedAs.values().next().value!;
  throw new PresenceError('invalid_payload', 'userId is required: this server has no auth and the socket has not joined a room as one user');
}

export const onStatusSubscribe: Handler = async (ctx, session, raw): Promise<StatusSubscribeAck> => {
  const status = statusOf(ctx);
  const p = parse(StatusWatchRequestSchema, raw);
  if (status.reads === 'token' && session.authUserId === undefined) {
    throw new PresenceError('unauthorized', 'watching status needs a token on this server (STATUS_READS=token)');
  }
  const fresh = p.userIds.filter((id) => !session.watched.has(id));
  if (session.watched.size + fresh.length > status.maxWatchedPerSocket) {
    throw new PresenceError('forbidden', `a socket may watch at most ${status.maxWatchedPerSocket} users (it watches ${session.watched.size}); unsubscribe some first`);
  }
  for (const userId of p.userIds) {
    await ctx.extensions.check({ transport: 'socket.io', userId: session.authUserId ?? '', action: 'status_read', target: userId, connection: session.socket });
  }
  // Watch before reading: an event after the read is not missed; one that
  // raced it carries a seq the client compares with the record's.
  for (const id of fresh) status.watchers.add(session, id);
  try {
    return { ok: true, users: await status.service.getMany(p.userIds) };
  } catch (err) {
    for (const id of fresh) status.watchers.remove(session, id);
    throw err;
  }
};

export const onStatusUnsubscribe: Handler = async (ctx, session, raw): Promise<StatusUnsubscribeAck> => {
  const status = statusOf(ctx);
  const p = parse(StatusWatchRequestSchema, raw);
  for (const id of p.userIds) status.watchers.remove(session, id);
  return { ok: true };
};

export const onStatusSet: Handler = async (ctx, session, raw): Promise<StatusSetAck> => {
  const status = statusOf(ctx);
  const { userId, ...update } = parse(StatusSetRequestSchema, raw);
  const user = ownUser(session, userId);
  await ctx.extensions.check({ transport: 'socket.io', userId: user, action: 'status_write', target: user, data: update, connection: session.socket });
  return { ok: true, user: await status.service.set(user, update) };
};

export const onStatusActivity: Handler = async (ctx, session, raw): Promise<StatusActivityAck> => {
  const status = statusOf(ctx);
  const p = parse(StatusActivityRequestSchema, raw);
  await status.service.activity(ownUser(session, p.userId));
  return { ok: true };
};

/** The client → server events of the status protocol and their handlers. */
export const STATUS_HANDLERS: ReadonlyArray<readonly [event: string, handler: Handler]> = [
  [STATUS_EVENTS.subscribe, onStatusSubscribe],
  [STATUS_EVENTS.unsubscribe, onStatusUnsubscribe],
  [STATUS_EVENTS.set, onStatusSet],
  [STATUS_EVENTS.activity, onStatusActivity],
];
