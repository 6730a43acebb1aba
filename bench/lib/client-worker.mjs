// A client process for large runs (one process may hold at most ~20,000 sockets here).
// Messages from the parent: { cmd: 'connect', url, from, count, usersPerRoom, roomPrefix, localAddresses, client, keepAliveMs }
// (client: 'sio' = socket.io-client, 'raw' = bench/lib/raw-client.mjs)
// then { cmd: 'beat', intervalMs, durationMs } -> { histogram, acked, errors }, then { cmd: 'close' }.
import { closeSockets, joinAll, openSockets } from './load.mjs';
import { countError, histogram, recordSince } from './stats.mjs';

let sockets = [];
let keepAlive;

/**
 * Unmeasured heartbeats from the moment each socket joined until the measured
 * phase starts (every socket once per interval), as real clients do: a long
 * connect phase (minutes at 100k on two cores) must not let the first
 * connections expire while the others still join.
 */
function startKeepAlive(intervalMs) {
  let i = 0;
  const perTick = Math.max(1, Math.ceil(sockets.length / (intervalMs / 100)));
  keepAlive = setInterval(() => {
    for (let k = 0; k < perTick; k++) {
      const s = sockets[i++ % sockets.length];
      if (s.roomId !== undefined) s.emit('presence:heartbeat', { roomId: s.roomId }, () => {});
    }
  }, 100);
}

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'connect') {
      sockets = await openSockets(msg.url, msg.count, { localAddresses: msg.localAddresses, client: msg.client ?? 'sio', concurrency: msg.concurrency ?? 200 });
      startKeepAlive(msg.keepAliveMs ?? 15_000);
      // Rooms are per worker (the prefix names the worker), usersPerRoom sockets each.
      // Every connection is a user of its own (the user ids name the worker too).
      const joined = await joinAll(sockets, { usersPerRoom: msg.usersPerRoom, roomPrefix: `${msg.roomPrefix}w${msg.from}-`, userPrefix: `w${msg.from}-`, concurrency: msg.concurrency ?? 200 });
      process.send({ ok: true, connected: sockets.length, retries: sockets.retries, joinRetries: joined.retries });
    } else if (msg.cmd === 'beat') {
      clearInterval(keepAlive);
      // Every socket heartbeats once per interval, phases spread evenly: an open loop of count/interval per second.
      const h = histogram();
      const errors = {};
      let acked = 0;
      const n = sockets.length;
      const start = performance.now();
      const rate = (n * 1000) / msg.intervalMs;
      const total = Math.floor((rate * msg.durationMs) / 1000);
      let sent = 0;
      await new Promise((resolve) => {
        const tick = () => {
          const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
          while (sent < due) {
            const i = sent++;
            const intended = start + (i * 1000) / rate;
            const s = sockets[i % n];
            s.emit('presence:heartbeat', { roomId: s.roomId }, (a) => {
              recordSince(h, intended);
              if (a?.ok) acked++;
              else countError(errors, a, 'unknown');
            });
          }
          // Wake up when the next one is due (timers have 1 ms resolution): a coarser tick would
          // count the generator's own lateness as server latency (latency runs from the intended time).
          if (sent < total) setTimeout(tick, Math.max(1, start + (sent * 1000) / rate - performance.now()));
          else resolve();
        };
        tick();
      });
      const drainEnd = performance.now() + 5_000;
      while (acked + Object.values(errors).reduce((a, b) => a + b, 0) < sent && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 20));
      const answered = acked + Object.values(errors).reduce((a, b) => a + b, 0);
      if (answered < sent) errors.no_ack = sent - answered;
      process.send({ ok: true, histogram: h.encodeIntoCompressedBase64(), acked, sent, errors });
    } else if (msg.cmd === 'close') {
      clearInterval(keepAlive);
      closeSockets(sockets);
      process.send({ ok: true });
      setTimeout(() => process.exit(0), 100);
    }
  } catch (err) {
    process.send({ ok: false, error: String(err?.stack ?? err) });
  }
});
process.send({ ready: true });
