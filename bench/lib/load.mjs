// Real socket.io-client load: connections, joins, heartbeats (open or closed loop).
import { io } from 'socket.io-client';
import { connectRaw } from './raw-client.mjs';
import { countError, histogram, recordSince } from './stats.mjs';

/**
 * Opens `n` WebSocket connections, `concurrency` at a time, spreading over
 * local source addresses. `client`: `sio` (socket.io-client, the default) or
 * `raw` (bench/lib/raw-client.mjs: a bare WebSocket speaking the Socket.IO
 * packet format, much cheaper for the load generator). A connection attempt that fails (on an overloaded
 * machine a handshake can time out) is retried up to 5 times with a growing
 * delay; `sockets.retries` counts the retries.
 */
export async function openSockets(url, n, { localAddresses = [], concurrency = Number(process.env.CONNECT_CONCURRENCY ?? 200), client = 'sio' } = {}) {
  const sockets = new Array(n);
  sockets.retries = 0;
  let next = 0;
  const connectOne = (i) =>
    new Promise((resolve, reject) => {
      const localAddress = localAddresses.length ? localAddresses[i % localAddresses.length] : undefined;
      if (client === 'raw') return connectRaw(url, { localAddress }).then(resolve, reject);
      const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 30_000, ...(localAddress ? { localAddress } : {}) });
      s.once('connect', () => resolve(s));
      s.once('connect_error', (err) => {
        s.close();
        reject(err);
      });
    });
  async function worker() {
    while (next < n) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        try {
          sockets[i] = await connectOne(i);
          break;
        } catch (err) {
          if (attempt >= 4) throw err;
          sockets.retries++;
          await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return sockets;
}

export function closeSockets(sockets) {
  for (const s of sockets) s?.disconnect();
}

export function ack(socket, event, payload) {
  return new Promise((resolve) => socket.emit(event, payload, resolve));
}

/**
 * Joins socket i to room floor(i / usersPerRoom) (prefixed) as user
 * `${userPrefix}user-${i}`; returns the acks (`acks.retries`: joins retried).
 * A join refused with `unavailable` or `rate_limited` (an overloaded server or
 * storage) is retried up to 5 times with a growing delay, as the error asks.
 */
export async function joinAll(sockets, { usersPerRoom, roomPrefix, userPrefix = '', concurrency = 200 }) {
  const acks = new Array(sockets.length);
  acks.retries = 0;
  let next = 0;
  async function worker() {
    while (next < sockets.length) {
      const i = next++;
      const roomId = `${roomPrefix}${Math.floor(i / usersPerRoom)}`;
      const userId = `${userPrefix}user-${i}`;
      let a;
      for (let attempt = 0; ; attempt++) {
        a = await ack(sockets[i], 'presence:join', { roomId, userId, state: { n: 0 } });
        if (a?.ok || attempt >= 5 || !['unavailable', 'rate_limited'].includes(a?.error?.code)) break;
        acks.retries++;
        await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
      }
      if (!a?.ok) throw new Error(`join failed: ${JSON.stringify(a)}`);
      sockets[i].roomId = roomId;
      sockets[i].userId = userId;
      acks[i] = a;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, sockets.length) }, worker));
  return acks;
}

/** Counts presence:event deliveries on every socket. */
export function countEvents(sockets) {
  const counter = { events: 0 };
  for (const s of sockets) s.on('presence:event', () => counter.events++);
  return counter;
}

function payloadFor(socket, i, patchRatio) {
  // Deterministic spread of patches: heartbeat i patches when its fraction crosses a step.
  const patch = patchRatio > 0 && Math.floor((i + 1) * patchRatio) > Math.floor(i * patchRatio);
  return patch ? { roomId: socket.roomId, patchState: { n: i } } : { roomId: socket.roomId };
}

function result(h, errors, acked, sent, seconds) {
  return { h, errors, acked, sent, seconds, acksPerSec: Math.round(acked / seconds) };
}

/**
 * Closed loop: every socket sends its next heartbeat when the previous one
 * was acked. Measures the maximum throughput.
 */
