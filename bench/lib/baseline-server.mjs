// Baselines for the benchmark, speaking the same events as realtime-message:
//   BASELINE_MODE=bare: Socket.IO that acks at once, no validation, no storage (baseline a)
//   BASELINE_MODE=lua:  the same plus one small Lua script per event on Redis (baseline b)
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const mode = process.env.BASELINE_MODE ?? 'bare';
const http = createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404);
  res.end();
});
const io = new Server(http, { transports: ['websocket'], maxHttpBufferSize: 70_000 });
// Same client settings as the realtime-message server.
const redis =
  mode === 'lua'
    ? new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1, enableAutoPipelining: true, commandTimeout: 5_000 })
    : undefined;
redis?.defineCommand('touch', {
  numberOfKeys: 1,
  lua: "redis.call('HSET', KEYS[1], 'l', ARGV[1]) redis.call('PEXPIRE', KEYS[1], 60000) return 1",
});

io.on('connection', (socket) => {
  let epoch = 1;
  const key = `bl:{${socket.id}}`;
  const store = (ack, reply) => (redis ? redis.touch(key, Date.now()).then(() => ack(reply), () => ack({ ok: false })) : ack(reply));
  socket.on('presence:join', (p, ack) => {
    socket.join(`presence:${p?.roomId}`);
    store(ack, { ok: true, self: { connId: socket.id, epoch, resumed: false }, snapshot: { roomId: p?.roomId, seq: 1, members: [], connections: [] } });
  });
  socket.on('presence:heartbeat', (_p, ack) => store(ack, { ok: true, epoch }));
  socket.on('presence:leave', (_p, ack) => store(ack, { ok: true }));
});

http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'baseline listening', mode, port: http.address().port }));
});
process.on('SIGTERM', () => {
  io.close();
  redis?.disconnect();
  process.exit(0);
});
