import { onTestFinished } from 'vitest';
import { startGateway, testEngine, type Gateway, type GatewayOptions, type TestEngine } from 'realtime-message-testing';
import { RealtimeClient, type RealtimeClientOptions } from '../src/index.js';

/**
 * The real gateway on port 0 over a {@link TestEngine} (memory, or Redis when
 * a URL is given), so a test can count the heartbeats that reached storage:
 * `engine.heartbeatsOf(roomId)`.
 */
export async function startServer({ redisUrl, ...opts }: GatewayOptions = {}): Promise<Gateway & { engine: TestEngine }> {
  const engine = testEngine(redisUrl);
  const gateway = await startGateway({ engine, serverOptions: { transports: ['websocket'], cors: { origin: true } }, ...opts });
  return { ...gateway, engine };
}

/** A client that is shut down after the test. */
export function client(url: string, opts: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const c = new RealtimeClient({ url, reconnect: { minDelayMs: 20, maxDelayMs: 100 }, ...opts });
  onTestFinished(() => c.shutdown());
  return c;
}
