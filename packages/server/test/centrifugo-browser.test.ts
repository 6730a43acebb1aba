import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { describe, expect, it, onTestFinished } from 'vitest';
import { browserSkipReason, launchChromium } from 'realtime-message-testing';
import { centrifugoServer, channel, client, publications, token, waitLength } from './centrifugo-fixtures.js';

/** centrifuge-js's browser build (a global `Centrifuge`), as a page loads it from a CDN. */
const browserBuild = createRequire(import.meta.url).resolve('centrifuge').replace(/build[\\/]index\.js$/, 'dist/centrifuge.js');

if (browserSkipReason) console.warn(`skipping the Centrifugo browser test: ${browserSkipReason}`);

describe.skipIf(browserSkipReason !== undefined)('centrifuge-js browser build in headless Chromium', () => {
  it('a page connects with a token, subscribes, publishes and receives a Node client\'s publication', async () => {
    const { ws } = await centrifugoServer({}, { auth: true });
    const page = `<!doctype html><meta charset="utf-8"><title>centrifuge</title>
<script src="/centrifuge.js"></script>
<script>
  window.seen = [];
  window.start = (url, token, ch) => new Promise((resolve, reject) => {
    const c = new Centrifuge(url, { token });
    const sub = c.newSubscription(ch);
    sub.on('publication', (ctx) => window.seen.push({ data: ctx.data, user: ctx.info && ctx.info.user }));
    sub.on('subscribed', () => sub.publish({ from: 'browser' }).then(() => resolve(c.state), reject));
    sub.on('error', (e) => reject(new Error(JSON.stringify(e))));
    sub.subscribe();
    c.connect();
  });
</script>`;
    const files = createServer((req, res) => {
      if (req.url === '/centrifuge.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(readFileSync(browserBuild));
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(page);
      }
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => files.close(() => resolve())));
    const browser = await launchChromium();
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(String(e)));
    await tab.goto(`http://127.0.0.1:${(files.address() as AddressInfo).port}/`);
    const ch = channel();
    const node = client(ws, { token: await token({ sub: 'node' }) });
    const sub = node.newSubscription(ch);
    const seen = publications(sub);
    node.connect();
    sub.subscribe();
    await sub.ready(3_000);
    const state = await tab.evaluate(([url, jwt, c]) => (globalThis as any).start(url, jwt, c), [ws, await token({ sub: 'browser' }), ch] as const);
    expect(state).toBe('connected');
    await waitLength(seen, 1);
    expect(seen[0]).toMatchObject({ data: { from: 'browser' }, info: { user: 'browser' } });
    await sub.publish({ from: 'node' });
    await expect.poll(() => tab.evaluate(() => (globalThis as any).seen)).toEqual([
      { data: { from: 'browser' }, user: 'browser' },
      { data: { from: 'node' }, user: 'node' },
    ]);
    expect(errors).toEqual([]);
  });
});
