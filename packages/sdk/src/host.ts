import type { PresenceWireEvent, RoomMessage } from 'realtime-message-protocol/core';
import type { Timers } from './timers.js';

/**
 * What a room needs from its connection. The client implements it (with a
 * private object, so none of this is public API), and a room depends on
 * nothing else: the client imports the room, never the other way round.
 */
export interface RoomHost {
  readonly timers: Timers;
  /** Whether the socket is connected right now. */
  connected(): boolean;
  /** Connects if needed (idempotent). */
  connect(): Promise<void>;
  /** Sends a client event and waits for its ack; rejects with `closed`, `disconnected` or `timeout`. */
  request<T>(event: string, payload: unknown): Promise<T>;
  /** Sends a client event without waiting for an ack. */
  send(event: string, payload: unknown): void;
  /** Stops routing events to this room (it left or stopped). */
  detach(roomId: string, link: RoomLink): void;
}

/** What the client calls on a room: the server's events and the connection's life. */
export interface RoomLink {
  event(e: PresenceWireEvent): void;
  message(m: RoomMessage): void;
  /** The server asked for a fresh snapshot (`presence:resync`: its storage was reset). */
  resync(): void;
  /** The client is connected (again). */
  connected(): void;
  /** The transport dropped. */
  disconnected(): void;
  /** Leaves the room because the client shuts down. */
  close(): Promise<void>;
  /** Releases every timer and listener. */
  dispose(): void;
}
