import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ChannelError, PresenceError, centrifugoCodeOf, httpStatusOf, type ClientInfo, type Publication, type PublishResult } from 'realtime-message-protocol';
import type { ChannelService } from '../../../core/channels/service.js';
import { SurveyBusyError, patternProblem, type ClusterOps } from '../../../core/shared/control.js';
import { MAX_BROADCAST_CHANNELS, SERVER_API_METHODS, schemas, security, tags, type ServerApiMethod } from './server-api-schemas.js';

export { SERVER_API_METHODS, MAX_BROADCAST_CHANNELS } from './server-api-schemas.js';

/** Where the server API lives (Centrifugo's default `http_api.handler_prefix`). */
export const SERVER_API_PREFIX = '/api';

/** How long an `idempotency_key` is remembered (Centrifugo's default `idempotent_result_ttl`). */
export const IDEMPOTENCY_TTL_MS = 5 * 60_000;
/** Most idempotency keys remembered per node; the oldest are forgotten first. */
const MAX_IDEMPOTENCY_KEYS = 10_000;

export interface ServerApiOptions {
  channels: ChannelService;
  /** `API_KEY`: `X-API-Key: <key>` or `Authorization: apikey <key>`. */
  apiKey: string;
  /** The cluster (or this node alone): what `/api/info`, `/api/channels`, `/api/disconnect` and `/api/unsubscribe` see and act on. */
  cluster: ClusterOps;
  /** Largest `data` of a publication (`CHANNEL_MAX_DATA_BYTES`); the body limit follows from it. @default 65536 */
  maxDataBytes?: number;
  /** @default Date.now */
  now?: () => number;
}

/** A failure in Centrifugo's terms: its API error code, and the HTTP status of the request when it is not answered with 200. */
class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** Set for failures of the request itself (auth, body), answered with this status in every error mode. */
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

const bad = (message: string): ApiError => new ApiError(107, message);

/** Most client ids in a disconnect `whitelist`. */
const MAX_WHITELIST = 1_000;
/** Centrifugo's disconnect of the server API when the request names none. */
const FORCE_DISCONNECT = { code: 3503, reason: 'force disconnect' } as const;

/** Centrifugo's statuses of `X-Centrifugo-Error-Mode: transport`. */
const TRANSPORT_STATUS: Record<number, number> = { 100: 500, 102: 404, 104: 404, 107: 400, 108: 400, 112: 416, 113: 409 };

/** The Centrifugo API error of any failure: channel reasons keep their own code, registry codes map, the rest is 100. */
function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ChannelError) return new ApiError(err.centrifugoCode, err.message);
  if (err instanceof PresenceError) return new ApiError(centrifugoCodeOf(err.code) ?? (httpStatusOf(err.code) < 500 ? 107 : 100), err.message);
  if (err instanceof SurveyBusyError) return new ApiError(108, err.message);
  return new ApiError(100, 'internal server error');
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The `Authorization: apikey <key>` or `X-API-Key` value, or a 401. */
function presentedKey(req: FastifyRequest): string {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string') return header;
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^apikey[ ]+(\S+)\s*$/i.exec(auth) : null;
  if (m) return m[1]!;
  throw new ApiError(101, auth === undefined ? 'unauthorized: send X-API-Key: <API_KEY> or Authorization: apikey <API_KEY>' : "unauthorized: Authorization must be 'apikey <API_KEY>'", 401);
}

type Body = Record<string, unknown>;

function optionalString(body: Body, name: string, max = 1_024): string | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max) throw bad(`${name} must be a string of at most ${max} characters`);
  return v;
}

function requiredString(body: Body, name: string): string {
  const v = optionalString(body, name);
  if (v === undefined) throw bad(`${name} is required`);
  return v;
}

/** Optional fields sent as JSON null count as absent, as protojson reads them. */
const opt = (v: unknown): unknown => (v === null ? undefined : v);

const snakeInfo = (i: ClientInfo): Record<string, unknown> => ({
  client: i.client,
  user: i.user,
  ...(i.connInfo !== undefined ? { conn_info: i.connInfo } : {}),
  ...(i.chanInfo !== undefined ? { chan_info: i.chanInfo } : {}),
});

