/**
 * JSON schemas of the server HTTP API (`POST /api/<method>`, Centrifugo's
 * request and response shapes): they document the routes in the OpenAPI
 * document only. Input is checked by the routes and the ChannelService;
 * answers are written as they are (no schema serialization), so arbitrary
 * `data` passes through untouched.
 */

export const tags = ['server-api'];
export const security = [{ apiKey: [] }];

/** Most channels of one `/api/broadcast`. */
export const MAX_BROADCAST_CHANNELS = 1_000;

const channel = { type: 'string', minLength: 1, maxLength: 128, description: "a channel name, `ns:name` for namespace `ns` (the namespace must be configured when CHANNELS_CONFIG is set)" } as const;
const anyJson = { description: 'any JSON value' } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const position = {
  type: 'object',
  properties: { offset: { type: 'integer', minimum: 0 }, epoch: { type: 'string' } },
  required: ['offset', 'epoch'],
} as const;

const clientInfo = {
  type: 'object',
  properties: { client: { type: 'string' }, user: { type: 'string' }, conn_info: anyJson, chan_info: anyJson },
  required: ['client', 'user'],
} as const;

const publication = {
  type: 'object',
  properties: { data: anyJson, info: clientInfo, offset: { type: 'integer' }, tags: stringMap },
  required: ['data', 'offset'],
} as const;

/** `{ error: { code, message } }`: a Centrifugo API error code (100 internal, 102 unknown channel, 104 not found, 107 bad request, 108 not available, 112 unrecoverable position). */
export const apiErrorSchema = {
  type: 'object',
  properties: { code: { type: 'integer', enum: [100, 101, 102, 103, 104, 107, 108, 112] }, message: { type: 'string' } },
  required: ['code', 'message'],
} as const;

const errorBody = (description: string) => ({ type: 'object', description, properties: { error: apiErrorSchema }, required: ['error'] }) as const;

/** The answer of a method: `{ result }`, or `{ error }` with HTTP 200 (Centrifugo's default error mode). */
const answer = (result: object, description: string) => ({
  200: {
    description: `{ result } on success; { error } with HTTP 200 on a failure (send X-Centrifugo-Error-Mode: transport to get 400/404/416/500 instead)`,
    type: 'object',
    properties: { result: { ...result, description }, error: apiErrorSchema },
  },
  400: errorBody('the body is not JSON, not an object, or (transport error mode) a bad request / not available'),
  401: errorBody('X-API-Key (or Authorization: apikey <key>) is missing or not API_KEY'),
  413: errorBody('the body is larger than the limit'),
});

const empty = { type: 'object', properties: {} } as const;

const publishFields = {
  data: { ...anyJson, description: 'the publication (any JSON value); required' },
  tags: { ...stringMap, description: 'at most 32 string tags, delivered with the publication' },
  idempotency_key: { type: 'string', maxLength: 256, description: 'a publish with the same channel and key within 5 minutes returns the first result and publishes nothing (per node)' },
  skip_history: { type: 'boolean', description: 'true: delivered to the subscribers but not kept in history; it gets no offset and the result has no offset/epoch' },
  delta: { type: 'boolean', description: 'accepted and ignored: subscribers always get the full data' },
  b64data: { type: 'string', description: 'not supported (107): send JSON data' },
} as const;

const publishResult = { type: 'object', properties: { offset: { type: 'integer' }, epoch: { type: 'string' } } } as const;

