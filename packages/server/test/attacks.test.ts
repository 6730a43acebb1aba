import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.js';
import { connect, request, room, startServer, waitFor } from 'realtime-message-testing';

const start = (env: Record<string, string> = {}) => startServer({ DEMO_DIR: 'off', ...env });

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

describe('a socket that stops reading', () => {
  it('is disconnected once more than MAX_OUTBOUND_BYTES wait for it; the others keep getting messages and server memory stays bounded', async () => {
    const { WebSocket } = await import('ws');
    const { server, url } = await start({ MAX_OUTBOUND_BYTES: '262144', RATE_LIMIT_EVENTS_PER_SEC: '10000', RATE_LIMIT_BURST: '10000', PRESENCE_DISCONNECT_GRACE_MS: '0' });
    const r = room();
    // A raw Engine.IO/Socket.IO client, so that the test can stop reading its TCP socket.
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    onTestFinished(() => ws.terminate());
    const frames: string[] = [];
    ws.on('message', (d) => frames.push(String(d)));
    await waitFor(() => frames.some((f) => f.startsWith('0{')), { what: 'engine.io open' });
    ws.send('40');
    await waitFor(() => frames.some((f) => f.startsWith('40{')), { what: 'socket.io connect' });
    ws.send(`420${JSON.stringify(['presence:join', { roomId: r, userId: 'slow' }])}`);
    await waitFor(() => frames.some((f) => f.startsWith('430')), { what: 'join ack' });
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();

    const sender = await connect(url);
    const reader = await connect(url);
    expect((await request(sender, 'presence:join', { roomId: r, userId: 'sender' })).ok).toBe(true);
    expect((await request(reader, 'presence:join', { roomId: r, userId: 'reader' })).ok).toBe(true);
    let got = 0;
    reader.on('presence:message', () => got++);
    const leftSlow = new Promise<void>((resolve) => reader.on('presence:event', (e) => e.type === 'leave' && e.userId === 'slow' && resolve()));
    const data = { blob: 'x'.repeat(60_000) };
    const before = process.memoryUsage().rss;
    let sent = 0;
    while (sent < 400 && server.io.of('/').sockets.size === 3) {
      expect((await request(sender, 'presence:message', { event: 'chat:big', data })).ok).toBe(true);
      sent++;
    }
    await leftSlow;
    expect(server.io.of('/').sockets.size).toBe(2);
    // 400 × 60 KB = 24 MB would have queued for the slow socket; it was cut off well before.
    expect(sent).toBeLessThan(400);
    await waitFor(() => got === sent, { what: `the reader to get every message (${got}/${sent})` });
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
  });
});

describe('snapshot amplification', () => {
  it('a socket that keeps re-joining a big room is refused with rate_limited once it pulled its snapshot budget; other sockets are not affected', async () => {
    const { url } = await start({ SNAPSHOT_BYTES_PER_SEC: '100000', RATE_LIMIT_EVENTS_PER_SEC: '1000', RATE_LIMIT_BURST: '1000' });
    const r = room();
    const members = await Promise.all(Array.from({ length: 20 }, () => connect(url)));
    for (const [i, m] of members.entries()) {
      expect((await request(m, 'presence:join', { roomId: r, userId: `u${i}`, state: { bio: 'x'.repeat(15_000) } })).ok).toBe(true);
    }
    const greedy = await connect(url);
    const acks: Array<{ ok: boolean; error?: { code: string; message: string } }> = [];
    // ~300 KB per snapshot against 100 KB/s with a 400 KB burst: the third join at the latest is refused.
    for (let i = 0; i < 6; i++) acks.push(await request(greedy, 'presence:join', { roomId: r, userId: 'greedy' }));
    expect(acks[0]!.ok).toBe(true);
    const refused = acks.filter((a) => !a.ok);
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(refused[0]!.error).toEqual({ code: 'rate_limited', message: expect.stringMatching(/snapshot bytes.*retry in \d+ ms/) });
    // Another socket joining the same room still gets its snapshot at once.
    const other = await connect(url);
    const ack = await request(other, 'presence:join', { roomId: r, userId: 'other' });
    expect(ack.ok).toBe(true);
    expect(ack.snapshot.connections.length).toBe(22);
  });
});