const snakePublication = (p: Publication): Record<string, unknown> => ({
  data: p.data,
  ...(p.info ? { info: snakeInfo(p.info) } : {}),
  offset: p.offset,
  ...(p.tags ? { tags: p.tags } : {}),
});

/** The publish fields besides the channel(s), checked the same way for publish and broadcast. */
interface PublishRequest {
  data: unknown;
  tags: unknown;
  idempotencyKey: string | undefined;
  /** `skip_history`: delivered, not kept (no offset; the result has no `offset`/`epoch`, as Centrifugo's). */
  skipHistory: boolean;
}

function publishRequest(body: Body): PublishRequest {
  if (body['b64data'] !== undefined && body['b64data'] !== null && body['b64data'] !== '') throw bad('b64data is not supported by this server: send the publication as JSON in data');
  if (!('data' in body) || body['data'] === undefined) throw bad('data is required');
  const skip = opt(body['skip_history']);
  if (skip !== undefined && typeof skip !== 'boolean') throw bad('skip_history must be a boolean');
  for (const name of ['version', 'version_epoch'] as const) {
    const v = opt(body[name]);
    if (v !== undefined && v !== 0 && v !== '') throw bad(`${name} is not supported by this server (publications are never skipped by version)`);
  }
  const delta = opt(body['delta']);
  if (delta !== undefined && typeof delta !== 'boolean') throw bad('delta must be a boolean');
  return { data: body['data'], tags: opt(body['tags']), idempotencyKey: optionalString(body, 'idempotency_key', 256), skipHistory: skip === true };
}

/**
 * The server HTTP API in Centrifugo's shapes (v5/v6 `POST /api/<method>`),
 * registered with `prefix: SERVER_API_PREFIX`: every request needs
 * `API_KEY` (401 otherwise); answers are `{ result }` or `{ error: { code,
 * message } }` with Centrifugo's API codes, HTTP 200 unless the request has
 * `X-Centrifugo-Error-Mode: transport`. Any Content-Type is read as JSON,
 * as Centrifugo does (so `curl -d` works).
 */
