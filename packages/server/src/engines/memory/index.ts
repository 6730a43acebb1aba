export { MemoryEngine } from './memory-engine.js';
