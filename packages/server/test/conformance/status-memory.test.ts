import { MemoryStatusStore } from '../../src/engines/memory/status-store.js';
import { runStatusConformance } from './status.suite.js';

runStatusConformance({
  name: 'memory',
  async create() {
    const store = new MemoryStatusStore();
    // One process: another "node" is another service over the same store.
    return { store, peer: async () => store, cleanup: () => store.close() };
  },
});
