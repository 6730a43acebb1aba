import { inject } from 'vitest';
import { channelRedisFixture, faultyRedisFixture } from './channels-redis-fixture.js';
import { runChannelConformance } from './channels.suite.js';

runChannelConformance({ name: 'redis', create: () => channelRedisFixture({ url: inject('redisUrl') }), faulty: faultyRedisFixture });
