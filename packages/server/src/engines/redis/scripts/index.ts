/** The Redis engine's Lua scripts, one module each; see docs/presence-model.md for what each reads, writes and publishes. */
import { claimSlots } from './claim-slots.js';
import { finishSlots } from './finish-slots.js';
import { heartbeat, heartbeatBatch } from './heartbeat.js';
import { join, joinBatch } from './join.js';
import { disconnect, disconnectBatch, leave, leaveBatch } from './leave.js';
import { reapSlot } from './reap-slot.js';
import { snapshot } from './snapshot.js';

export const PRESENCE_SCRIPTS = { join, joinBatch, heartbeat, heartbeatBatch, leave, leaveBatch, disconnect, disconnectBatch, snapshot, reapSlot, claimSlots, finishSlots };

/**
 * The script commands the engine already gathers per event-loop turn
 * (heartbeats, joins, leaves, disconnects). A client with ioredis
 * auto-pipelining should list them in `autoPipeliningIgnoredCommands`, so
 * that a turn's calls are sent at its end rather than a turn later, each in
 * a Pipeline of its own: `new Redis(url, { enableAutoPipelining: true,
 * autoPipeliningIgnoredCommands: [...REDIS_BATCHED_COMMANDS] })`.
 */
export const REDIS_BATCHED_COMMANDS: readonly string[] = (
  ['heartbeat', 'heartbeatBatch', 'join', 'joinBatch', 'leave', 'leaveBatch', 'disconnect', 'disconnectBatch'] as const
).map((k) => PRESENCE_SCRIPTS[k].command);

export { Scripts } from './script.js';