export function serverApi(options: ServerApiOptions) {
  const { channels, cluster } = options;
  const keyHash = sha256(options.apiKey);
  const now = options.now ?? Date.now;
  const maxDataBytes = options.maxDataBytes ?? 65_536;
  // A broadcast of data at its limit to many channel names fits.
  const bodyLimit = Math.max(1_048_576, 2 * maxDataBytes + 262_144);
  /** `channel\0key` → the first publish with that key: its result while it is remembered. */
  const idempotent = new Map<string, { at: number; result: Promise<PublishResult> }>();

  function publishOnce(channel: string, req: PublishRequest): Promise<PublishResult> {
    const publish = () =>
      channels.publish(channel, req.data, { ...(req.tags === undefined ? {} : { tags: req.tags as Record<string, string> }), ...(req.skipHistory ? { skipHistory: true } : {}) });
    if (req.idempotencyKey === undefined) return publish();
    const t = now();
    for (const [k, e] of idempotent) {
      if (t - e.at < IDEMPOTENCY_TTL_MS && idempotent.size <= MAX_IDEMPOTENCY_KEYS) break;
      idempotent.delete(k);
    }
    const key = `${channel}\u0000${req.idempotencyKey}`;
    const seen = idempotent.get(key);
    if (seen) return seen.result;
    const result = publish();
    idempotent.set(key, { at: t, result });
    // A failed publish may be retried with the same key.
    result.catch(() => idempotent.get(key)?.result === result && idempotent.delete(key));
    return result;
  }

  /** `{ offset, epoch }` when the publication is kept in history, `{}` otherwise (no history, or `skip_history`), as Centrifugo answers. */
  async function publishResult(channel: string, req: PublishRequest): Promise<Record<string, unknown>> {
    const { options: ns } = channels.resolve(channel);
    const res = await publishOnce(channel, req);
    return ns.history && res.offset > 0 ? { offset: res.offset, epoch: res.epoch } : {};
  }

  function channelOf(body: Body): string {
    const c = body['channel'];
    if (c === undefined || c === null || c === '') throw bad('channel is required');
    return c as string; // the ChannelService checks the rest
  }

  const methods: Record<ServerApiMethod, (body: Body) => Promise<Record<string, unknown>>> = {
    publish: async (body) => publishResult(channelOf(body), publishRequest(body)),

    broadcast: async (body) => {
      const list = body['channels'];
      if (!Array.isArray(list) || list.length === 0) throw bad('channels is required: a non-empty array of channel names');
      if (list.length > MAX_BROADCAST_CHANNELS) throw bad(`channels has ${list.length} names; at most ${MAX_BROADCAST_CHANNELS} per broadcast`);
      const req = publishRequest(body);
      const responses = await Promise.all(
        list.map((c: unknown) =>
          publishResult(c as string, req).then(
            (result) => ({ result }),
            (err: unknown) => {
              const e = toApiError(err);
              return { error: { code: e.code, message: e.message } };
            },
          ),
        ),
      );
      return { responses };
    },

    history: async (body) => {
      const since = opt(body['since']);
      const limit = opt(body['limit']);
      const reverse = opt(body['reverse']);
      const res = await channels.history(channelOf(body), {
        ...(since !== undefined ? { since: since as { offset: number; epoch: string } } : {}),
        ...(limit !== undefined ? { limit: limit as number } : {}),
        ...(reverse !== undefined ? { reverse: reverse as boolean } : {}),
      });
      return { publications: res.publications.map(snakePublication), offset: res.offset, epoch: res.epoch };
    },

    history_remove: async (body) => {
      await channels.removeHistory(channelOf(body));
      return {};
    },

    presence: async (body) => {
      const members = await channels.presence(channelOf(body));
      return { presence: Object.fromEntries(Object.entries(members).map(([id, info]) => [id, snakeInfo(info)])) };
    },

    presence_stats: async (body) => {
      const s = await channels.presenceStats(channelOf(body));
      return { num_clients: s.numClients, num_users: s.numUsers };
    },

    channels: async (body) => {
      const p = body['pattern'];
      if (p !== undefined && p !== null && typeof p !== 'string') throw bad('pattern must be a string');
      const pattern = typeof p === 'string' && p !== '' ? p : undefined;
      const problem = pattern === undefined ? undefined : patternProblem(pattern);
      if (problem) throw bad(problem);
      const survey = await cluster.channels(pattern);
      const out: Record<string, { num_clients: number }> = {};
      for (const [name, n] of survey.channels) out[name] = { num_clients: n };
      // Beyond Centrifugo's shape, only when the answer is incomplete: clients that do not know these fields ignore them.
      return { channels: out, ...(survey.missing.length > 0 ? { missing_nodes: survey.missing } : {}), ...(survey.truncated ? { truncated: true } : {}) };
    },

    info: async () => ({ nodes: cluster.nodes() }),

    disconnect: async (body) => {
      const user = requiredString(body, 'user');
      const client = optionalString(body, 'client');
      const session = optionalString(body, 'session');
      const whitelist = opt(body['whitelist']);
      if (whitelist !== undefined && (!Array.isArray(whitelist) || whitelist.length > MAX_WHITELIST || !whitelist.every((w) => typeof w === 'string' && w.length <= 1_024))) {
        throw bad(`whitelist must be an array of at most ${MAX_WHITELIST} client ids`);
      }
      const d = opt(body['disconnect']) as { code?: unknown; reason?: unknown } | undefined;
      if (d !== undefined) {
        if (typeof d !== 'object' || Array.isArray(d)) throw bad('disconnect must be an object { code, reason }');
        if (d.code !== undefined && (!Number.isInteger(d.code) || (d.code as number) < 3000 || (d.code as number) > 4999)) throw bad('disconnect.code must be an integer 3000-4999');
        // A WebSocket close reason holds at most 123 bytes.
        if (d.reason !== undefined && (typeof d.reason !== 'string' || Buffer.byteLength(d.reason) > 123)) throw bad('disconnect.reason must be a string of at most 123 bytes');
      }
      // Without `disconnect`, Centrifugo's 3503 "force disconnect" (the client does not reconnect).
      const code = (d?.code as number | undefined) ?? FORCE_DISCONNECT.code;
      const reason = (d?.reason as string | undefined) ?? (d?.code === undefined ? FORCE_DISCONNECT.reason : '');
      await cluster.disconnect({ user, client, session, whitelist: whitelist as string[] | undefined, code, reason });
      return {};
    },

    unsubscribe: async (body) => {
      const user = requiredString(body, 'user');
      const { channel } = channels.resolve(channelOf(body));
      await cluster.unsubscribe({ user, channel, client: optionalString(body, 'client'), session: optionalString(body, 'session') });
      return {};
    },
  };

  function send(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
    const e = toApiError(err);
    if (e.code === 100) req.log.error({ err }, 'server API call failed');
    const transportMode = String(req.headers['x-centrifugo-error-mode'] ?? '').toLowerCase() === 'transport';
    const status = e.httpStatus ?? (transportMode ? (TRANSPORT_STATUS[e.code] ?? 400) : 200);
    return reply.code(status).send({ error: { code: e.code, message: e.message } });
  }

  return async function plugin(r: FastifyInstance): Promise<void> {
    // Schemas document; the routes check. Answers are written as they are.
    r.setValidatorCompiler(() => () => true);
    r.setSerializerCompiler(() => (data) => JSON.stringify(data));

    // Centrifugo reads the body as JSON whatever its Content-Type.
    r.removeAllContentTypeParsers();
    r.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_req, text, done) => {
      const s = (text as string).trim();
      if (s === '') return done(null, {});
      try {
        done(null, JSON.parse(s));
      } catch (err) {
        done(new ApiError(107, `the body is not valid JSON: ${(err as Error).message}`, 400), undefined);
      }
    });

    r.setErrorHandler(async (err: { statusCode?: unknown; message?: unknown }, req, reply) => {
      if (err instanceof ApiError || err instanceof PresenceError) return send(req, reply, err);
      const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
      if (status === 413) return send(req, reply, new ApiError(107, `the body is larger than ${bodyLimit} bytes`, 413));
      if (status >= 400 && status < 500) return send(req, reply, new ApiError(107, `bad request: ${String(err.message)}`, 400));
      return send(req, reply, err);
    });

    r.addHook('onRequest', async (req) => {
      if (!timingSafeEqual(sha256(presentedKey(req)), keyHash)) throw new ApiError(101, 'unauthorized: the API key is not API_KEY', 401);
    });

    for (const method of SERVER_API_METHODS) {
      r.post<{ Body: unknown }>(`/${method}`, { bodyLimit, schema: { ...schemas[method], tags, security } }, async (req, reply) => {
        const body = req.body ?? {};
        if (typeof body !== 'object' || Array.isArray(body)) return send(req, reply, new ApiError(107, 'the body must be a JSON object', 400));
        try {
          return reply.send({ result: await methods[method](body as Body) });
        } catch (err) {
          return send(req, reply, err);
        }
      });
    }

    r.post<{ Params: { method: string } }>('/:method', { schema: { hide: true } }, async (req, reply) =>
      send(req, reply, new ApiError(104, `method '${req.params.method}' is not supported by this server (supported: ${SERVER_API_METHODS.join(', ')})`, 404)),
    );
  };
}

/** The server API while `API_KEY` is unset: every `POST /api/<method>` is 404. */
export function serverApiOff() {
  return async function plugin(r: FastifyInstance): Promise<void> {
    // Answered before the body is read.
    r.addHook('onRequest', async (_req, reply) => reply.code(404).send({ error: { code: 104, message: 'the server HTTP API is off: set API_KEY to turn it on' } }));
    r.post('/:method', { schema: { hide: true } }, async () => undefined);
  };
}
