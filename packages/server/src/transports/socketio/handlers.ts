import {
  EVENTS,
  PresenceError,
  parsePayload,
  type HeartbeatAck,
  type JoinAck,
  type LeaveAck,
  type MessageAck,
  type PayloadSchemas,
  type PresenceEvent,
  type PresenceWireEvent,
  type RoomId,
  type RoomMessage,
  type RoomSnapshot,
  type StatePatch,
} from 'realtime-message-protocol';
import type { z } from 'zod';
import { ANONYMOUS_USER_ID } from '../../core/channels/presence-info.js';
import type { RoomFeedItem } from '../../core/presence/engine.js';
import type { PresenceService } from '../../core/presence/service.js';
import type { Clock } from '../../core/shared/clock.js';
import type { Extensions } from '../../extensions/extension.js';
import type { PresenceMetrics } from '../../observability/metrics.js';
import type { Membership, SocketSession } from './session.js';
import type { StatusContext } from './status-handlers.js';
import type { ChannelContext } from './channel-handlers.js';

/** What the handlers share: the services and settings of one transport. */
export interface HandlerContext {
  service: PresenceService;
  extensions: Extensions;
  metrics: PresenceMetrics;
  schemas: PayloadSchemas;
  clock: Clock;
  maxRoomsPerSocket: number;
  /** Bytes waiting to be sent to one socket beyond which it is disconnected (a slow consumer). */
  maxOutboundBytes: number;
  /** Called once when a slow consumer is disconnected. */
  onSlowConsumer: (session: SocketSession, bytes: number) => void;
  /** True once the transport is disposed. */
  disposed(): boolean;
  /** User status over sockets; undefined when status is turned off. */
  status?: StatusContext | undefined;
  /** Channels over sockets; undefined when channels are turned off. */
  channels?: ChannelContext | undefined;
}

/**
 * One event's handler. `release`, given to the handlers listed as pipelined,
 * lets the socket's next request start before this one settles (see
 * RequestQueue.pushReleasing).
 */
export type Handler = (ctx: HandlerContext, session: SocketSession, raw: unknown, release?: () => void) => Promise<{ ok: boolean }>;

export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const res = parsePayload(schema, input);
  if (!res.ok) throw new PresenceError(res.error.code, res.error.message);
  return res.value;
}

/** What Engine.IO exposes of a connection's outgoing side. */
interface OutgoingSide {
  writeBuffer?: ReadonlyArray<{ data?: unknown }>;
  /** The WebSocket transport's `ws` socket: `bufferedAmount` is what its TCP socket and frame sender hold. */
  transport?: { socket?: { bufferedAmount?: unknown } };
  request?: { socket?: { writableLength?: number } };
}

/**
 * Bytes of a write buffer already summed, by buffer: Engine.IO only appends
 * to a socket's write buffer and replaces it by a new array when it flushes,
 * so a buffer's sum grows by its new packets only, and a flushed buffer's
 * entry goes with it.
 */
const summed = new WeakMap<ReadonlyArray<{ data?: unknown }>, { packets: number; bytes: number }>();

/**
 * Bytes waiting to be sent to a socket: Engine.IO's write buffer (packets
 * held while the transport is not writable) plus what Node holds for the TCP
 * socket. Cheap when the socket keeps up: the buffer is only summed once it
 * holds a few packets, and then only the packets added since the last call
 * (not the whole buffer on every delivery).
 */
export function outboundBytes(session: SocketSession): number {
  const conn = session.socket.conn as unknown as OutgoingSide;
  // WebSocket: ws's bufferedAmount (objects every send touches anyway); else (polling) the handshake request's TCP socket,
  // which is cold memory on a WebSocket connection: one cache miss per delivery.
  const held = conn.transport?.socket?.bufferedAmount;
  const bytes = typeof held === 'number' ? held : (conn.request?.socket?.writableLength ?? 0);
  const wb = conn.writeBuffer;
  if (!wb || wb.length < 8) return bytes;
  let sum = summed.get(wb);
  if (!sum || sum.packets > wb.length) summed.set(wb, (sum = { packets: 0, bytes: 0 }));
  for (let i = sum.packets; i < wb.length; i++) {
    const d = wb[i]!.data;
    sum.bytes += typeof d === 'string' ? d.length : d instanceof Uint8Array ? d.byteLength : 0;
  }
  sum.packets = wb.length;
  return bytes + sum.bytes;
}

/**
 * Approximate JSON size of a snapshot, without serialising it: the states
 * dominate, and each connection's state is bounded and counted by its keys
 * and values' string lengths.
 */
