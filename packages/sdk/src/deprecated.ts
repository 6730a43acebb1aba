import { PresenceRoom } from './room.js';
import type { RoomEvents, RoomOptions } from './room-types.js';
import type { RoomState } from './state.js';

// Names of the SDK before "channel" came to mean the channels capability.

/** @deprecated use PresenceRoom ("channel" now names the channels capability) */
export const PresenceChannel = PresenceRoom;
/** @deprecated use PresenceRoom */
export type PresenceChannel = PresenceRoom;
/** @deprecated use RoomOptions */
export type ChannelOptions = RoomOptions;
/** @deprecated use RoomEvents */
export type ChannelEvents = RoomEvents;
/** @deprecated use RoomState */
export type ChannelState = RoomState;
