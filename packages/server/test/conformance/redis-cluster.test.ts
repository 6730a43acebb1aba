import { inject } from 'vitest';
import { redisFixture } from 'realtime-message-testing';
import { runEngineConformance } from './suite.js';

runEngineConformance({ name: 'redis cluster (3 masters)', create: () => redisFixture({ clusterNodes: inject('clusterNodes') }) });