function snapshotBytes(snapshot: RoomSnapshot): number {
  let bytes = 64;
  for (const c of snapshot.connections) {
    bytes += 160 + c.connId.length * 2 + c.userId.length * 2;
    for (const [k, v] of Object.entries(c.state)) bytes += k.length + 4 + (typeof v === 'string' ? v.length + 2 : JSON.stringify(v).length);
  }
  return bytes;
}

type UpdateEvent = Extract<PresenceEvent, { type: 'update' }>;

/**
 * The two wire forms of one update event, each made once per event (not once
 * per socket) for every socket of the node that wants it: the full form
 * without `patch` (the original protocol) and the patch form without `state`.
 */
const updateForms = new WeakMap<UpdateEvent, { state?: PresenceEvent; patch?: PresenceWireEvent }>();

/** An update as a socket that asked for `form` gets it. */
export function updateWireForm(e: UpdateEvent, form: 'state' | 'patch'): PresenceWireEvent {
  // No patch: an event from an older node. Everyone gets the full form (patch clients accept it).
  if (e.patch === undefined) return e;
  let forms = updateForms.get(e);
  if (!forms) updateForms.set(e, (forms = {}));
  if (form === 'patch') {
    if (!forms.patch) {
      const { state: _state, ...patchForm } = e;
      forms.patch = patchForm as PresenceWireEvent;
    }
    return forms.patch;
  }
  if (!forms.state) {
    const { patch: _patch, ...full } = e;
    forms.state = full;
  }
  return forms.state;
}

/**
 * Sends one server event to one socket unless it is a slow consumer: past
 * `maxOutboundBytes` waiting to be sent, it is disconnected instead (a socket
 * that does not read would hold every item sent to it; its members leave
 * after the grace). True when sent.
 */
export function sendGuarded(ctx: HandlerContext, session: SocketSession, event: string, payload: unknown): boolean {
  if (!session.socket.connected) return false;
  const backlog = outboundBytes(session);
  if (backlog > ctx.maxOutboundBytes) {
    ctx.onSlowConsumer(session, backlog);
    return false;
  }
  const encoded = typeof payload === 'object' && payload !== null ? encodeOnce(session, event, payload) : undefined;
  if (encoded) session.socket.client._packet(encoded.packets as never, encoded.opts);
  else session.socket.emit(event, payload);
  ctx.metrics.tallies.fanout.inc();
  return true;
}

/** What Socket.IO's adapter offers to encode a packet once for many sockets (as its own broadcasts do). */
interface PacketEncoder {
  _encode?(packet: object, opts: Record<string, unknown>): unknown[];
  encoder?: { encode(packet: object): unknown[] };
}

interface Encoded {
  event: string;
  nsp: string;
  packets: unknown[];
  opts: { preEncoded: true } & Record<string, unknown>;
}

/**
 * The last two pushed objects encoded, and their encodings: a feed hands one
 * event object to every socket of the node that follows it, one socket after
 * the other, so these entries serve a whole fan-out; two, because a presence
 * update goes out in two forms (state, patch) to the sockets of one room in
 * any order. (A WeakMap entry per object cost more than the encoding saved: a
 * set per publication, and its ephemerons for the garbage collector.)
 * Another object, event or namespace is encoded anew.
 */
let lastEncoded: { payload: object; encoded: Encoded } | undefined;
let olderEncoded: { payload: object; encoded: Encoded } | undefined;

/**
 * The Socket.IO packet of `event` with `payload`, encoded once per fan-out
 * of the payload object (and namespace) and then written to each socket as
 * is, as Socket.IO broadcasts do: a publication or an event sent to N sockets
 * of a node is serialised once, not N times. Undefined when the payload does not encode to
 * one text packet (binary attachments): the caller emits it normally.
 */
function encodeOnce(session: SocketSession, event: string, payload: object): Encoded | undefined {
  const nsp = session.socket.nsp;
  const last = lastEncoded;
  if (last !== undefined && last.payload === payload && last.encoded.event === event && last.encoded.nsp === nsp.name) return last.encoded;
  const older = olderEncoded;
  if (older !== undefined && older.payload === payload && older.encoded.event === event && older.encoded.nsp === nsp.name) return older.encoded;
  const adapter = nsp.adapter as unknown as PacketEncoder;
  const packet = { type: 2 /* EVENT */, data: [event, payload], nsp: nsp.name };
  const opts: Encoded['opts'] = { preEncoded: true };
  const packets = adapter._encode ? adapter._encode(packet, opts) : adapter.encoder?.encode(packet);
  if (!packets || packets.length !== 1 || typeof packets[0] !== 'string') return undefined;
  const encoded: Encoded = { event, nsp: nsp.name, packets, opts };
  olderEncoded = lastEncoded;
  lastEncoded = { payload, encoded };
  return encoded;
}

