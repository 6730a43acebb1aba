// Baseline of the user status benchmark: the bare routes of the same
// framework (Fastify 5, same version as the server), answering a constant
// record of the same shape with the same response schema (so the answers are
// serialized the same way), with no validation, no cache and no store. The
// PUT route parses its JSON body (Fastify's parser) and stores nothing.
import { fastify } from 'fastify';

const nullable = (type) => ({ type: [type, 'null'] });
const recordSchema = {
  type: 'object',
  properties: {
    userId: { type: 'string' },
    status: { type: 'string', enum: ['online', 'away', 'busy', 'offline'] },
    message: nullable('string'),
    manual: { type: 'boolean' },
    expiresAt: nullable('integer'),
    messageExpiresAt: nullable('integer'),
    lastSeen: nullable('integer'),
    updatedAt: nullable('integer'),
    nodeId: nullable('string'),
    seq: { type: 'integer' },
  },
  required: ['userId', 'status', 'message', 'manual', 'expiresAt', 'messageExpiresAt', 'lastSeen', 'updatedAt', 'nodeId', 'seq'],
};
const usersSchema = { type: 'object', properties: { users: { type: 'array', items: recordSchema } }, required: ['users'] };

const record = (userId) => ({ userId, status: 'busy', message: 'in a meeting', manual: true, expiresAt: 1_795_400_000_000, messageExpiresAt: null, lastSeen: Date.now(), updatedAt: 1_795_396_790_000, nodeId: 'bench-1', seq: 3 });

const app = fastify({ logger: false });
app.get('/health', async () => ({ status: 'ok' }));
app.get('/api/v2/presence/:userId', { schema: { response: { 200: recordSchema } } }, async (req) => record(req.params.userId));
app.put('/api/v2/presence/:userId', { bodyLimit: 16_384, schema: { response: { 200: recordSchema } } }, async (req) => ({ ...record(req.params.userId), message: req.body?.message ?? null }));
app.post('/api/v2/presence/batch', { bodyLimit: 1_048_576, schema: { response: { 200: usersSchema } } }, async (req) => ({ users: (req.body?.userIds ?? []).map(record) }));

await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? '127.0.0.1' });
console.log(JSON.stringify({ msg: 'status baseline listening', port: app.server.address().port }));
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
