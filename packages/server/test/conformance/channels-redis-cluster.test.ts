import { inject } from 'vitest';
import { channelRedisFixture, faultyClusterFixture } from './channels-redis-fixture.js';
import { runChannelConformance } from './channels.suite.js';

runChannelConformance({ name: 'redis cluster (3 masters)', create: () => channelRedisFixture({ clusterNodes: inject('clusterNodes') }), faulty: faultyClusterFixture });