export const schemas = {
  publish: {
    summary: 'Publishes data to a channel',
    description: 'Appended to the channel\'s history (when its namespace keeps one, unless `skip_history`) and delivered to every subscriber on every node, in order. `offset` and `epoch` are returned when the publication was kept in history, as in Centrifugo.',
    body: { type: 'object', properties: { channel, ...publishFields }, required: ['channel', 'data'] },
    response: answer(publishResult, '{ offset, epoch } when kept in history, {} without history or with skip_history'),
  },
  broadcast: {
    summary: 'Publishes the same data to several channels',
    description: `At most ${MAX_BROADCAST_CHANNELS} channels; each is published on its own, and \`responses\` holds one \`{ result }\` or \`{ error }\` per channel, in request order.`,
    body: { type: 'object', properties: { channels: { type: 'array', items: channel, minItems: 1, maxItems: MAX_BROADCAST_CHANNELS }, ...publishFields }, required: ['channels', 'data'] },
    response: answer(
      { type: 'object', properties: { responses: { type: 'array', items: { type: 'object', properties: { result: publishResult, error: apiErrorSchema } } } }, required: ['responses'] },
      'one answer per channel',
    ),
  },
  history: {
    summary: "Reads a channel's history",
    description: 'Publications after `since` (exclusive; with `reverse`, before it, newest first), at most `limit` (0, the default: only the stream position; -1: as many as allowed, 300), and the current position. 108 when the namespace keeps no history; 112 when `since` is of another epoch.',
    body: {
      type: 'object',
      properties: { channel, limit: { type: 'integer', minimum: -1, maximum: 300 }, since: position, reverse: { type: 'boolean' } },
      required: ['channel'],
    },
    response: answer({ type: 'object', properties: { publications: { type: 'array', items: publication }, offset: { type: 'integer' }, epoch: { type: 'string' } }, required: ['publications', 'offset', 'epoch'] }, 'the page and the stream position'),
  },
  history_remove: {
    summary: "Drops a channel's history",
    description: 'The epoch and the newest offset stay, so older positions are no longer recoverable.',
    body: { type: 'object', properties: { channel }, required: ['channel'] },
    response: answer(empty, '{}'),
  },
  presence: {
    summary: 'Connections present in a channel',
    description: "A channel's presence is the presence room of the same name (Socket.IO `presence:join`): client id (the connection's connId) → ClientInfo. 108 when the namespace has presence off.",
    body: { type: 'object', properties: { channel }, required: ['channel'] },
    response: answer({ type: 'object', properties: { presence: { type: 'object', additionalProperties: clientInfo } }, required: ['presence'] }, 'client id → client info'),
  },
  presence_stats: {
    summary: 'How many connections and distinct users are present in a channel',
    body: { type: 'object', properties: { channel }, required: ['channel'] },
    response: answer({ type: 'object', properties: { num_clients: { type: 'integer' }, num_users: { type: 'integer' } }, required: ['num_clients', 'num_users'] }, 'the counts'),
  },
  channels: {
    summary: 'Active channels of the whole cluster',
    description:
      'Channels with live subscriptions (Socket.IO and Centrifugo clients, in-process subscribers) on every node, with how many (`num_clients`, summed over the nodes). With the Redis engine the node that answers asks every live node over the control bus and waits at most 3 s: a node that does not answer in time is left out, named in `missing_nodes` and logged. At most 10000 channels are returned (the busiest; `truncated: true` then). `pattern` filters names: `*` any characters, `?` one, everything else literal (`{`, `}` and control characters: 107). 108 when too many surveys are in flight on the node.',
    body: { type: 'object', properties: { pattern: { type: 'string', maxLength: 256 } } },
    response: answer(
      {
        type: 'object',
        properties: {
          channels: { type: 'object', additionalProperties: { type: 'object', properties: { num_clients: { type: 'integer' } }, required: ['num_clients'] } },
          missing_nodes: { type: 'array', items: { type: 'string' }, description: 'names of the nodes that did not answer in time (only when some did not)' },
          truncated: { type: 'boolean', description: 'true when more channels matched than the answer holds' },
        },
        required: ['channels'],
      },
      'channel → its subscriber count in the cluster',
    ),
  },
  info: {
    summary: 'Information about every node of the cluster',
    description:
      'One entry per live node, the answering node first (`num_clients`: its Socket.IO and Centrifugo connections, `num_users`: their distinct users, `num_channels`/`num_subs`: channels with subscribers and subscriptions on it, `uptime` in seconds). Each node publishes its info every 3 s over the engine\'s control bus; a node that stops (crash) is dropped after 7 s, a node that shuts down at once. The memory engine has one node.',
    body: { type: 'object' },
    response: answer(
      {
        type: 'object',
        properties: {
          nodes: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                uid: { type: 'string' },
                name: { type: 'string' },
                version: { type: 'string' },
                num_clients: { type: 'integer' },
                num_users: { type: 'integer' },
                num_channels: { type: 'integer' },
                num_subs: { type: 'integer' },
                uptime: { type: 'integer' },
              },
              required: ['uid', 'name', 'version', 'num_clients', 'num_users', 'num_channels', 'num_subs', 'uptime'],
            },
          },
        },
        required: ['nodes'],
      },
      'the nodes',
    ),
  },
  disconnect: {
    summary: "Disconnects a user's connections on every node",
    description:
      "Every connection of `user` (the token's sub, or the user a Socket.IO socket joined rooms as) on every node, or only `client` (`session` is the same id here: a Socket.IO socket id or presence connId, or a Centrifugo client id), except those in `whitelist`. Centrifugo clients are closed with `disconnect.code`/`reason` (default 3503 \"force disconnect\": they do not reconnect). Socket.IO clients see `io server disconnect` and do not reconnect by themselves (Socket.IO cannot carry the code). Answered once the command is sent to the other nodes; an unknown user is no error.",
    body: {
      type: 'object',
      properties: {
        user: { type: 'string', minLength: 1 },
        client: { type: 'string' },
        session: { type: 'string' },
        whitelist: { type: 'array', items: { type: 'string' }, maxItems: 1_000 },
        disconnect: { type: 'object', properties: { code: { type: 'integer', minimum: 3000, maximum: 4999 }, reason: { type: 'string', maxLength: 123 } } },
      },
      required: ['user'],
    },
    response: answer(empty, '{}'),
  },
  unsubscribe: {
    summary: 'Unsubscribes a user from a channel on every node',
    description:
      "Ends the subscriptions of `user`'s connections to `channel` on every node (only `client`'s / `session`'s when given). Socket.IO clients get `channel:unsubscribed { channel, reason: 'server' }`, Centrifugo clients an `unsubscribe` push with code 2000; neither subscribes again by itself. Answered once the command is sent to the other nodes.",
    body: { type: 'object', properties: { user: { type: 'string', minLength: 1 }, channel, client: { type: 'string' }, session: { type: 'string' } }, required: ['user', 'channel'] },
    response: answer(empty, '{}'),
  },
} as const;

export type ServerApiMethod = keyof typeof schemas;
export const SERVER_API_METHODS = Object.keys(schemas) as ServerApiMethod[];
