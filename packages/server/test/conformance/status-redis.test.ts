import { inject } from 'vitest';
import { statusRedisFixture } from './status-redis-fixture.js';
import { runStatusConformance } from './status.suite.js';

runStatusConformance({ name: 'redis', omitsUnwantedState: true, create: () => statusRedisFixture({ url: inject('redisUrl') }) });
