// A cheap load-generator client: one raw WebSocket (`ws`) per connection that
// speaks just enough of Engine.IO v4 / Socket.IO v5 for the benchmark:
//   server → client  0{...}       Engine.IO open        → client sends 40 (CONNECT to "/")
//                    40{...}      Socket.IO CONNECT ack → connected
//                    44{...}      CONNECT_ERROR         → connect fails
//                    2            Engine.IO ping        → client sends 3 (pong)
//                    43<id>[...]  ack of an event       → the emit's callback, with the first argument
//                    42[...]      event                 → counted (parsed only when a listener wants it)
//   client → server  42<id>["event",payload]            an event with an ack id
// It has the socket.io-client surface the harness uses (`emit(event, payload, ack)`,
// `on(event, fn)`, `disconnect()`, `connected`), so load.mjs drives either client.
// Much cheaper than socket.io-client (no Manager, no reconnection, no timers per
// socket, no packet objects): at 100,000 connections the load generator shares the
// two cores with the server and Redis, and every cycle it saves goes to them.
import WebSocket from 'ws';

const OPEN = 0x30; // '0'
const CLOSE = 0x31; // '1'
const PING = 0x32; // '2'
const MESSAGE = 0x34; // '4'

export class RawSocket {
  /** @param {string} url http://host:port of the Socket.IO server */
  constructor(url, { localAddress, timeoutMs = 30_000 } = {}) {
    this.connected = false;
    this.nextId = 0;
    /** Ack callbacks by id (acks come back in order on a socket, but the map does not rely on it). */
    this.acks = new Map();
    this.listeners = undefined;
    this.ready = new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        // Loopback only: a zero mask lets ws skip masking (a copy and an XOR per frame). Masking
        // protects proxies from crafted client data; the server accepts any mask.
        generateMask: (mask) => mask.fill(0),
        handshakeTimeout: timeoutMs,
        ...(localAddress ? { localAddress } : {}),
      });
      this.ws = ws;
      const fail = (err) => {
        if (this.connected) return;
        this.settle = undefined;
        ws.terminate();
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      this.settle = { resolve: () => resolve(this), fail };
      ws.on('message', (data) => this.onFrame(data));
      ws.on('error', fail);
      ws.on('close', () => {
        const was = this.connected;
        this.connected = false;
        if (!was) fail(new Error('closed before CONNECT'));
        // Requests in flight are not answered: their callbacks get a transport error, as socket.io-client's never fire.
        for (const cb of this.acks.values()) cb({ ok: false, error: { code: 'transport_closed' } });
        this.acks.clear();
      });
    });
  }

  onFrame(data) {
    const c = data[0];
    if (c === MESSAGE) {
      const t = data[1];
      if (t === 0x33 /* 3: ACK */) {
        let i = 2;
        let id = 0;
        for (let d = data[i]; d >= 0x30 && d <= 0x39; d = data[++i]) id = id * 10 + (d - 0x30);
        const cb = this.acks.get(id);
        if (!cb) return;
        this.acks.delete(id);
        cb(JSON.parse(data.toString('utf8', i))[0]);
      } else if (t === 0x32 /* 2: EVENT */) {
        if (!this.listeners) return;
        const [event, payload] = JSON.parse(data.toString('utf8', 2));
        for (const fn of this.listeners.get(event) ?? []) fn(payload);
      } else if (t === 0x30 /* 0: CONNECT ack */) {
        this.connected = true;
        this.settle?.resolve();
        this.settle = undefined;
      } else if (t === 0x34 /* 4: CONNECT_ERROR */) {
        this.settle?.fail(new Error(`connect_error ${data.toString('utf8', 2)}`));
      }
    } else if (c === PING) {
      this.ws.send('3');
    } else if (c === OPEN) {
      this.ws.send('40');
    } else if (c === CLOSE) {
      this.ws.close();
    }
  }

  /** Sends `event` with `payload`; `ack` gets the server's answer (the first ack argument). */
  emit(event, payload, ack) {
    if (!this.connected) {
      ack?.({ ok: false, error: { code: 'transport_closed' } });
      return;
    }
    if (ack) {
      const id = this.nextId++;
      this.acks.set(id, ack);
      this.ws.send(`42${id}${JSON.stringify([event, payload])}`);
    } else {
      this.ws.send(`42${JSON.stringify([event, payload])}`);
    }
  }

  /** Listens to a server event (decoded only when someone listens). */
  on(event, fn) {
    this.listeners ??= new Map();
    const list = this.listeners.get(event) ?? [];
    list.push(fn);
    this.listeners.set(event, list);
    return this;
  }

  disconnect() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send('41');
    this.ws.close();
  }

  close() {
    this.disconnect();
  }
}

/** Connects one raw socket; resolves once the server acked the namespace CONNECT. */
export function connectRaw(url, opts) {
  return new RawSocket(url, opts).ready;
}
