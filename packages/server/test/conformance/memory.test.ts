import { MemoryEngine } from '../../src/index.js';
import { runEngineConformance } from './suite.js';

runEngineConformance({
  name: 'memory',
  async create() {
    const engine = new MemoryEngine();
    return {
      engine,
      // One process: another "node" is another service over the same engine.
      peer: async () => engine,
      isEmpty: async () => engine.roomCount === 0,
      cleanup: () => engine.close(),
    };
  },
});
