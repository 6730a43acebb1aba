import { describe, expect, it } from 'vitest';
import { connect, listen, request, room, startGateway, testEngine, waitFor } from 'realtime-message-testing';

// Values that are not valid ids: wrong types, limits, braces, every C0 control character, C1, DEL, lone surrogates.
const badIds: unknown[] = [
  '', 'x'.repeat(129), 'x'.repeat(100_000), 'a{b', 'a}b', '{room:x}', '}', '{',
  ...Array.from({ length: 32 }, (_, i) => `a${String.fromCharCode(i)}b`),
  'a\u007f', 'a\u0085', 'a\u009f', 'a\ud800', '\udc00b',
  0, 1, -1, 1.5, NaN, true, false, null, [], ['a'], {}, { a: 1 }, Buffer.from('room'),
];

function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

const badStates: unknown[] = [
  'str', 1, 0, true, [], [1], null, Buffer.from('x'),
  { nested: deep(20) }, { nested: deep(1_000) },
  JSON.parse('{"__proto__":{"polluted":true}}'), JSON.parse('{"a":{"__proto__":{"polluted":true}}}'),
  { constructor: { prototype: { polluted: true } } }, { prototype: 1 },
  { big: 'x'.repeat(20_000) }, { '': 1 }, { ['k'.repeat(200)]: 1 },
  Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])),
  { bin: Buffer.from('x') }, { s: 'a\ud800' },
];

type Case = [label: string, payload: unknown];

function cases(field: string, values: unknown[], base: Record<string, unknown>): Case[] {
  return values.map((v, i) => [`${field} #${i}`, { ...base, [field]: v }]);
}

const topLevel: Case[] = [['string', 'x'], ['number', 1], ['array', []], ['true', true], ['buffer', Buffer.from('{}')]];

