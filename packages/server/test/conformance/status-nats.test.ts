import { afterAll, beforeAll } from 'vitest';
import { NatsServer } from 'realtime-message-testing';
import { statusNatsFixture } from './status-nats-fixture.js';
import { runStatusConformance } from './status.suite.js';

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(() => server?.stop());

runStatusConformance({ name: 'nats (one server)', create: () => statusNatsFixture({ servers: [server.url] }) });
