import type { Channel, ChannelPublication, StreamPosition } from 'realtime-message-protocol';
import type { ChannelBroker, PublicationBody, PublishCommand, ReadCommand, ReadResult } from '../../core/channels/broker.js';
import type { Logger } from '../../core/shared/logger.js';
import { RedisBackend, type RedisClient } from './backend.js';
import { isConnectionError } from './redis-engine.js';
import { channelPublish } from './scripts/channel-publish.js';
import { channelRead } from './scripts/channel-read.js';
import { Scripts } from './scripts/script.js';

export interface RedisBrokerOptions {
  /** Client for commands and scripts. Not closed by the broker. Ignored when `backend` is given. */
  redis?: RedisClient;
  /** The Redis deployment shared with the node's other capabilities (subscriber connection, key space, health). */
  backend?: RedisBackend;
  /** Prefix of every key and channel (when the broker makes its own backend). @default 'rm:' */
  keyPrefix?: string;
  logger?: Logger;
}

const CHANNEL_SCRIPTS = { channelPublish, channelRead };

/**
 * Channels in Redis (single instance or Cluster, Redis >= 7.0): per channel
 * one Stream (the history; entry id = offset) and one meta hash (epoch,
 * newest offset), both under the hash tag `{ch:<name>}`, both with a TTL.
 * A publish is one script (append + trim + TTLs + SPUBLISH), a read another
 * (position + range). With the backend log on (`RedisBackend` option
 * `backendLog`), the publish script also appends to the log. See
 * docs/channels.md for the data model.
 */
export class RedisBroker implements ChannelBroker {
  readonly kind: string;
  private readonly backend: RedisBackend;
  private readonly ownsBackend: boolean;
  private readonly redis: RedisClient;
  private readonly scripts: Scripts<typeof CHANNEL_SCRIPTS>;
  private readonly logger: Logger;

  constructor(options: RedisBrokerOptions) {
    if (options.backend) {
      this.backend = options.backend;
    } else {
      if (!options.redis) throw new TypeError('RedisBroker needs `redis` (an ioredis Redis or Cluster) or `backend`');
      this.backend = new RedisBackend({ redis: options.redis, keyPrefix: options.keyPrefix, logger: options.logger });
    }
    this.ownsBackend = !options.backend;
    this.redis = this.backend.redis;
    this.kind = this.backend.kind;
    this.logger = options.logger ?? this.backend.logger;
    this.scripts = new Scripts(this.redis, CHANNEL_SCRIPTS, { keys: this.backend.keys, keySlackMs: 0 });
  }

  publish(cmd: PublishCommand): Promise<StreamPosition> {
    const log = this.backend.log;
    // A publication without history is not in the log either (it is not stored). Not async: one promise per publish, not two.
    if (!log || cmd.skipHistory) return this.scripts.run('channelPublish', cmd);
    return this.publishLogged(cmd, log);
  }

  private async publishLogged(cmd: PublishCommand, log: NonNullable<RedisBackend['log']>): Promise<StreamPosition> {
    const slot = this.backend.keys.channel(cmd.channel).slot;
    const position = await this.scripts.run('channelPublish', { ...cmd, log: log.target(cmd.channel, slot) });
    log.written(slot);
    return position;
  }

  read(cmd: ReadCommand): Promise<ReadResult> {
    return this.scripts.run('channelRead', cmd);
  }

  /** Deletes the stream; the meta record (epoch, newest offset) stays, as Centrifugo's `history_remove`. */
  async removeHistory(channel: Channel): Promise<void> {
    await this.redis.del(this.backend.keys.channel(channel).stream);
  }

  /** One SSUBSCRIBE per channel on the backend's shared subscriber connection; the node's channel feeds call this once per channel. */
  async subscribe(channel: Channel, deliver: (p: ChannelPublication) => void): Promise<() => Promise<void>> {
    const pubsub = this.backend.keys.channel(channel).pubsub;
    return this.backend.subscribe(pubsub, (message) => {
      const p = decodeMessage(channel, message);
      if (p) deliver(p);
      else this.logger.error({ channel, message: message.slice(0, 100) }, 'unparseable channel publication');
    });
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  isUnavailable(err: unknown): boolean {
    return isConnectionError(err);
  }

  /**
   * The subscriber connection is back after a drop (messages published
   * meanwhile are lost to this node), or Redis restarted or failed over
   * (RedisBackend.onReset): the feeds check every position.
   */
  onResync(listener: () => void): () => void {
    const offState = this.backend.onSubscriberState((state) => {
      if (state === 'up') listener();
    });
    const offReset = this.backend.onReset(() => listener());
    return () => {
      offState();
      offReset();
    };
  }

  async close(): Promise<void> {
    if (this.ownsBackend) await this.backend.close();
  }
}

/** `__p1:<offset>:<epoch>__<payload>` → a publication (offset 0: one without history); undefined when the message is not one. */
export function decodeMessage(channel: Channel, message: string): ChannelPublication | undefined {
  if (!message.startsWith('__p1:')) return undefined;
  const colon = message.indexOf(':', 5);
  const end = message.indexOf('__', colon + 1);
  if (colon < 0 || end < 0) return undefined;
  const offset = Number(message.slice(5, colon));
  if (!Number.isSafeInteger(offset) || offset < 0 || colon === 5) return undefined;
  let body: PublicationBody;
  try {
    body = JSON.parse(message.slice(end + 2)) as PublicationBody;
  } catch {
    return undefined;
  }
  // One object, built in one go: the node's feed, every subscriber and the once-per-node encoding share it.
  const p: ChannelPublication = { channel, epoch: message.slice(colon + 1, end), offset, data: body.data };
  if (body.info !== undefined) p.info = body.info;
  if (body.tags !== undefined) p.tags = body.tags;
  return p;
}
