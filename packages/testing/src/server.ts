import { onTestFinished } from 'vitest';
import { createRealtimeServer, loadConfig, type RealtimeServer } from 'realtime-message';

/**
 * The standalone server in process (`createRealtimeServer`, configured from
 * env-style variables as the CLI is) on port 0, quiet, closed after the test.
 */
export async function startServer(env: Record<string, string> = {}): Promise<{ server: RealtimeServer; url: string }> {
  const server = createRealtimeServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', ...env }));
  const port = await server.listen();
  onTestFinished(() => server.close());
  return { server, url: `http://127.0.0.1:${port}` };
}
