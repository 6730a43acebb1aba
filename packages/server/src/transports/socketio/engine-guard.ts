import type { IncomingMessage } from 'node:http';
import type { Server } from 'socket.io';

/** Engine.IO's server and connection, as far as the guards use them (public events only). */
interface EngineConnection {
  readonly request: IncomingMessage;
  /** The Engine.IO server of the connection. */
  readonly server?: object;
  on(event: 'packet' | 'packetCreate', listener: (this: EngineConnection, packet: { type: string; data?: unknown }) => void): unknown;
  on(event: 'close', listener: (this: EngineConnection) => void): unknown;
  close(): unknown;
}
interface EngineServer {
  on(event: 'connection', listener: (conn: EngineConnection) => void): unknown;
  use(fn: (req: IncomingMessage, res: unknown, next: (err?: unknown) => void) => void): unknown;
}

/** The Socket.IO namespace a CONNECT (`0`) or CONNECT_ERROR (`4`) packet is about: `0/admin,{...}` → `/admin`, `0{...}` → `/`. */
function namespaceOf(data: string): string {
  if (data.charCodeAt(1) !== 47 /* / */) return '/';
  const comma = data.indexOf(',', 1);
  return comma === -1 ? data.slice(1) : data.slice(1, comma);
}

const guarded = new WeakSet<object>();

/** The namespaces whose CONNECT is pending, by connection (an entry only while one is). */
const pendingConnects = new WeakMap<object, Set<string> | string>();
/** The callback of each guarded Engine.IO server (a connection names its server). */
const refusedBy = new WeakMap<object, () => void>();

/**
 * At most one CONNECT in flight per namespace per Engine.IO connection.
 *
 * Socket.IO refuses a second CONNECT of a namespace that is already
 * connected, but not while the first one is still in its middleware: one
 * long-polling POST of `40␞40␞…` would create one server socket per packet
 * (23,000 for a 69 KB body). Engine.IO emits `packet` for each incoming
 * packet before Socket.IO decodes it, so a second CONNECT of a namespace
 * whose CONNECT is still pending closes the connection, synchronously, and
 * Engine.IO drops the rest of the payload. The pending mark clears when the
 * server answers (CONNECT ack `0…` or CONNECT_ERROR `4…`), so a client may
 * retry after a refusal on the same connection.
 *
 * The two listeners are shared by every connection (Engine.IO calls them with
 * the connection as `this`), and a connection has state only while one of its
 * CONNECTs is pending: nothing per idle connection beyond the listener slots.
 */
export function oneConnectAtATime(io: Server, onRefused: () => void = () => {}): void {
  const engine = io.engine as unknown as EngineServer | undefined;
  // Not attached to an HTTP server yet (no engine), or guarded already.
  if (!engine || guarded.has(engine)) return;
  guarded.add(engine);
  refusedBy.set(engine, onRefused);
  engine.on('connection', (conn) => {
    conn.on('packet', onIncomingPacket);
    conn.on('packetCreate', onOutgoingPacket);
  });
}

function onIncomingPacket(this: EngineConnection, packet: { type: string; data?: unknown }): void {
  if (packet.type !== 'message' || typeof packet.data !== 'string' || packet.data.charCodeAt(0) !== 48 /* 0: CONNECT */) return;
  const nsp = namespaceOf(packet.data);
  const pending = pendingConnects.get(this);
  if (pending === nsp || (typeof pending === 'object' && pending.has(nsp))) {
    if (this.server) refusedBy.get(this.server)?.();
    this.close();
    return;
  }
  // The common case is one namespace: a string, not a Set.
  if (pending === undefined) pendingConnects.set(this, nsp);
  else if (typeof pending === 'string') pendingConnects.set(this, new Set([pending, nsp]));
  else pending.add(nsp);
}

function onOutgoingPacket(this: EngineConnection, packet: { type: string; data?: unknown }): void {
  if (packet.type !== 'message' || typeof packet.data !== 'string') return;
  const c = packet.data.charCodeAt(0);
  if (c !== 48 /* CONNECT ack */ && c !== 52 /* CONNECT_ERROR */) return;
  const pending = pendingConnects.get(this);
  if (pending === undefined) return;
  const nsp = namespaceOf(packet.data);
  if (pending === nsp) pendingConnects.delete(this);
  else if (typeof pending === 'object') {
    pending.delete(nsp);
    if (pending.size === 0) pendingConnects.delete(this);
  }
}

/** The address a connection was counted under (connectionsPerAddress). */
const ADDRESS = Symbol('counted address');

/** The address a request came from, as the server sees it. */
export type AddressOf = (req: IncomingMessage) => string | undefined;

export const socketAddress: AddressOf = (req) => req.socket.remoteAddress;

/**
 * Counts open Engine.IO connections per client address and refuses a
 * handshake beyond `max`. Returns the check for Socket.IO's `allowRequest`
 * (it runs on handshakes only); the count drops when a connection closes.
 */
export function connectionsPerAddress(io: Server, max: number, addressOf: AddressOf = socketAddress): (req: IncomingMessage) => boolean {
  const open = new Map<string, number>();
  const engine = io.engine as unknown as EngineServer;
  // One close listener for every connection (Engine.IO calls it with the
  // connection as `this`, once), not a closure per connection.
  const onClose = function (this: EngineConnection & { [ADDRESS]?: string }): void {
    const address = this[ADDRESS] ?? 'unknown';
    const n = (open.get(address) ?? 1) - 1;
    if (n <= 0) open.delete(address);
    else open.set(address, n);
  };
  engine.on('connection', (conn) => {
    const address = addressOf(conn.request) ?? 'unknown';
    (conn as EngineConnection & { [ADDRESS]?: string })[ADDRESS] = address;
    open.set(address, (open.get(address) ?? 0) + 1);
    conn.on('close', onClose);
    exactListenerArray(conn, 'close');
  });
  return (req) => (open.get(addressOf(req) ?? 'unknown') ?? 0) < max;
}

/**
 * Node's EventEmitter keeps the listeners of an event, from the second one
 * on, in an array that later ones are pushed to; the push of a third (ours on
 * `close`, after Engine.IO's and Socket.IO's) makes V8 reserve 19 slots, ~130
 * bytes more per connection than the 3 it holds. Replaced with an exact-size
 * copy: the same listeners in the same order, and the emitter still pushes to
 * and splices the array it finds there.
 */
function exactListenerArray(emitter: object, event: string): void {
  const events = (emitter as { _events?: Record<string, unknown> })._events;
  const list = events?.[event];
  if (Array.isArray(list)) events![event] = [...list];
}

/**
 * Checks the Origin of every Engine.IO request (polling GETs and POSTs and
 * WebSocket upgrades on an existing session included), not only the
 * handshake that `allowRequest` sees. A refused request gets 400.
 */
export function checkOriginOnEveryRequest(io: Server, allowed: (origin: string | undefined) => boolean, onRefused: (origin: string | undefined) => void = () => {}): void {
  const engine = io.engine as unknown as EngineServer;
  engine.use((req, _res, next) => {
    const origin = req.headers.origin;
    if (allowed(origin)) return next();
    onRefused(origin);
    next(new Error('origin not allowed'));
  });
}
