// Baselines for the benchmark, speaking the same events as realtime-message:
//   BASELINE_MODE=bare: Socket.IO that acks at once, no validation, no storage (baseline a)
//   BASELINE_MODE=lua:  the same plus one small Lua script per event on Redis (baseline b)
// Both broadcast joins, leaves and state patches (a heartbeat's patchState) to the
// other sockets of the room, once the script ran (b) or at once (a).
// WORKERS=n (n > 1): n processes on one port (Node cluster), as the server's own WORKERS.
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const workers = Number(process.env.WORKERS ?? 1);
if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
}

function serve() {
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
    let seq = 0;
    const key = `bl:{${socket.id}}`;
    // Acks after the script (b) or at once (a); resolves true when stored.
    const store = (ack, reply) => (redis ? redis.touch(key, Date.now()).then(() => (ack(reply), true), () => (ack({ ok: false }), false)) : (ack(reply), true));
    const then = (stored, fn) => (stored === true ? fn() : stored.then((ok) => ok && fn()));
    // What a hand-written presence server tells the room: joins, leaves and state patches,
    // broadcast by Socket.IO to the other sockets of the room (encoded once).
    const tell = (roomId, event) => socket.to(`presence:${roomId}`).emit('presence:event', { roomId, userId: socket.data.userId, connId: socket.id, ts: Date.now(), epoch, seq: ++seq, ...event });
    socket.on('presence:join', (p, ack) => {
      socket.data.userId = p?.userId;
      socket.join(`presence:${p?.roomId}`);
      then(store(ack, { ok: true, self: { connId: socket.id, epoch, resumed: false }, snapshot: { roomId: p?.roomId, seq: 1, members: [], connections: [] } }), () => tell(p?.roomId, { type: 'join', state: p?.state ?? {} }));
    });
    socket.on('presence:heartbeat', (p, ack) => {
      const stored = store(ack, { ok: true, epoch });
      if (p?.patchState) then(stored, () => tell(p.roomId, { type: 'update', patch: p.patchState }));
    });
    socket.on('presence:leave', (p, ack) => {
      socket.leave(`presence:${p?.roomId}`);
      then(store(ack, { ok: true }), () => tell(p?.roomId, { type: 'leave', reason: 'leave' }));
    });
  });

  http.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
    console.log(JSON.stringify({ msg: 'baseline listening', mode, port: http.address().port }));
  });
  process.on('SIGTERM', () => {
    io.close();
    redis?.disconnect();
    process.exit(0);
  });
}