export async function closedLoop(sockets, { durationMs, patchRatio = 0, progress }) {
  const h = histogram();
  const errors = {};
  let acked = 0;
  let sent = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise((resolve) => {
          const send = () => {
            if (performance.now() >= end) return resolve();
            const t0 = performance.now();
            const i = sent++;
            s.emit('presence:heartbeat', payloadFor(s, i, patchRatio), (a) => {
              recordSince(h, t0);
              if (a?.ok) acked++;
              else countError(errors, a, 'unknown');
              send();
            });
          };
          send();
        }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  progress?.done();
  return result(h, errors, acked, sent, seconds);
}

/**
 * Open loop at a fixed offered rate: heartbeats are sent on schedule whether
 * or not earlier ones were answered, and latency counts from the *intended*
 * send time, so a stalled server cannot hide its delay (no coordinated omission).
 */
export async function openLoop(sockets, { rate, durationMs, patchRatio = 0, drainMs = 5_000, progress }) {
  const h = histogram();
  /** The acks of heartbeats that carried a patch, apart (they also go into `h`). */
  const hPatched = histogram();
  const errors = {};
  let acked = 0;
  let sent = 0;
  const total = Math.round((rate * durationMs) / 1000);
  const start = performance.now();
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * rate) / 1000));
      while (sent < due) {
        const i = sent++;
        const intended = start + (i * 1000) / rate;
        let s = sockets[i % sockets.length];
        // A socket that is leaving and rejoining (churnLoop) is not in its room: its neighbour beats instead.
        if (s.away) s = sockets[(i + 1) % sockets.length];
        const payload = payloadFor(s, i, patchRatio);
        s.emit('presence:heartbeat', payload, (a) => {
          recordSince(h, intended);
          if (payload.patchState) recordSince(hPatched, intended);
          if (a?.ok) acked++;
          else countError(errors, a, 'unknown');
        });
      }
      progress?.update({ sent, acked, h });
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const drainEnd = performance.now() + drainMs;
  while (acked + Object.values(errors).reduce((a, b) => a + b, 0) < sent && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 10));
  const seconds = (performance.now() - start) / 1000;
  const answered = acked + Object.values(errors).reduce((a, b) => a + b, 0);
  if (answered < sent) errors.no_ack = sent - answered;
  progress?.done();
  return { ...result(h, errors, acked, sent, Math.max(seconds - drainMs / 1000 * 0, durationMs / 1000)), hPatched };
}

/**
 * Open loop over a pool of sockets: starts `rate × durationMs` steps
 * (`step(socket, i, release)`) at `rate` per second, each on an idle socket
 * of the pool; a step calls `release()` when its socket is free again.
 * Resolves when every step was started and released its socket; returns how
 * many were started and the seconds it took. A server slower than `rate`
 * (a saturating CHURN_PER_SEC) takes longer than `durationMs` for the same
 * number of steps, so two servers' CPU per step compare over the same work,
 * warm-up included.
 */
export async function poolLoop(pool, { rate, durationMs, step, progress }) {
  const idle = [...pool];
  const total = Math.round((rate * durationMs) / 1000);
  const start = performance.now();
  let n = 0;
  let inflight = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
      while (n < due && idle.length) {
        const s = idle.pop();
        inflight++;
        step(s, n++, () => {
          inflight--;
          idle.push(s);
        });
      }
      progress?.(n);
      if (n < total || inflight > 0) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  return { started: n, seconds: (performance.now() - start) / 1000 };
}

/**
 * Members leaving and rejoining their room while the heartbeats go on:
 * `perMinute` sockets a minute, spread evenly, each sends `presence:leave`
 * and, once acked, `presence:join` again (same room, same user). A socket
 * is marked `away` in between so that the open loop does not heartbeat it.
 * Returns `stop()`, which resolves with the join and leave ack histograms
 * once the cycles in flight are done.
 */
export function churnLoop(sockets, { perMinute, offset = 0 }) {
  const joinH = histogram();
  const leaveH = histogram();
  const errors = {};
  let cycles = 0;
  let inflight = 0;
  let k = offset;
  const timer = perMinute > 0 ? setInterval(() => {
    const s = sockets[k++ % sockets.length];
    if (s.away) return;
    s.away = true;
    inflight++;
    cycles++;
    const t0 = performance.now();
    s.emit('presence:leave', { roomId: s.roomId }, (l) => {
      recordSince(leaveH, t0);
      if (!l?.ok) countError(errors, l, 'leave');
      const t1 = performance.now();
      s.emit('presence:join', { roomId: s.roomId, userId: s.userId, state: { n: 0 } }, (j) => {
        recordSince(joinH, t1);
        if (!j?.ok) countError(errors, j, 'join');
        s.away = false;
        inflight--;
      });
    });
  }, 60_000 / perMinute) : undefined;
  return {
    async stop() {
      clearInterval(timer);
      for (let i = 0; i < 500 && inflight > 0; i++) await new Promise((r) => setTimeout(r, 10));
      return { cycles, errors, join: joinH, leave: leaveH };
    },
  };
}
