import { createServer } from 'node:net';

/**
 * A free TCP port on 127.0.0.1, for processes that need a port number before
 * they start (redis-server, the CLI). In-process servers bind port 0 instead.
 * The cluster bus port (+10000) is kept in range too.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
      });
    });
    if (port > 0 && port + 10_000 < 65_536) return port;
  }
}
