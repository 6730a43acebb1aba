import type { Channel, ChannelPublication, ClientInfo, JsonValue, Publication, StreamPosition } from 'realtime-message-protocol';

/** What a publication carries besides its place in the stream. */
export interface PublicationBody {
  data: JsonValue;
  info?: ClientInfo | undefined;
  tags?: Record<string, string> | undefined;
}

/** How long a channel's stream and meta record are kept (per namespace). */
export interface Retention {
  /** Publications kept in history; 0 = none (offsets and epoch are still kept). */
  historySize: number;
  /** History is dropped this long after the last publication (ms); 0 = none. */
  historyTtlMs: number;
  /** The meta record (epoch, newest offset) is dropped this long after the last publish or read (ms); always > historyTtlMs. */
  metaTtlMs: number;
}

export interface PublishCommand extends Retention {
  channel: Channel;
  body: PublicationBody;
  /** `body` as JSON text, made once by the service (brokers that store text use it as is). */
  encoded: string;
  /** The epoch a channel gets if it has none (no meta record): made by the service, so scripts stay deterministic. */
  newEpoch: string;
  now: number;
  /**
   * Deliver without keeping (Centrifugo's `skip_history`): the publication
   * goes through the same pub/sub, in order with the others, but it is not
   * appended, takes no offset (it carries offset 0, "not in the stream", and
   * the channel's current epoch) and the newest offset does not move; the
   * meta record is created when missing (as a read does) and its TTL renewed.
   * Not written to the backend log. @default false
   */
  skipHistory?: boolean | undefined;
}

export interface ReadCommand {
  channel: Channel;
  /** Exclusive start: publications after `since` (reverse: before it). Undefined = from the oldest (reverse: the newest). */
  sinceOffset?: number | undefined;
  /** Most publications; 0 reads only the stream position. */
  limit: number;
  reverse: boolean;
  /** Refreshes the meta record's life, and creates it (with `newEpoch`, offset 0) when missing. */
  metaTtlMs: number;
  newEpoch: string;
  now: number;
}

/**
 * A read: the publications and the stream position at the moment of the read
 * (atomic with it). The epoch is the one the publications belong to.
 */
export interface ReadResult {
  publications: Publication[];
  position: StreamPosition;
}

/**
 * Storage and fan-out of channels. A broker appends a publication to the
 * channel's history and delivers it to every subscriber on every node in one
 * atomic step, so delivery order equals offset order; it keeps per channel
 * an epoch and the newest offset, and makes a new epoch whenever that record
 * was lost (restart, flush, eviction, expiry), so that a position from before
 * the loss is never taken for a current one.
 *
 * Brokers trust their inputs (validated by {@link ChannelService}); every
 * time is passed in.
 */
export interface ChannelBroker {
  /** `memory`, `redis`, `redis-cluster`. */
  readonly kind: string;
  /** Appends (when the retention keeps history) and delivers; returns where the publication landed (`skipHistory`: offset 0 and the current epoch). */
  publish(cmd: PublishCommand): Promise<StreamPosition>;
  /** Reads history and the stream position in one atomic step. */
  read(cmd: ReadCommand): Promise<ReadResult>;
  /** Drops the channel's history; the epoch and the newest offset stay (Centrifugo's `history_remove`). */
  removeHistory(channel: Channel): Promise<void>;
  /**
   * Delivers every publication of the channel, from every node, in offset
   * order, until the returned function is called. The node's Hub (through
   * the channel feeds) calls this once per channel. Delivery may lose
   * publications when the storage's pub/sub drops (a reconnect); the feeds
   * detect and fill such gaps from history. Publications without history
   * (`skipHistory`) come with offset 0, between the others in publish order.
   */
  subscribe(channel: Channel, deliver: (publication: ChannelPublication) => void): Promise<() => Promise<void>>;
  /** Resolves when the storage answers; rejects when it is unreachable. */
  ping(): Promise<void>;
  /** True when `err` means the storage cannot be reached (clients get `unavailable`). @default never */
  isUnavailable?(err: unknown): boolean;
  /**
   * Calls `listener` when the node may have missed publications or the
   * storage may have lost data: the pub/sub connection is back after a drop,
   * or the storage restarted or failed over. The feeds then check every
   * channel position at once (instead of at the next periodic check).
   * Optional: a broker that cannot lose messages (memory) has none.
   */
  onResync?(listener: () => void): () => void;
  /** Releases what the broker opened itself (never a client handed to it). */
  close(): Promise<void>;
}

/**
 * The presence of a channel: the presence room of the same name (SPEC §9:
 * one model for Socket.IO rooms and Centrifugo channels). The composition
 * root implements it over the PresenceService; `core/channels` never imports
 * `core/presence`.
 */
export interface ChannelPresencePort {
  /** The connections present in the channel's room: client (connection) id → who. */
  presence(channel: Channel): Promise<Record<string, ClientInfo>>;
  /** Connections and distinct users present. */
  stats(channel: Channel): Promise<{ numClients: number; numUsers: number }>;
}

const EPOCH_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Random bytes drawn 512 at a time: every publish and read offers a fresh candidate epoch, and one `getRandomValues` per call was a measurable share of a publish. */
const pool = { bytes: new Uint8Array(512), at: 512 };

function pooledRandom(n: number): Uint8Array {
  if (pool.at + n > pool.bytes.length) {
    crypto.getRandomValues(pool.bytes);
    pool.at = 0;
  }
  const out = pool.bytes.subarray(pool.at, pool.at + n);
  pool.at += n;
  return out;
}

/** A new epoch: 8 random letters, as Centrifugo makes them (no `:` or `_`, so it can sit in a pub/sub header). */
export function newEpoch(random: (n: number) => Uint8Array = pooledRandom): string {
  let s = '';
  for (const b of random(8)) s += EPOCH_ALPHABET[b % EPOCH_ALPHABET.length];
  return s;
}