/** A socket's listener of a room's feed: a closure of its own that holds only what `deliver` needs (not the join's payload), for as long as the membership lasts. */
function feedListener(ctx: HandlerContext, session: SocketSession, roomId: RoomId): (item: RoomFeedItem) => void {
  return (item) => deliver(ctx, session, roomId, item);
}

/**
 * Sends one item of a room's feed to one socket: every event, and the
 * messages other connections sent; not its own join, nor its own leave when
 * it asked to leave (the acks say them, as Socket.IO's `socket.to(room)`
 * leaves out the sender).
 */
function deliver(ctx: HandlerContext, session: SocketSession, roomId: RoomId, item: RoomFeedItem): void {
  if (item.type === 'join' && session.ownJoin !== undefined && item.connId === session.ownJoin) {
    session.ownJoin = undefined;
    return;
  }
  if (item.type === 'leave' && session.leavingConn !== undefined && item.connId === session.leavingConn) return;
  if (item.type === 'message') {
    const m = item.message;
    // The sender does not get its own message back (as Socket.IO's `socket.to(room)`).
    if (m.connId !== undefined && session.rooms.get(roomId)?.connId === m.connId) return;
    sendGuarded(ctx, session, EVENTS.message, m);
  } else if (item.type === 'update') {
    sendGuarded(ctx, session, EVENTS.event, updateWireForm(item, session.updateForms.get(roomId) ?? 'state'));
  } else {
    sendGuarded(ctx, session, EVENTS.event, item);
  }
}

export const onJoin: Handler = async (ctx, session, raw): Promise<JoinAck> => {
  const p = parse(ctx.schemas.join, raw);
  if (session.authUserId !== undefined && p.userId !== session.authUserId) {
    throw new PresenceError('forbidden', 'userId must be the subject of your token; a client cannot act as another user');
  }
  // The presence rooms' name for anonymous Centrifugo connections: nobody may join as them.
  if (p.userId === ANONYMOUS_USER_ID) throw new PresenceError('forbidden', `userId '${ANONYMOUS_USER_ID}' is reserved for anonymous Centrifugo connections`);
  const existing = session.rooms.get(p.roomId);
  if (existing && existing.userId !== p.userId) {
    throw new PresenceError('forbidden', `this socket is in room '${p.roomId}' as another user; leave first`);
  }
  if (!existing && session.rooms.size >= ctx.maxRoomsPerSocket) {
    throw new PresenceError('forbidden', `a socket may be in at most ${ctx.maxRoomsPerSocket} rooms; leave one first`);
  }
  const wait = session.snapshotBudget?.waitMs(Date.now()) ?? 0;
  if (wait > 0) {
    // Each join answers with the room's snapshot: a socket that keeps
    // (re)joining big rooms would make the node serialise and send them
    // without bound, at the expense of every other room.
    throw new PresenceError('rate_limited', `this connection pulled more snapshot bytes than its budget; retry in ${wait} ms`);
  }
  await ctx.extensions.check({ transport: 'socket.io', userId: p.userId, action: 'join', target: p.roomId, connection: session.socket });
  session.setUpdateForm(p.roomId, p.updates);
  // Follow the room's feed *before* the join, so that no event after the
  // snapshot's seq can be missed. Events that arrive before the ack are
  // buffered by the client (docs/protocol.md).
  await session.follow(p.roomId, () => ctx.service.subscribeFeed(p.roomId, feedListener(ctx, session, p.roomId)));
  // The connId a new connection gets: its join event, whenever it comes, is not sent to this socket.
  const fresh = ctx.service.newConnectionId();
  session.ownJoin = fresh;
  let res;
  try {
    res = await ctx.service.joinParsed({ roomId: p.roomId, userId: p.userId, state: p.state, connId: existing?.connId ?? p.connId, knownSeq: p.knownSeq }, fresh);
  } catch (err) {
    if (session.ownJoin === fresh) session.ownJoin = undefined;
    if (!existing) await session.unfollow(p.roomId);
    throw err;
  }
  // A resume made no join event.
  if (res.connId !== fresh && session.ownJoin === fresh) session.ownJoin = undefined;
  if (!session.socket.connected || ctx.disposed()) {
    // The socket went away while the join was in flight: treat it as a disconnect.
    if (!existing) await session.unfollow(p.roomId);
    await ctx.service.disconnectParsed({ roomId: p.roomId, connId: res.connId, epoch: res.epoch }).catch(() => {});
    throw new PresenceError('not_joined', 'the socket disconnected during the join');
  }
  const m: Membership = { roomId: p.roomId, userId: p.userId, connId: res.connId, epoch: res.epoch };
  session.rooms.set(p.roomId, m);
  session.syncData();
  (res.resumed ? ctx.metrics.tallies.resumed : ctx.metrics.tallies.joined).inc();
  const self = { connId: res.connId, epoch: res.epoch, resumed: res.resumed, ttlMs: ctx.service.options.ttlMs };
  // The client holds the room already (knownSeq): no snapshot, nothing charged to its budget.
  if (res.upToDate) return { ok: true, self, upToDate: true, seq: res.seq };
  session.snapshotBudget?.charge(snapshotBytes(res.snapshot), Date.now());
  return { ok: true, self, snapshot: res.snapshot };
};

