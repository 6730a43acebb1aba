/** The Redis engine's Lua scripts, one module each; see docs/presence-model.md for what each reads, writes and publishes. */
import { claimSlot } from './claim-slot.js';
import { finishSlot } from './finish-slot.js';
import { heartbeat } from './heartbeat.js';
import { join } from './join.js';
import { disconnect, leave } from './leave.js';
import { reapRoom } from './reap-room.js';
import { snapshot } from './snapshot.js';

export const PRESENCE_SCRIPTS = { join, heartbeat, leave, disconnect, snapshot, reapRoom, claimSlot, finishSlot };

export { Scripts } from './script.js';
