/** Connection states of a `RealtimeClient`. */
export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting';

/** Membership states of a `PresenceRoom`. */
export type RoomState = 'idle' | 'joining' | 'joined' | 'rejoining' | 'left';

/**
 * Why the connection state changed:
 * - `connect`: `connect()` was called, or the first connection attempt succeeded;
 * - `reconnect`: a connection came back after it was lost;
 * - `disconnect`: the transport dropped (or the socket was closed by the app);
 * - `error`: a connection attempt failed and reconnection is off or gave up;
 * - `shutdown`: `shutdown()` was called.
 */
export type ConnectionChangeReason = 'connect' | 'reconnect' | 'disconnect' | 'error' | 'shutdown';

/**
 * Why a room's state changed:
 * - `join`: `join()` was called, or the server acknowledged a join;
 * - `leave`: `leave()` was called;
 * - `disconnect`: the connection dropped; the room resumes when it is back;
 * - `resync`: a `seq` gap was seen, or the server's storage was reset (`presence:resync`); the room takes a fresh snapshot;
 * - `expired`: the server no longer has this connection (timed out, storage reset); the room joins again;
 * - `stale_epoch`: another socket took this connection over; the room stops;
 * - `shutdown`: the client was shut down;
 * - `error`: the first join failed.
 */
export type RoomChangeReason = 'join' | 'leave' | 'disconnect' | 'resync' | 'expired' | 'stale_epoch' | 'shutdown' | 'error';

/** Payload of the `state` events of the client and of rooms. */
export interface StateChange<S extends string, R extends string = ConnectionChangeReason | RoomChangeReason> {
  newState: S;
  oldState: S;
  reason: R;
}