/**
 * The membership of the commonest heartbeat, `{ roomId }` (or `{ roomId, epoch }`
 * with the current epoch) of a room this socket joined, without the schema: the
 * room id equals one the join validated, the epoch the one the socket holds, so
 * the schema would accept the payload as it is. Undefined for anything else
 * (a patch, another field, another room or epoch, no payload): the schema decides.
 */
function plainHeartbeat(session: SocketSession, raw: unknown): Membership | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const proto = Object.getPrototypeOf(raw) as unknown;
  if (proto !== Object.prototype && proto !== null) return undefined;
  const p = raw as { roomId?: unknown; epoch?: unknown };
  if (typeof p.roomId !== 'string') return undefined;
  const m = session.rooms.get(p.roomId as RoomId);
  if (!m) return undefined;
  let fields = 0;
  for (const k in p) {
    if (k === 'roomId' || (k === 'epoch' && p.epoch === m.epoch)) fields++;
    else return undefined;
  }
  return fields > 0 ? m : undefined;
}

export const onHeartbeat: Handler = async (ctx, session, raw): Promise<HeartbeatAck> => {
  const plain = plainHeartbeat(session, raw);
  if (plain) return heartbeatOf(ctx, session, plain, undefined);
  const p = parse(ctx.schemas.heartbeat, raw);
  const m = session.membership(p.roomId);
  if (p.epoch !== undefined && p.epoch !== m.epoch) {
    ctx.metrics.staleEpochs.inc();
    throw new PresenceError('stale_epoch', `epoch ${p.epoch} is not current; this socket holds epoch ${m.epoch}`);
  }
  return heartbeatOf(ctx, session, m, p.patchState);
};

async function heartbeatOf(ctx: HandlerContext, session: SocketSession, m: Membership, patchState: StatePatch | undefined): Promise<HeartbeatAck> {
  try {
    const res = await ctx.service.heartbeatParsed(m, patchState);
    ctx.metrics.heartbeatsOk.inc();
    return { ok: true, epoch: res.epoch };
  } catch (err) {
    if (err instanceof PresenceError && (err.code === 'stale_epoch' || err.code === 'not_joined')) {
      // Fenced by a newer incarnation, or gone: this socket no longer holds the connection.
      if (err.code === 'stale_epoch') ctx.metrics.staleEpochs.inc();
      session.drop(m);
    }
    throw err;
  }
}

export const onLeave: Handler = async (ctx, session, raw): Promise<LeaveAck> => {
  const p = parse(ctx.schemas.leave, raw);
  const m = session.membership(p.roomId);
  // Its own leave event is not sent while the leave is in flight; a failed leave leaves it in the room, where a later leave of the connection (a timeout) must reach it.
  session.leavingConn = m.connId;
  try {
    await ctx.service.leaveParsed(m);
    ctx.metrics.tallies.leaves.inc();
  } catch (err) {
    if (!(err instanceof PresenceError) || (err.code !== 'not_joined' && err.code !== 'stale_epoch')) throw err;
    session.drop(m);
    // Already gone is what the client wanted; a newer incarnation is not ours to end.
    if (err.code === 'stale_epoch') throw err;
    return { ok: true };
  } finally {
    if (session.leavingConn === m.connId) session.leavingConn = undefined;
  }
  session.drop(m);
  return { ok: true };
};

export const onMessage: Handler = async (ctx, session, raw): Promise<MessageAck> => {
  const p = parse(ctx.schemas.message, raw);
  const m = session.membership(p.roomId);
  await ctx.extensions.check({ transport: 'socket.io', userId: m.userId, action: 'message', target: m.roomId, event: p.event, data: p.data, connection: session.socket });
  const msg: RoomMessage = { roomId: m.roomId, event: p.event, data: p.data, userId: m.userId, connId: m.connId, ts: ctx.clock.now() };
  await ctx.service.publishParsed(msg);
  ctx.metrics.tallies.messages.inc();
  return { ok: true };
};

/** The client → server events of the presence protocol and their handlers. */
export const HANDLERS: ReadonlyArray<readonly [event: string, handler: Handler]> = [
  [EVENTS.join, onJoin],
  [EVENTS.heartbeat, onHeartbeat],
  [EVENTS.leave, onLeave],
  [EVENTS.message, onMessage],
];
