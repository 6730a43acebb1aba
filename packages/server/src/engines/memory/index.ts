export { MemoryEngine } from './memory-engine.js';
export { MemoryStatusStore } from './status-store.js';
export { MemoryBroker } from './channel-broker.js';
