import type { ClientInfo, JsonValue, Publication } from 'realtime-message-protocol';
import { z } from 'zod';
import { CentrifugoDisconnect, DISCONNECTS, type ReplyError } from './codes.js';

/**
 * Centrifugo's client protocol v2 in JSON: newline-delimited commands in,
 * newline-delimited replies and pushes out, several per WebSocket frame.
 * Field names are Centrifugo's (snake_case); unknown fields are ignored, as
 * the Go decoder does.
 */

const uint32 = z.number().int().min(0).max(4_294_967_295);
/** Offsets are uint64 in Centrifugo; here they are exact JSON integers (the core checks 2^53 - 1). */
const offset = z.number().int().min(0);
const channel = z.string().default('');
const anyJson = z.unknown();

const ConnectSchema = z.object({
  token: z.string().optional(),
  data: anyJson.optional(),
  subs: z.record(z.string(), z.object({ recover: z.boolean().optional(), offset: offset.optional(), epoch: z.string().optional() }).loose()).optional(),
  name: z.string().optional(),
  version: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
});
const SubscribeSchema = z.object({
  channel,
  token: z.string().optional(),
  recover: z.boolean().optional(),
  epoch: z.string().optional(),
  offset: offset.optional(),
  data: anyJson.optional(),
  positioned: z.boolean().optional(),
  recoverable: z.boolean().optional(),
  join_leave: z.boolean().optional(),
  flag: z.number().int().optional(),
  delta: z.string().optional(),
});
const ChannelOnlySchema = z.object({ channel });
const PublishSchema = z.object({ channel, data: anyJson.optional() });
const HistorySchema = z.object({
  channel,
  limit: z.number().int().optional(),
  since: z.object({ offset: offset.optional(), epoch: z.string().optional() }).optional(),
  reverse: z.boolean().optional(),
});
const SendSchema = z.object({ data: anyJson.optional() });
const RpcSchema = z.object({ method: z.string().optional(), data: anyJson.optional() });
const RefreshSchema = z.object({ token: z.string().default('') });
const SubRefreshSchema = z.object({ channel, token: z.string().default('') });

/** The request schema of every command, by its JSON field name. */
const METHODS = {
  connect: ConnectSchema,
  subscribe: SubscribeSchema,
  unsubscribe: ChannelOnlySchema,
  publish: PublishSchema,
  presence: ChannelOnlySchema,
  presence_stats: ChannelOnlySchema,
  history: HistorySchema,
  send: SendSchema,
  rpc: RpcSchema,
  refresh: RefreshSchema,
  sub_refresh: SubRefreshSchema,
} as const;

export type Method = keyof typeof METHODS;
export type ConnectRequest = z.output<typeof ConnectSchema>;
export type SubscribeRequest = z.output<typeof SubscribeSchema>;
export type PublishRequest = z.output<typeof PublishSchema>;
export type HistoryRequest = z.output<typeof HistorySchema>;
export type RpcRequest = z.output<typeof RpcSchema>;
export type SendRequest = z.output<typeof SendSchema>;
export type RefreshRequest = z.output<typeof RefreshSchema>;
export type SubRefreshRequest = z.output<typeof SubRefreshSchema>;
export type ChannelRequest = z.output<typeof ChannelOnlySchema>;

/** One decoded command: `{}` (no id, no method) is a pong; `ping` or an unknown method is `method: undefined`. */
export type Command =
  | { id: number; method: 'connect'; req: ConnectRequest }
  | { id: number; method: 'subscribe'; req: SubscribeRequest }
  | { id: number; method: 'unsubscribe' | 'presence' | 'presence_stats'; req: ChannelRequest }
  | { id: number; method: 'publish'; req: PublishRequest }
  | { id: number; method: 'history'; req: HistoryRequest }
  | { id: number; method: 'send'; req: SendRequest }
  | { id: number; method: 'rpc'; req: RpcRequest }
  | { id: number; method: 'refresh'; req: RefreshRequest }
  | { id: number; method: 'sub_refresh'; req: SubRefreshRequest }
  | { id: number; method: undefined; req: undefined };

function badRequest(why: string): CentrifugoDisconnect {
  return CentrifugoDisconnect.of(DISCONNECTS.badRequest, why);
}

function decodeCommand(line: string): Command {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw badRequest('a command is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest('a command must be a JSON object');
  const obj = raw as Record<string, unknown>;
  const id = obj['id'] === undefined || obj['id'] === null ? 0 : obj['id'];
  if (!uint32.safeParse(id).success) throw badRequest('a command id must be an integer 0..4294967295');
  for (const method of Object.keys(METHODS) as Method[]) {
    const body = obj[method];
    if (body === undefined || body === null) continue;
    const res = METHODS[method].safeParse(body);
    if (!res.success) throw badRequest(`the ${method} request is malformed (${res.error.issues[0]?.path.join('.') || 'body'}: ${res.error.issues[0]?.message ?? ''})`);
    return { id: id as number, method, req: res.data } as Command;
  }
  return { id: id as number, method: undefined, req: undefined };
}

/**
 * The commands of one frame, in order. One trailing newline is allowed; an
 * empty frame, an empty line or a line that is not a JSON object closes the
 * connection with 3501 (as Centrifugo does).
 */
export function decodeFrame(text: string): Command[] {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (body.length === 0) throw badRequest('empty frame');
  return body.split('\n').map(decodeCommand);
}

/** A frame of several messages: joined with newlines, no trailing newline. */
export function encodeFrame(messages: readonly string[]): string {
  return messages.join('\n');
}

export function replyJson(id: number, method: string, result: object): string {
  return JSON.stringify({ id, [method]: result });
}

export function errorJson(id: number, error: ReplyError): string {
  return JSON.stringify({ id, error });
}

/** Centrifugo's `ClientInfo`: `user` and `client` always present, infos as raw JSON when set. */
export interface WireClientInfo {
  user: string;
  client: string;
  conn_info?: JsonValue;
  chan_info?: JsonValue;
}

export function wireClientInfo(info: ClientInfo): WireClientInfo {
  const out: WireClientInfo = { user: info.user, client: info.client };
  if (info.connInfo !== undefined) out.conn_info = info.connInfo;
  if (info.chanInfo !== undefined) out.chan_info = info.chanInfo;
  return out;
}

export interface WirePublication {
  data: JsonValue;
  info?: WireClientInfo;
  offset?: number;
  tags?: Record<string, string>;
}

export function wirePublication(p: Publication): WirePublication {
  const out: WirePublication = { data: p.data };
  if (p.info) out.info = wireClientInfo(p.info);
  if (p.offset > 0) out.offset = p.offset;
  if (p.tags && Object.keys(p.tags).length > 0) out.tags = p.tags;
  return out;
}

export type PushKind = 'pub' | 'join' | 'leave' | 'unsubscribe' | 'message' | 'subscribe' | 'disconnect';

/** A push: `{"push":{"channel":..,"<kind>":{..}}}` (no channel for `message`). Never without `push`: a message with neither id nor push is a ping. */
export function pushJson(kind: PushKind, channel: string | undefined, body: object): string {
  return JSON.stringify({ push: channel === undefined ? { [kind]: body } : { channel, [kind]: body } });
}

/** The server's ping: a message with neither `id` nor `push`. */
export const PING = '{}';
