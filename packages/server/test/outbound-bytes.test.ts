import { describe, expect, it } from 'vitest';
import { outboundBytes } from '../src/transports/socketio/handlers.js';
import type { SocketSession } from '../src/transports/socketio/session.js';

/** A session whose Engine.IO connection has this write buffer and this many bytes held by the TCP socket. */
function sessionWith(conn: { writeBuffer: Array<{ data?: unknown }>; request: { socket: { writableLength: number } } }): SocketSession {
  return { socket: { conn } } as unknown as SocketSession;
}

const packet = (n: number) => ({ data: 'x'.repeat(n) });

describe('outboundBytes (the slow-consumer check)', () => {
  it('counts the TCP socket alone below 8 buffered packets, then every buffered packet, growing and replaced buffers alike', () => {
    const conn: Parameters<typeof sessionWith>[0] = { writeBuffer: [packet(10), packet(10)], request: { socket: { writableLength: 5 } } };
    const s = sessionWith(conn);
    expect(outboundBytes(s)).toBe(5);
    for (let i = 0; i < 6; i++) conn.writeBuffer.push(packet(100));
    expect(outboundBytes(s)).toBe(5 + 20 + 600);
    // Appended since the last call: only these are added to the remembered sum.
    conn.writeBuffer.push(packet(1_000), { data: new Uint8Array(50) }, { data: undefined });
    conn.request.socket.writableLength = 7;
    expect(outboundBytes(s)).toBe(7 + 20 + 600 + 1_000 + 50);
    expect(outboundBytes(s)).toBe(7 + 20 + 600 + 1_000 + 50);
    // Engine.IO flushed: a new array, summed from scratch.
    conn.writeBuffer = Array.from({ length: 9 }, () => packet(1));
    expect(outboundBytes(s)).toBe(7 + 9);
    // A buffer that shrank in place (not what Engine.IO does, but never a wrong sum): summed again.
    conn.writeBuffer.splice(0, 0, packet(3));
    conn.writeBuffer.length = 8;
    expect(outboundBytes(s)).toBe(7 + 3 + 7);
  });
});
