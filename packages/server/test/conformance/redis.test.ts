import { inject } from 'vitest';
import { redisFixture } from 'realtime-message-testing';
import { runEngineConformance } from './suite.js';

runEngineConformance({ name: 'redis', create: () => redisFixture({ url: inject('redisUrl') }) });
