// Baselines of SCENARIO=channels, speaking the same events as realtime-message:
//   BASELINE_MODE=room:   bare Socket.IO; `channel:subscribe` joins the room of the channel,
//                         `channel:publish` emits to that room and acks (baseline a). One node:
//                         @socket.io/redis-adapter is not installed, so no cross-node broadcast.
//   BASELINE_MODE=script: one Lua script per publication on Redis (XADD with exact MAXLEN, then
//                         PUBLISH), acked with the entry id; each node SUBSCRIBEs (one classic
//                         subscriber connection) to the channels its sockets follow and emits each
//                         message to the room (baseline b). Several nodes on one Redis.
// No validation, no offsets, no recovery, no auth, no rate limit: the floor of the same work.
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const mode = process.env.BASELINE_MODE ?? 'room';
const http = createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404);
  res.end();
});
const io = new Server(http, { transports: ['websocket'], maxHttpBufferSize: 70_000 });

// Same client settings as the realtime-message server (server.ts redisClients).
const common = { maxRetriesPerRequest: 1, enableAutoPipelining: true, commandTimeout: 5_000 };
const redis = mode === 'script' ? new Redis(process.env.REDIS_URL, { ...common, enableOfflineQueue: false }) : undefined;
const sub = mode === 'script' ? new Redis(process.env.REDIS_URL, { ...common, commandTimeout: undefined }) : undefined;
const historySize = Number(process.env.BASELINE_HISTORY_SIZE ?? 1000);
const prefix = process.env.REDIS_KEY_PREFIX ?? 'bc:';
redis?.defineCommand('pub', {
  numberOfKeys: 2,
  lua: "local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '*', 'd', ARGV[1]) redis.call('PUBLISH', KEYS[2], ARGV[1]) return id",
});
/** Channels this node is subscribed to (room name = channel). */
const followed = new Map();
sub?.on('message', (pubsub, message) => {
  const channel = pubsub.slice(prefix.length + 2);
  io.to(channel).emit('channel:publication', { channel, data: JSON.parse(message) });
});

io.on('connection', (socket) => {
  socket.on('channel:subscribe', async (p, ack) => {
    const channel = String(p?.channel);
    socket.join(channel);
    if (sub) {
      let ready = followed.get(channel);
      if (!ready) {
        ready = sub.subscribe(`${prefix}p:${channel}`);
        followed.set(channel, ready);
      }
      await ready;
    }
    ack?.({ ok: true, channel, offset: 0, epoch: '', recovered: false, publications: [] });
  });
  socket.on('channel:publish', (p, ack) => {
    const channel = String(p?.channel);
    if (!redis) {
      io.to(channel).emit('channel:publication', { channel, data: p.data });
      ack?.({ ok: true });
      return;
    }
    redis.pub(`${prefix}s:{${channel}}`, `${prefix}p:${channel}`, JSON.stringify(p.data), historySize).then(
      (id) => ack?.({ ok: true, id }),
      () => ack?.({ ok: false, error: { code: 'internal' } }),
    );
  });
});

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'channels baseline listening', mode, port: http.address().port }));
});
process.on('SIGTERM', () => {
  io.close();
  redis?.disconnect();
  sub?.disconnect();
  process.exit(0);
});
