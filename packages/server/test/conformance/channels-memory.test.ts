import { MemoryBroker } from '../../src/index.js';
import { runChannelConformance } from './channels.suite.js';

runChannelConformance({
  name: 'memory',
  async create() {
    const broker = new MemoryBroker();
    return {
      broker,
      // One process: another node is another service over the same broker.
      peer: async () => broker,
      cleanup: () => broker.close(),
    };
  },
  faulty: { skip: 'in-process delivery cannot drop a message, and a memory broker has no storage to restart (a new process starts new epochs)' },
});
