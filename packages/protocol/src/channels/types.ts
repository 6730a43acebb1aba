/**
 * Channels (SPEC §8): named, ordered streams of publications with history
 * and recovery. Zod-free: the SDK and the Centrifugo codec import these
 * types; the schemas are in `schemas.ts`. Names follow Centrifugo's client
 * protocol (`offset`, `epoch`, `publications`, `since`, `limit`, `reverse`,
 * `recovered`), so a Centrifugo endpoint only renames a few fields
 * (`connInfo` → `conn_info`).
 */
import type { JsonValue } from '../shared/json.js';
import { LIMITS } from '../shared/limits.js';

export const CHANNEL_LIMITS = {
  /** Longest channel name (the namespace included), in UTF-16 code units: a channel's presence is the room of the same name. */
  maxChannelLength: LIMITS.maxIdLength,
  /** Default cap on the JSON of one publication's `data`, in UTF-8 bytes. */
  defaultMaxDataBytes: 65_536,
  /** Most tags on one publication. */
  maxTags: 32,
  /** Longest tag key, in UTF-16 code units. */
  maxTagKeyLength: 64,
  /** Longest tag value, in UTF-16 code units. */
  maxTagValueLength: 256,
  /** Longest `connInfo` / `chanInfo` of a publisher, in UTF-8 bytes of JSON. */
  maxInfoBytes: 4_096,
  /** Longest epoch a request may carry (storage makes 8 letters; anything longer cannot be current). */
  maxEpochLength: 64,
  /** Default most publications one history call returns (Centrifugo's `client.history_max_publication_limit`). */
  defaultHistoryMaxLimit: 300,
  /** Default most publications a recovery returns; beyond it the subscriber is not recovered (Centrifugo's `client.recovery_max_publication_limit`). */
  defaultRecoveryMaxLimit: 300,
} as const;

/** The character between a namespace and the rest of a channel name (Centrifugo's `namespace_boundary`). */
export const NAMESPACE_BOUNDARY = ':';
/** Prefix of Centrifugo's legacy private channels (they need a subscription token). */
export const PRIVATE_CHANNEL_PREFIX = '$';
/** Separates a user-limited channel's name from its users: `dialog#ada,bob` (Centrifugo's `user_boundary`). */
export const USER_BOUNDARY = '#';
/** Namespace names: Centrifugo's rule. */
export const NAMESPACE_NAME_PATTERN = /^[-a-zA-Z0-9_.]{2,}$/;

/**
 * A place in a channel's stream: the offset of the last publication seen and
 * the epoch of the stream it belongs to. `{ offset: 0, epoch }` is "before
 * the first publication of this epoch".
 */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** Who published (a client's identity), as subscribers see it. Centrifugo's `ClientInfo`. */
export interface ClientInfo {
  user: string;
  client: string;
  connInfo?: JsonValue;
  chanInfo?: JsonValue;
}

/** One publication of a channel's stream, as history and recovery return it. */
export interface Publication {
  /** Strictly increasing by one per channel within an epoch; the first publication of an epoch has offset 1. */
  offset: number;
  data: JsonValue;
  info?: ClientInfo;
  tags?: Record<string, string>;
}

/**
 * A live publication as subscribers receive it (`channel:publication`): the
 * publication with its channel and epoch. Offset 0: published without
 * history (`skipHistory`), not in the stream; it does not move a position.
 */
export interface ChannelPublication extends Publication {
  channel: string;
  epoch: string;
}

/** Options of a history read (`channel:history`, `/api/history`). */
export interface HistoryOptions {
  /** Exclusive: publications after (or, with `reverse`, before) this position. Omitted: from the oldest (or the newest) retained. */
  since?: StreamPosition;
  /** Most publications to return; 0 returns only the stream position, -1 as many as allowed. @default 0 */
  limit?: number;
  /** Newest first. @default false */
  reverse?: boolean;
}

/** A history read: the publications and the channel's current stream position. */
export interface HistoryResult {
  publications: Publication[];
  /** The offset of the newest publication of the stream (0 when nothing was published in this epoch). */
  offset: number;
  epoch: string;
}

/**
 * A recovery from a position: either every publication after it, in order,
 * and `recovered: true`, or none and `recovered: false` (the position is
 * older than the retained history, of another epoch, or ahead of the stream).
 * `offset`/`epoch` are where the subscriber stands once it has applied
 * `publications`: the stream's newest offset in both cases.
 */
export interface RecoveryResult {
  recovered: boolean;
  publications: Publication[];
  offset: number;
  epoch: string;
}

/** What a publish returns: where the publication landed. */
export type PublishResult = StreamPosition;

/** A channel name split as Centrifugo does: private prefix stripped, namespace up to the first `:`, users after `#`. */
export interface ChannelParts {
  /** The namespace name, or `''` for a channel without one (Centrifugo's `without_namespace`). */
  namespace: string;
  /** True for a name starting with `$`. */
  private: boolean;
  /** The users a user-limited channel (`ns:dialog#ada,bob`) is for; undefined when it has no `#`. */
  users: string[] | undefined;
}

/**
 * Splits a channel name the way Centrifugo does (private prefix, then the
 * namespace up to the first `:`; a name without `:` has no namespace).
 * @example channelParts('chat:room-1') // { namespace: 'chat', private: false, users: undefined }
 */
export function channelParts(channel: string): ChannelParts {
  const isPrivate = channel.startsWith(PRIVATE_CHANNEL_PREFIX);
  const name = isPrivate ? channel.slice(PRIVATE_CHANNEL_PREFIX.length) : channel;
  const at = name.indexOf(NAMESPACE_BOUNDARY);
  const hash = channel.lastIndexOf(USER_BOUNDARY);
  return {
    namespace: at < 0 ? '' : name.slice(0, at),
    private: isPrivate,
    users: hash < 0 ? undefined : channel.slice(hash + 1).split(','),
  };
}
