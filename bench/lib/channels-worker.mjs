// A subscriber process of SCENARIO=channels (bench/lib/channels-scenario.mjs): holds a share of
// the subscriber sockets, checks every publication by offset (gaps, duplicates) and records the
// publish→deliver latency from the timestamp in its data (absolute ms: performance.timeOrigin +
// performance.now() of the publisher, the same clock on one machine).
//
// Messages from the parent (each answered with { ok, ... } or { ok: false, error }):
//   { cmd: 'connect', urls, from, count, channels, channelNames }
//       subscriber g = from + k follows channel g % channels on node floor(g / channels) % urls.length
//   { cmd: 'phase', name }       new latency histograms from now on
//   { cmd: 'stats' }             the current phase: histograms, deliveries, time of the last one; totals
//   { cmd: 'check', tops }       tops[c] = the channel's last acked offset: counts what never arrived
//   { cmd: 'drop' }              disconnect every socket, keeping each subscriber's position
//   { cmd: 'recover' }           all reconnect at once and subscribe with `since` their position
//   { cmd: 'close' }
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { io } from 'socket.io-client';
import { histogram, recordSince } from './stats.mjs';

const now = () => performance.timeOrigin + performance.now();
let subs = [];
let urls = [];
let phase;
let debugLeft = 10;

/** This worker's event-loop delay per phase (a late subscriber process delays what it records). */
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();

function newPhase(name) {
  loop.reset();
  phase = { name, same: histogram(), cross: histogram(), deliveries: 0, lastAt: 0, startedAt: now(), slow: {} };
}
newPhase('setup');

/** Applies one publication to a subscriber's position: in order, a gap (offsets skipped) or a duplicate. */
function apply(sub, offset, epoch) {
  if (epoch !== undefined && sub.epoch !== undefined && epoch !== sub.epoch) {
    sub.epochChanges++;
    sub.epoch = epoch;
    sub.last = offset;
    return;
  }
  if (process.env.CHANNELS_DEBUG && offset !== sub.last + 1 && debugLeft-- > 0) process.stderr.write(`[channels-worker] subscriber ${sub.g} ${sub.channel} phase ${phase.name}: offset ${offset} after ${sub.last}${new Error().stack.split('\n').slice(2, 4).join(' ')}\n`);
  if (offset === sub.last + 1) sub.last = offset;
  else if (offset > sub.last + 1) {
    sub.gaps += offset - sub.last - 1;
    sub.last = offset;
  } else sub.dups++;
  sub.received++;
}

function onPublication(sub, p) {
  if (p?.channel !== sub.channel) {
    sub.foreign++;
    return;
  }
  // Ours carries the stream offset; the baselines have none: their publisher numbers each channel's publications (data.s).
  apply(sub, p.offset ?? p.data?.s, p.epoch);
  const t = p.data?.t;
  if (typeof t === 'number') {
    const us = Math.max(1, Math.round((now() - t) * 1000));
    // Where in the phase the slow deliveries (over 20 ms) were, per 100 ms of publish time: spikes or a steady tail.
    if (us > 20_000) {
      const b = Math.floor((t - phase.startedAt) / 100);
      phase.slow[b] = (phase.slow[b] ?? 0) + 1;
    }
    (p.data.n === sub.node ? phase.same : phase.cross).recordValue(us);
  }
  phase.deliveries++;
  phase.lastAt = now();
}

function connectOne(url) {
  return new Promise((resolve, reject) => {
    const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 30_000 });
    s.once('connect', () => resolve(s));
    s.once('connect_error', (err) => {
      s.close();
      reject(err);
    });
  });
}

async function connectRetrying(url, counters) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectOne(url);
    } catch (err) {
      if (attempt >= 4) throw err;
      counters.retries++;
      await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
    }
  }
}

/**
 * Emits with an ack and runs `onAck` in the ack callback itself: a publication that the server sent
 * right after the ack can arrive in the same network read, and its event fires before any promise
 * continuation would run; so the recovered publications must be applied synchronously.
 */
function request(socket, event, payload, onAck, timeoutMs = 30_000) {
  return new Promise((resolve) => socket.timeout(timeoutMs).emit(event, payload, (err, a) => resolve(onAck(err ? { ok: false, error: { code: 'ack_timeout' } } : a))));
}

