import { inject } from 'vitest';
import { redisFixture } from '../helpers/redis-fixture.js';
import { runEngineConformance } from './suite.js';

runEngineConformance({ name: 'redis', create: () => redisFixture({ url: inject('redisUrl') }) });
