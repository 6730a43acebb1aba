// A subscriber process of SCENARIO=centrifugo (bench/lib/centrifugo-scenario.mjs): the counterpart of
// bench/lib/channels-worker.mjs with the official Centrifugo client (the `centrifuge` npm package, 5.x,
// over `ws`) at /connection/websocket instead of socket.io-client. Same messages from the parent, same
// accounting: every publication checked by offset (gaps, duplicates), publish→deliver latency from the
// timestamp in its data (absolute ms: performance.timeOrigin + performance.now() of the publisher).
//
// Messages from the parent (each answered with { ok, ... } or { ok: false, error }):
//   { cmd: 'connect', urls, from, count, channels, channelNames }
//       subscriber g = from + k follows channel g % channels on node floor(g / channels) % urls.length,
//       one Centrifuge client (one WebSocket) each, subscription `recoverable: true` (its subscribe reply
//       carries the stream position, the starting offset of the gap check)
//   { cmd: 'phase', name }       new latency histograms from now on
//   { cmd: 'stats' }             the current phase: histograms, deliveries, time of the last one; totals
//   { cmd: 'check', tops }       tops[c] = the channel's last acked offset: counts what never arrived
//   { cmd: 'close' }
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { histogram } from './stats.mjs';

const now = () => performance.timeOrigin + performance.now();
let subs = [];
let phase;
let debugLeft = 10;

function newPhase(name) {
  phase = { name, same: histogram(), cross: histogram(), deliveries: 0, lastAt: 0, startedAt: now(), slow: {} };
}
newPhase('setup');

/** Applies one publication to a subscriber's position: in order, a gap (offsets skipped) or a duplicate. */
function apply(sub, offset) {
  if (process.env.CHANNELS_DEBUG && offset !== sub.last + 1 && debugLeft-- > 0) process.stderr.write(`[centrifugo-worker] subscriber ${sub.g} ${sub.channel} phase ${phase.name}: offset ${offset} after ${sub.last}\n`);
  if (typeof offset !== 'number') sub.noOffset++;
  else if (offset === sub.last + 1) sub.last = offset;
  else if (offset > sub.last + 1) {
    sub.gaps += offset - sub.last - 1;
    sub.last = offset;
  } else sub.dups++;
  sub.received++;
}

function onPublication(sub, ctx) {
  if (ctx.channel !== sub.channel) {
    sub.foreign++;
    return;
  }
  apply(sub, ctx.offset);
  const t = ctx.data?.t;
  if (typeof t === 'number') {
    const us = Math.max(1, Math.round((now() - t) * 1000));
    if (us > 20_000) {
      const b = Math.floor((t - phase.startedAt) / 100);
      phase.slow[b] = (phase.slow[b] ?? 0) + 1;
    }
    (ctx.data.n === sub.node ? phase.same : phase.cross).recordValue(us);
  }
  phase.deliveries++;
  phase.lastAt = now();
}

/** One subscriber: a Centrifuge client and its subscription; resolves on the first `subscribed`. */
function open(sub, wsUrl, counters, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const client = new Centrifuge(wsUrl, { websocket: WebSocket, timeout: timeoutMs, minReconnectDelay: 200, maxReconnectDelay: 2_000 });
    sub.client = client;
    const s = client.newSubscription(sub.channel, { recoverable: true });
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      client.disconnect();
      reject(new Error(`subscriber ${sub.g}: not subscribed within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('publication', (ctx) => onPublication(sub, ctx));
    s.on('subscribed', (ctx) => {
      if (done) {
        // A later (re)subscribe after a reconnect: recovered publications arrive as publication events.
        sub.resubscribed++;
        if (ctx.wasRecovering && !ctx.recovered) sub.notRecovered++;
        return;
      }
      done = true;
      clearTimeout(timer);
      sub.last = ctx.streamPosition?.offset ?? 0;
      sub.epoch = ctx.streamPosition?.epoch;
      if (!ctx.streamPosition) counters.noPosition++;
      resolve();
    });
    s.on('error', (ctx) => {
      const code = ctx?.error?.code ?? 'unknown';
      counters.errors[code] = (counters.errors[code] ?? 0) + 1;
    });
    client.on('disconnected', () => sub.disconnects++);
    s.subscribe();
    client.connect();
  });
}

function totals() {
  const t = { subscribers: subs.length, received: 0, gaps: 0, dups: 0, epochChanges: 0, foreign: 0, resubscribeNotices: 0, subsWithGaps: 0, subsWithDups: 0, noOffset: 0, disconnects: 0, resubscribed: 0, notRecovered: 0 };
  for (const s of subs) {
    t.received += s.received;
    t.gaps += s.gaps;
    t.dups += s.dups;
    t.foreign += s.foreign;
    t.noOffset += s.noOffset;
    t.disconnects += s.disconnects;
    t.resubscribed += s.resubscribed;
    t.notRecovered += s.notRecovered;
    // A resubscription after a reconnect is what the Socket.IO side counts as a resubscribe notice.
    t.resubscribeNotices += s.resubscribed;
    if (s.gaps > 0) t.subsWithGaps++;
    if (s.dups > 0) t.subsWithDups++;
  }
  return t;
}

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'connect') {
      const wsUrls = msg.urls.map((u) => `${u.replace(/^http/, 'ws')}/connection/websocket`);
      subs = Array.from({ length: msg.count }, (_, k) => {
        const g = msg.from + k;
        const c = g % msg.channels;
        return { g, c, channel: msg.channelNames[c], node: Math.floor(g / msg.channels) % wsUrls.length, last: 0, epoch: undefined, received: 0, gaps: 0, dups: 0, foreign: 0, noOffset: 0, disconnects: 0, resubscribed: 0, notRecovered: 0, client: undefined };
      });
      const counters = { retries: 0, errors: {}, noPosition: 0 };
      // 100 at a time, as the Socket.IO workers connect.
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(100, subs.length) }, async () => {
        while (next < subs.length) {
          const sub = subs[next++];
          await open(sub, wsUrls[sub.node], counters);
        }
      }));
      process.send({ ok: true, connected: subs.length, ...counters });
    } else if (msg.cmd === 'phase') {
      newPhase(msg.name);
      process.send({ ok: true });
    } else if (msg.cmd === 'stats') {
      process.send({ ok: true, name: phase.name, same: phase.same.encodeIntoCompressedBase64(), cross: phase.cross.encodeIntoCompressedBase64(), deliveries: phase.deliveries, lastAt: phase.lastAt, startedAt: phase.startedAt, slow: phase.slow, totals: totals() });
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
    } else if (msg.cmd === 'close') {
      for (const s of subs) s.client?.disconnect();
      process.send({ ok: true });
      setTimeout(() => process.exit(0), 100);
    } else {
      process.send({ ok: false, error: `centrifugo-worker: unsupported command ${msg.cmd}` });
    }
  } catch (err) {
    process.send({ ok: false, error: String(err?.stack ?? err) });
  }
});
process.send({ ready: true });
