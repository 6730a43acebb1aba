import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, createRealtimeServer, loadConfig } from '../src/index.js';
import { connect, request, room } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

async function start(env: Record<string, string> = {}) {
  const server = createRealtimeServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', DEMO_DIR: 'off', ...env }));
  const port = await server.listen();
  onTestFinished(() => server.close());
  return { server, url: `http://127.0.0.1:${port}` };
}

/** An Engine.IO long-polling handshake; resolves with the session id. */
async function pollingHandshake(url: string, headers: Record<string, string> = {}): Promise<{ status: number; sid?: string }> {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers });
  const body = await res.text();
  const m = /"sid":"([^"]+)"/.exec(body);
  return { status: res.status, ...(m ? { sid: m[1]! } : {}) };
}

describe('cheap attacks on the standalone server', () => {
  it('one long-polling POST full of CONNECT packets makes at most one socket; ten of them leave the server healthy', async () => {
    const { server, url } = await start();
    const packets = 5_000;
    const body = Array.from({ length: packets }, () => '40').join('\x1e');
    for (let i = 0; i < 10; i++) {
      const { sid } = await pollingHandshake(url);
      expect(sid).toBeDefined();
      await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } }).then((r) => r.text());
    }
    // Let every queued connect that slipped through run its middleware and connect.
    await new Promise((r) => setTimeout(r, 200));
    expect(server.io.of('/').sockets.size).toBeLessThanOrEqual(10);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    // A normal client still works.
    const s = await connect(url);
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
  });

  it('the same with a valid token repeated in JWT mode', async () => {
    const secret = 's'.repeat(40);
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('ada').setExpirationTime('1h').sign(new TextEncoder().encode(secret));
    const { server, url } = await start({ AUTH_JWT_SECRET: secret });
    const { sid } = await pollingHandshake(url);
    const body = Array.from({ length: 1_000 }, () => `40${JSON.stringify({ token })}`).join('\x1e');
    await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 200));
    expect(server.io.of('/').sockets.size).toBeLessThanOrEqual(1);
  });

  it('caps open connections per client address (MAX_CONNECTIONS_PER_ADDRESS) and frees the slot when one closes', async () => {
    const { url } = await start({ MAX_CONNECTIONS_PER_ADDRESS: '3' });
    const sockets = await Promise.all([1, 2, 3].map(() => connect(url)));
    await expect(connect(url)).rejects.toThrow();
    expect((await pollingHandshake(url)).status).toBe(403);
    sockets[0]!.disconnect();
    await waitFor(async () => (await pollingHandshake(url)).status === 200, { what: 'a free slot after a disconnect' });
  });

  it('checks Origin on every request of a session, not only on its handshake', async () => {
    const { url } = await start({ ALLOWED_ORIGINS: 'https://app.example.com' });
    const good = { origin: 'https://app.example.com' };
    const { status, sid } = await pollingHandshake(url, good);
    expect(status).toBe(200);
    expect((await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40', headers: { origin: 'https://evil.example.com' } })).status).toBe(400);
    expect((await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40', headers: good })).status).toBe(200);
  });

  it('a join with a 200 kB state gets payload_too_large naming the limit; the socket stays connected', async () => {
    const { url } = await start();
    const s = await connect(url);
    const ack = await request(s, 'presence:join', { roomId: room(), userId: 'ada', state: { blob: 'x'.repeat(200_000) } });
    expect(ack).toEqual({ ok: false, error: { code: 'payload_too_large', message: expect.stringContaining('16384') } });
    expect(s.connected).toBe(true);
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
  });

  it('a frame above MAX_FRAME_BYTES closes the connection', async () => {
    const { url } = await start({ MAX_FRAME_BYTES: '70000' });
    const s = await connect(url);
    const closed = new Promise<string>((resolve) => s.once('disconnect', (reason) => resolve(reason)));
    s.emit('presence:join', { roomId: room(), userId: 'ada', state: { blob: 'x'.repeat(100_000) } }, () => {});
    expect(await closed).toBe('transport close');
  });
});

describe('configuration of lists and URLs', () => {
  it.each([
    ['example.com'],
    ['https://app.example.com/path'],
    ['ftp://files.example.com'],
    ['https://ok.example.com,localhost:5173'],
  ])('ALLOWED_ORIGINS=%s is refused naming the bad entry', (value) => {
    expect(() => loadConfig({ ALLOWED_ORIGINS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ALLOWED_ORIGINS: value })).toThrow('ALLOWED_ORIGINS entries must be origins');
  });

  it('accepts origins with and without a port or trailing slash', () => {
    expect(loadConfig({ ALLOWED_ORIGINS: 'https://app.example.com/, http://localhost:5173' }).allowedOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);
  });

  it('MAX_FRAME_BYTES must leave room for a message at its limit', () => {
    expect(() => loadConfig({ MAX_FRAME_BYTES: '8192', MAX_MESSAGE_BYTES: '65536' })).toThrow('MAX_FRAME_BYTES must be at least');
  });
});