/** Connects (or reconnects) one subscriber and subscribes, recovering from its position when `recover`. */
async function open(sub, counters, recover) {
  const s = await connectRetrying(urls[sub.node], counters);
  sub.socket = s;
  s.on('channel:publication', (p) => onPublication(sub, p));
  s.on('channel:resubscribe', () => sub.resubscribeNotices++);
  const payload = recover ? { channel: sub.channel, since: { offset: sub.last, epoch: sub.epoch } } : { channel: sub.channel };
  return request(s, 'channel:subscribe', payload, (a) => {
    if (!a?.ok) {
      const code = a?.error?.code ?? 'unknown';
      counters.errors[code] = (counters.errors[code] ?? 0) + 1;
      return a;
    }
    if (!recover) {
      sub.last = a.offset ?? 0;
      sub.epoch = a.epoch || undefined;
      return a;
    }
    if (a.recovered) {
      counters.recovered++;
      for (const p of a.publications) apply(sub, p.offset, a.epoch);
      counters.recoveredPublications += a.publications.length;
      // The ack's offset is the position after them: a shortfall is a gap.
      if (a.offset > sub.last) {
        sub.gaps += a.offset - sub.last;
        sub.last = a.offset;
      }
    } else {
      counters.notRecovered++;
      sub.last = a.offset;
      sub.epoch = a.epoch;
    }
    return a;
  });
}

function totals() {
  const t = { subscribers: subs.length, received: 0, gaps: 0, dups: 0, epochChanges: 0, foreign: 0, resubscribeNotices: 0, subsWithGaps: 0, subsWithDups: 0 };
  for (const s of subs) {
    t.received += s.received;
    t.gaps += s.gaps;
    t.dups += s.dups;
    t.epochChanges += s.epochChanges;
    t.foreign += s.foreign;
    t.resubscribeNotices += s.resubscribeNotices;
    if (s.gaps > 0) t.subsWithGaps++;
    if (s.dups > 0) t.subsWithDups++;
  }
  return t;
}

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'connect') {
      urls = msg.urls;
      subs = Array.from({ length: msg.count }, (_, k) => {
        const g = msg.from + k;
        const c = g % msg.channels;
        return { g, c, channel: msg.channelNames[c], node: Math.floor(g / msg.channels) % urls.length, last: 0, epoch: undefined, received: 0, gaps: 0, dups: 0, epochChanges: 0, foreign: 0, resubscribeNotices: 0, socket: undefined };
      });
      const counters = { retries: 0, errors: {} };
      // 100 at a time: a steady connect phase, not the storm (that is `recover`).
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(100, subs.length) }, async () => {
        while (next < subs.length) await open(subs[next++], counters, false);
      }));
      process.send({ ok: true, connected: subs.length, ...counters });
    } else if (msg.cmd === 'phase') {
      newPhase(msg.name);
      process.send({ ok: true });
    } else if (msg.cmd === 'stats') {
      const ms = (ns) => Math.round(ns / 1e4) / 100;
      const l = { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) };
      process.send({ ok: true, loop: l, name: phase.name, same: phase.same.encodeIntoCompressedBase64(), cross: phase.cross.encodeIntoCompressedBase64(), deliveries: phase.deliveries, lastAt: phase.lastAt, startedAt: phase.startedAt, slow: phase.slow, totals: totals() });
    } else if (msg.cmd === 'check') {
      let missing = 0;
      let subsMissing = 0;
      let beyond = 0;
      for (const s of subs) {
        const top = msg.tops[s.c] ?? 0;
        if (s.last < top) {
          missing += top - s.last;
          subsMissing++;
        } else if (s.last > top) beyond++;
      }
      process.send({ ok: true, missing, subsMissing, beyond, totals: totals() });
    } else if (msg.cmd === 'drop') {
      for (const s of subs) {
        s.socket?.removeAllListeners('channel:publication');
        s.socket?.disconnect();
        s.socket = undefined;
      }
      process.send({ ok: true });
    } else if (msg.cmd === 'recover') {
      // Every subscriber at once: reconnect, then subscribe from its position. Time per subscriber: until its ack.
      const counters = { retries: 0, errors: {}, recovered: 0, notRecovered: 0, recoveredPublications: 0 };
      const h = histogram();
      const startedAt = now();
      const t0 = performance.now();
      await Promise.all(subs.map(async (s) => {
        await open(s, counters, true);
        recordSince(h, t0);
      }));
      process.send({ ok: true, startedAt, endAt: now(), h: h.encodeIntoCompressedBase64(), ...counters });
    } else if (msg.cmd === 'close') {
      for (const s of subs) s.socket?.disconnect();
      process.send({ ok: true });
      setTimeout(() => process.exit(0), 100);
    }
  } catch (err) {
    process.send({ ok: false, error: String(err?.stack ?? err) });
  }
});
process.send({ ready: true });
