/** The Redis engine's Lua scripts, one module each; see docs/presence-model.md for what each reads, writes and publishes. */
import { claimSlots } from './claim-slots.js';
import { finishSlots } from './finish-slots.js';
import { heartbeat, heartbeatBatch } from './heartbeat.js';
import { join, joinBatch } from './join.js';
import { disconnect, disconnectBatch, leave, leaveBatch } from './leave.js';
import { reapSlot } from './reap-slot.js';
import { snapshot } from './snapshot.js';

export const PRESENCE_SCRIPTS = { join, joinBatch, heartbeat, heartbeatBatch, leave, leaveBatch, disconnect, disconnectBatch, snapshot, reapSlot, claimSlots, finishSlots };

export { Scripts } from './script.js';
