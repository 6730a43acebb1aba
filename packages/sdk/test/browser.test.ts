import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { browserSkipReason, launchChromium, room } from 'realtime-message-testing';
import { client, startServer } from './server.js';

const bundle = fileURLToPath(new URL('../dist/browser/realtime-message-sdk.js', import.meta.url));

if (browserSkipReason) console.warn(`skipping the browser test: ${browserSkipReason}`);

describe.skipIf(browserSkipReason !== undefined)('browser bundle in headless Chromium', () => {
  it('joins a room from a plain <script type="module"> and sees another member', async () => {
    const s = await startServer();
    const page = `<!doctype html><meta charset="utf-8"><title>sdk</title>
<script type="module">
  import { RealtimeClient } from '/realtime-message-sdk.js';
  window.join = async (url, roomId) => {
    const client = new RealtimeClient({ url });
    const channel = await client.joinRoom(roomId, { userId: 'browser', state: { ua: 'chromium' } });
    window.channel = channel;
    return channel.members().map((m) => m.userId);
  };
</script>`;
    const files = createServer((req, res) => {
      if (req.url === '/realtime-message-sdk.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(readFileSync(bundle));
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
    const r = room();
    const node = await client(s.url).joinRoom(r, { userId: 'node' });
    const first = await tab.evaluate(([url, roomId]) => (window as any).join(url, roomId), [s.url, r] as const);
    expect(first).toEqual(['browser', 'node']);
    await expect.poll(() => node.members().map((m) => m.userId)).toEqual(['browser', 'node']);
    expect(node.members()[0]!.connections[0]!.state).toEqual({ ua: 'chromium' });
    await node.updateState({ typing: true });
    await expect.poll(() => tab.evaluate(() => (window as any).channel.members().find((m: any) => m.userId === 'node').connections[0].state.typing)).toBe(true);
    expect(errors).toEqual([]);
  });
});
