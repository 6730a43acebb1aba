import type { Server as HttpServer } from 'node:http';

/**
 * WebSocket endpoints share one HTTP server, so no endpoint may destroy the
 * upgrades of another (Socket.IO does by default: it is created with
 * `destroyUpgrade: false` for that reason). This guard answers 404 to an
 * upgrade that no endpoint claims, so a stray upgrade never hangs.
 */
export class UpgradeGuard {
  private readonly paths = new Set<string>();

  constructor(server: HttpServer) {
    server.on('upgrade', (req, socket) => {
      const path = (req.url ?? '/').split('?')[0]!;
      for (const p of this.paths) if (path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`)) return;
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }

  /** Declares that an endpoint handles upgrades on `path` (and below it). */
  claim(path: string): void {
    this.paths.add(path);
  }
}
