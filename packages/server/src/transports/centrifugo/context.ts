import type { ChannelService } from '../../core/channels/service.js';
import type { PresenceService } from '../../core/presence/service.js';
import type { LogSummary } from '../../core/shared/log-summary.js';
import type { Logger } from '../../core/shared/logger.js';
import type { Extensions } from '../../extensions/extension.js';
import type { CentrifugoTokenVerifier } from './tokens.js';

/** The limits and timings of the Centrifugo endpoint; each is an option of {@link attachCentrifugo} with Centrifugo's default. */
export interface CentrifugoLimits {
  /** Largest incoming WebSocket message; a larger one closes the connection with 1009. @default 65536 (Centrifugo's websocket.message_size_limit) */
  maxMessageBytes: number;
  /** Bytes waiting to be sent to one connection beyond which it is closed with 3008 "slow". @default 1048576 (client.queue_max_size) */
  maxOutboundBytes: number;
  /** Server ping period (`{}`); 0 disables pings. @default 25000 (client.ping_interval) */
  pingIntervalMs: number;
  /** How long a ping may go unanswered before 3012 "no pong". @default 8000 (client.pong_timeout) */
  pongTimeoutMs: number;
  /** A connection without a successful connect is closed with 3502 "stale" after this. @default 10000 (client.stale_close_delay) */
  staleCloseDelayMs: number;
  /** An expired connection (or server-side subscription) not refreshed within this is closed with 3005 (3006). @default 25000 (client.expired_close_delay) */
  expiredCloseDelayMs: number;
  /** Most channels one connection may be subscribed to (106; 3505 for server-side ones at connect). @default 128 (client.channel_limit) */
  maxChannelsPerConnection: number;
  /** Commands of one connection queued before the endpoint stops reading from it (back-pressure). @default 256 */
  maxQueuedCommands: number;
  /** Largest history `limit`; larger ones are capped, as Centrifugo does. @default 300 (client.history_max_publication_limit) */
  historyMaxLimit: number;
}

export const DEFAULT_LIMITS: CentrifugoLimits = {
  maxMessageBytes: 65_536,
  maxOutboundBytes: 1_048_576,
  pingIntervalMs: 25_000,
  pongTimeoutMs: 8_000,
  staleCloseDelayMs: 10_000,
  expiredCloseDelayMs: 25_000,
  maxChannelsPerConnection: 128,
  maxQueuedCommands: 256,
  historyMaxLimit: 300,
};

/** What every connection of one endpoint shares. */
export interface EndpointContext {
  channels: ChannelService;
  presence: PresenceService;
  extensions: Extensions;
  /** Verifies Centrifugo JWTs; undefined when the server has no token keys (a token is then refused with 3500). */
  tokens: CentrifugoTokenVerifier | undefined;
  limits: CentrifugoLimits;
  /** The server version in connect replies. */
  version: string;
  logger: Logger;
  /** Failures that come in bursts, logged once per kind then summarised. */
  problems: LogSummary;
  /** True once the endpoint is closing. */
  closing(): boolean;
}
