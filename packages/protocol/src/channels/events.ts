import type { ErrorAck } from '../errors/registry.js';
import type { JsonValue } from '../shared/json.js';
import type { ChannelPublication, Publication, StreamPosition } from './types.js';

/** Socket.IO event names of the channels protocol (SPEC §8, docs/protocol.md). */
export const CHANNEL_EVENTS = {
  subscribe: 'channel:subscribe',
  unsubscribe: 'channel:unsubscribe',
  publish: 'channel:publish',
  history: 'channel:history',
  publication: 'channel:publication',
  resubscribe: 'channel:resubscribe',
  unsubscribed: 'channel:unsubscribed',
} as const;

/** `channel:subscribe`: with `since`, the publications after it are recovered. */
export interface ChannelSubscribeRequest {
  channel: string;
  since?: StreamPosition;
}

export interface ChannelUnsubscribeRequest {
  channel: string;
}

export interface ChannelPublishRequest {
  channel: string;
  data: JsonValue;
  tags?: Record<string, string>;
}

export interface ChannelHistoryRequest {
  channel: string;
  since?: StreamPosition;
  /** 0 (the default): the position only; -1: as many as allowed. */
  limit?: number;
  reverse?: boolean;
}

/**
 * The answer to `channel:subscribe`. Without `since`: no publications,
 * `recovered: false`, and the stream position to keep. With `since`: the
 * missed publications in order and `recovered: true`, or none and
 * `recovered: false` when they cannot all be given (epoch changed, older
 * than the history): reload from your own source. `offset`/`epoch` is the
 * position once `publications` are applied; live `channel:publication`s
 * follow it without gap or duplicate.
 */
export type ChannelSubscribeAck =
  | { ok: true; channel: string; offset: number; epoch: string; recovered: boolean; publications: Publication[] }
  | ErrorAck;
export type ChannelUnsubscribeAck = { ok: true } | ErrorAck;
export type ChannelPublishAck = ({ ok: true } & StreamPosition) | ErrorAck;
export type ChannelHistoryAck = { ok: true; offset: number; epoch: string; publications: Publication[] } | ErrorAck;

/**
 * `channel:resubscribe`: the server ended this socket's subscription because
 * it could not guarantee the stream any more (a gap it could not fill, the
 * epoch changed, the stream went back). Subscribe again with the last
 * position you applied; the answer says whether everything was recovered.
 */
export interface ChannelResubscribeNotice {
  channel: string;
  reason: 'gap' | 'epoch_changed' | 'rewound';
}

/**
 * `channel:unsubscribed`: the server ended this socket's subscription on the
 * application's request (the server API's `unsubscribe`); do not subscribe
 * again on your own.
 */
export interface ChannelUnsubscribedNotice {
  channel: string;
  reason: 'server';
}