describe('hostile input', () => {
  it.each([
    ['presence:join', () => [...cases('roomId', badIds, { userId: 'u' }), ...cases('userId', badIds, { roomId: 'r' }), ...cases('state', badStates, { roomId: 'r', userId: 'u' }), ...cases('connId', badIds.filter((v) => v !== null && v !== undefined), { roomId: 'r', userId: 'u' }), ['undefined', undefined], ['null', null], ...topLevel] as Case[]],
    ['presence:heartbeat', () => [...cases('roomId', badIds.filter((v) => v !== null), {}), ...cases('patchState', badStates.filter((v) => v !== null), {}), ...cases('epoch', [0, -1, 1.5, '1', true, [], {}, 2 ** 53, NaN, Infinity, null, Buffer.from('1')], {}), ...topLevel] as Case[]],
    ['presence:leave', () => [...cases('roomId', badIds.filter((v) => v !== null), {}), ...topLevel] as Case[]],
    ['presence:message', () => [...cases('event', ['', ' ', 'a b', '!x', 'x'.repeat(65), 'é', 'a\nb', null, 1, {}, [], true, Buffer.from('e')], { data: 1 }), ...cases('roomId', badIds.filter((v) => v !== null), { event: 'chat:message' }), ...cases('data', [deep(30), { big: 'x'.repeat(70_000) }, JSON.parse('{"__proto__":{"x":1}}'), { b: Buffer.from('x') }, 'a\ud800'], { event: 'chat:message' }), ['undefined', undefined], ...topLevel] as Case[]],
  ])('%s: every malformed payload gets a coded error; the connection stays usable and stored state is unchanged', async (event, makeCases) => {
    const table = makeCases();
    expect(table.length).toBeGreaterThanOrEqual(50);
    const g = await startGateway({ rateLimit: false });
    const r = room();
    const s = await connect(g.url);
    const l = listen(s);
    const joined = await request(s, 'presence:join', { roomId: r, userId: 'ada', state: { keep: 'me' } });
    expect(joined.ok).toBe(true);
    const before = await g.runtime.service.snapshot(r);
    for (const [label, payload] of table) {
      const ack = payload === undefined ? await request(s, event) : await request(s, event, payload);
      expect(ack?.ok, `${event} ${label}: ${JSON.stringify(ack)}`).toBe(false);
      expect(['invalid_payload', 'payload_too_large'], `${event} ${label}`).toContain(ack.error.code);
      expect(typeof ack.error.message).toBe('string');
      expect(ack.error.message.length).toBeGreaterThan(5);
    }
    expect(s.connected).toBe(true);
    expect(await request(s, 'presence:heartbeat', { roomId: r })).toEqual({ ok: true, epoch: 1 });
    expect(await g.runtime.service.snapshot(r)).toEqual({ ...before, connections: before.connections.map((c) => ({ ...c, lastSeen: expect.any(Number) })) });
    expect(l.events.filter((e) => e.seq > 1)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('x');
  });

  it('raw frames: extreme nesting, garbage and non-JSON packets never crash the server', async () => {
    const { WebSocket } = await import('ws');
    const g = await startGateway({ rateLimit: false, serverOptions: { maxHttpBufferSize: 2_000_000, transports: ['websocket'] } });
    const ws = new WebSocket(`${g.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const frames: string[] = [];
    ws.on('message', (d) => frames.push(String(d)));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send('40');
    await waitFor(() => frames.some((f) => f.startsWith('40')), { what: 'namespace connect' });
    const deepJson = '['.repeat(100_000) + ']'.repeat(100_000);
    ws.send(`421["presence:join",{"roomId":"r","userId":"u","state":{"a":${deepJson}}}]`);
    await waitFor(() => frames.some((f) => f.startsWith('431[')), { what: 'ack of the deep join' });
    expect(frames.find((f) => f.startsWith('431['))).toContain('invalid_payload');
    for (const garbage of ['42', '42[', '42{"a":1}', '4299999999999999999999["x"]', '42["presence:join"', '9', '']) ws.send(garbage);
    // The server may drop this socket for garbage; the process and other sockets live on.
    const s = await connect(g.url);
    expect((await request(s, 'presence:join', { roomId: room(), userId: 'ada' })).ok).toBe(true);
    ws.close();
  });

  it('an oversized frame closes only that socket', async () => {
    const g = await startGateway({ rateLimit: false, serverOptions: { maxHttpBufferSize: 10_000, transports: ['websocket'] } });
    const r = room();
    const big = await connect(g.url);
    const other = await connect(g.url);
    expect((await request(other, 'presence:join', { roomId: r, userId: 'bob' })).ok).toBe(true);
    const closed = new Promise<string>((resolve) => big.once('disconnect', (reason) => resolve(reason)));
    (big as any).emit('presence:join', { roomId: r, userId: 'ada', state: { x: 'y'.repeat(50_000) } });
    expect(await closed).toMatch(/transport close|transport error/);
    expect(await request(other, 'presence:heartbeat')).toEqual({ ok: true, epoch: 1 });
  });

  it('a flood is rate limited, and sustained abuse is disconnected with a reason', async () => {
    const g = await startGateway({ rateLimit: { eventsPerSecond: 5, burst: 10, disconnectAfter: 40 } });
    const s = await connect(g.url);
    await request(s, 'presence:join', { roomId: room(), userId: 'ada' });
    const acks = await Promise.all(Array.from({ length: 20 }, () => request(s, 'presence:heartbeat')));
    const limited = acks.filter((a) => a.error?.code === 'rate_limited');
    expect(limited.length).toBeGreaterThanOrEqual(9);
    expect(acks.filter((a) => a.ok).length).toBeGreaterThanOrEqual(9);
    expect(limited[0].error.message).toContain('per second');
    const notices: unknown[] = [];
    s.on('presence:error', (n) => notices.push(n));
    const gone = new Promise<string>((resolve) => s.once('disconnect', resolve));
    for (let i = 0; i < 60 && s.connected; i++) s.emit('presence:heartbeat', {}, () => {});
    expect(await gone).toBe('io server disconnect');
    expect(notices).toEqual([{ code: 'rate_limited', message: expect.stringContaining('flood') }]);
    // Others are unaffected.
    const t = await connect(g.url);
    expect((await request(t, 'presence:join', { roomId: room(), userId: 'bob' })).ok).toBe(true);
  });

  it('a handler failure inside the engine becomes internal, never a crash', async () => {
    const engine = testEngine();
    const g = await startGateway({ engine, rateLimit: false });
    const s = await connect(g.url);
    const r = room();
    await request(s, 'presence:join', { roomId: r, userId: 'ada' });
    engine.failNext('heartbeat', new Error('boom'));
    expect(await request(s, 'presence:heartbeat')).toEqual({ ok: false, error: { code: 'internal', message: expect.any(String) } });
    expect(await request(s, 'presence:heartbeat')).toEqual({ ok: true, epoch: 1 });
    await waitFor(() => s.connected);
  });
});
