import { PresenceError, type ErrorCode } from '../errors/registry.js';

/**
 * Why a channel request failed, where the registry code alone is not precise
 * enough for Centrifugo's client protocol (which has its own codes for
 * these). Each reason travels under an existing registry code, so clients
 * that only know the registry handle it; the Centrifugo codec answers the
 * reason's own code.
 *
 * (The registry could gain `unknown_channel`, `not_available` and
 * `unrecoverable_position` as codes of their own; the SDK's error policy is
 * exhaustive over the registry, so that waits for an SDK change.)
 */
export const CHANNEL_ERROR_REASONS = {
  /** The channel's namespace is not configured. Centrifugo 102 "unknown channel". */
  unknown_channel: { code: 'invalid_payload', centrifugo: 102 },
  /** The namespace has the feature off (history, presence). Centrifugo 108 "not available". */
  not_available: { code: 'forbidden', centrifugo: 108 },
  /**
   * A `since` position that is not in this channel's stream: another epoch
   * (the history was lost) or ahead of the newest offset. Centrifugo 112
   * "unrecoverable position".
   */
  unrecoverable_position: { code: 'stale_epoch', centrifugo: 112 },
} as const satisfies Record<string, { code: ErrorCode; centrifugo: number }>;

export type ChannelErrorReason = keyof typeof CHANNEL_ERROR_REASONS;

/**
 * A channel failure with a {@link ChannelErrorReason} beside its registry
 * code. Serialises to `{ code, reason, message }`.
 * @example throw new ChannelError('unknown_channel', "namespace 'news' is not configured")
 */
export class ChannelError extends PresenceError {
  constructor(
    readonly reason: ChannelErrorReason,
    message: string,
    options?: { cause?: unknown; code?: ErrorCode },
  ) {
    super(options?.code ?? CHANNEL_ERROR_REASONS[reason].code, message, options);
  }

  /** Centrifugo's client error code for this failure. */
  get centrifugoCode(): number {
    return CHANNEL_ERROR_REASONS[this.reason].centrifugo;
  }

  override toJSON(): { code: ErrorCode; message: string; reason: ChannelErrorReason } {
    return { code: this.code, message: this.message, reason: this.reason };
  }
}
