import { afterAll, beforeAll } from 'vitest';
import { NatsHubAndLeaves } from 'realtime-message-testing';
import { statusNatsFixture } from './status-nats-fixture.js';
import { runStatusConformance } from './status.suite.js';

// The bucket lives on the hub (domain "hub"); node a connects to leaf1, node b to leaf2: every read, write and watch crosses a leaf link.
let topo: NatsHubAndLeaves;
beforeAll(async () => {
  topo = await NatsHubAndLeaves.start(2);
});
afterAll(() => topo?.stop());

runStatusConformance({
  name: 'nats (hub and two leaf nodes, own JetStream domains)',
  create: () => statusNatsFixture({ servers: topo.leaves.map((l) => l.url), hubDomain: 'hub' }),
});
