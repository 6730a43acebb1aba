import { inject } from 'vitest';
import { redisFixture } from '../helpers/redis-fixture.js';
import { runEngineConformance } from './suite.js';

runEngineConformance({ name: 'redis cluster (3 masters)', create: () => redisFixture({ clusterNodes: inject('clusterNodes') }) });
