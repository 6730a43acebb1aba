#!/usr/bin/env node
// npm run sdk:demo: serves the built demo on http://localhost:4173 (DEMO_PORT)
// against TARGET_URL, or against a realtime-message server (memory engine) it
// starts on PORT (default 3000).
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createRealtimeServer, loadConfig, serveStatic } from 'realtime-message';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
let target = process.env.TARGET_URL;
let server;
if (!target) {
  server = createRealtimeServer(loadConfig({ ...process.env, DEMO_DIR: 'off' }));
  const port = await server.listen();
  target = `http://localhost:${port}`;
}
const demoPort = Number(process.env.DEMO_PORT ?? 4173);
const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  // Point the page at the server unless the user chose one.
  if (url.pathname === '/' && !url.searchParams.has('server')) {
    url.searchParams.set('server', target);
    res.writeHead(302, { location: `/?${url.searchParams}` });
    return res.end();
  }
  if (!serveStatic(dist, req, res)) {
    res.writeHead(404);
    res.end('not found');
  }
});
http.listen(demoPort, () => console.log(`demo: http://localhost:${demoPort}  (server: ${target})`));
const stop = async () => {
  http.close();
  await server?.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
