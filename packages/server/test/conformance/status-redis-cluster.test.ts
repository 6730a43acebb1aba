import { inject } from 'vitest';
import { statusRedisFixture } from './status-redis-fixture.js';
import { runStatusConformance } from './status.suite.js';

runStatusConformance({ name: 'redis cluster (3 masters)', omitsUnwantedState: true, create: () => statusRedisFixture({ clusterNodes: inject('clusterNodes') }) });
