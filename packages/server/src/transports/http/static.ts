import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
  '.ico': 'image/x-icon',
};

/** The demo may connect to any realtime-message server the user types in, nothing else is loaded from elsewhere. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss: http: https:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Where the built demo is, when this package runs from the repository. */
export function defaultDemoDir(): string | undefined {
  const dir = fileURLToPath(new URL('../../../../apps/demo/dist/', import.meta.url));
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}

/**
 * Serves files of `root` for GET/HEAD. Returns false when the path is not a
 * file there (the caller answers 404). Paths are normalized and must stay
 * inside `root`.
 */
export function serveStatic(root: string, req: IncomingMessage, res: ServerResponse): boolean {
  let path: string;
  try {
    path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
  } catch {
    return false;
  }
  if (path.includes('\0')) return false;
  if (path.endsWith('/')) path += 'index.html';
  const base = resolve(root);
  const file = resolve(base, '.' + normalize('/' + path));
  if (file !== base && !file.startsWith(base + sep)) return false;
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return false;
    size = st.size;
  } catch {
    return false;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': size,
    'cache-control': file.endsWith('index.html') ? 'no-cache' : 'public, max-age=3600',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': CSP,
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
  return true;
}
