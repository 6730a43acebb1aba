import { LIMITS, PresenceError, type ConnId, type PresenceEvent, type RoomId, type RoomSnapshot } from 'realtime-message-protocol';
import type { Clock } from '../shared/clock.js';
import type { Unsubscribe } from '../shared/hub.js';
import type { Logger } from '../shared/logger.js';
import type { PresenceEngine, RoomFeedItem } from './engine.js';

// The options, results and Hub topics of the presence service (service.ts).

/** The topics the presence capability registers in a node's Hub. */
export type PresenceTopics = {
  presence: RoomFeedItem;
  /** Every presence event of every room (one topic, id `*`). */
  'presence-all': PresenceEvent;
  /** Every leave of every room (id `*`). */
  'presence-leaves': PresenceEvent;
};

/** The kinds of {@link PresenceTopics}. */
export const PRESENCE_KINDS = ['presence', 'presence-all', 'presence-leaves'] as const;

/** The part of a node's {@link Hub} presence needs (a Hub of more kinds fits). */
export interface PresenceHub {
  subscribe(kind: 'presence', id: string, listener: (item: RoomFeedItem) => void): Promise<Unsubscribe>;
  subscribe(kind: 'presence-all' | 'presence-leaves', id: string, listener: (event: PresenceEvent) => void): Promise<Unsubscribe>;
  /** Ends every subscription of these kinds (when the presence service stops). */
  closeKinds(kinds: ReadonlyArray<(typeof PRESENCE_KINDS)[number]>): Promise<void>;
}

/** The Hub sources of the presence topics over one engine. */
export function presenceSources(engine: PresenceEngine) {
  return {
    presence: { subscribe: (id: string, deliver: (item: RoomFeedItem) => void) => engine.subscribe(id as RoomId, deliver) },
    'presence-all': { subscribe: (_id: string, deliver: (event: PresenceEvent) => void) => engine.subscribeAll(deliver) },
    'presence-leaves': {
      subscribe: (_id: string, deliver: (event: PresenceEvent) => void) =>
        engine.subscribeLeaves ? engine.subscribeLeaves(deliver) : engine.subscribeAll((event) => event.type === 'leave' && deliver(event)),
    },
  };
}

export interface PresenceOptions {
  /** Where presence lives: `new MemoryEngine()` or a Redis engine. */
  engine: PresenceEngine;
  /**
   * The node's Hub, shared with the other capabilities; its `presence` source
   * must be this engine. @default a Hub of its own over `engine`
   */
  hub?: PresenceHub;
  /** A connection is gone once this long passed since its last heartbeat. @default 30000 */
  ttlMs?: number;
  /** Period of the reaper that emits `leave` (reason `timeout`/`disconnect`). @default 3000 */
  reaperIntervalMs?: number;
  /** How long a left or expired connection's epoch record is kept (fencing, resume). @default 2 × ttlMs */
  reaperLookbackMs?: number;
  /** How long a connection stays present after a disconnect without leave; `0` = leave at once. @default 5000 */
  disconnectGraceMs?: number;
  /** Largest serialized state of one connection in UTF-8 bytes. @default 16384 */
  maxStateBytes?: number;
  /** Most leaves one engine reap call emits; a pass makes calls until nothing is due or one interval has passed. @default 1000 */
  reaperBatchSize?: number;
  /** Source of time. @default the system clock */
  clock?: Clock;
  /** Generator of new connection ids. @default crypto.randomUUID */
  generateConnId?: () => string;
  /** Structured logger (pino-compatible). @default silent */
  logger?: Logger;
  /** Called after every engine call with its duration; for metrics. */
  observe?: (op: EngineOp, durationMs: number, outcome: 'ok' | 'error') => void;
  /** Called after every reaper pass with what it did (leaves, rooms and slots visited, backlog, lag, duration), or its error; for metrics. */
  observeReap?: (result: ReapPassResult | { error: unknown }) => void;
}

/** What one reaper pass did and left; see {@link ReapResult} for the fields an engine reports. */
export interface ReapPassResult {
  /** Leave events the pass emitted. */
  leaves: number;
  /** Rooms the pass looked at (expired, forgotten or only re-scored). */
  visitedRooms: number;
  /** Index partitions visited (Redis: cluster slots); 0 for the memory engine. */
  visitedSlots: number;
  /** Due work left when the pass ended: 0 when the reaper keeps up. */
  backlog: number;
  /** How late the oldest due deadline left is (ms); 0 when the reaper keeps up. */
  lagMs: number;
  /** Wall time of the pass (ms). */
  durationMs: number;
}

export type EngineOp = 'join' | 'heartbeat' | 'leave' | 'disconnect' | 'snapshot' | 'subscribe' | 'publish' | 'reap';

export interface ResolvedPresenceOptions {
  ttlMs: number;
  reaperIntervalMs: number;
  reaperLookbackMs: number;
  disconnectGraceMs: number;
  maxStateBytes: number;
  reaperBatchSize: number;
}

export interface JoinResult {
  connId: ConnId;
  epoch: number;
  /** true when a live connection was resumed: other members saw no leave/join. */
  resumed: boolean;
  snapshot: RoomSnapshot;
  upToDate?: undefined;
}

/**
 * A join with `knownSeq` that resumed the live connection while nothing else
 * happened in the room since `knownSeq`: the caller's member list is current
 * but for the resume's own `update` (`seq`), so there is no snapshot.
 */
export interface JoinUpToDateResult {
  connId: ConnId;
  epoch: number;
  resumed: true;
  upToDate: true;
  /** The room's `seq` after the resume: `knownSeq + 1`. */
  seq: number;
  snapshot?: undefined;
}

/** A join made through a service instance on this node (see `PresenceService.onJoined`). */
export interface LocalJoin {
  roomId: string;
  userId: string;
  connId: string;
  /** The connection's epoch after the join. */
  epoch: number;
}

export interface WriteTarget {
  roomId: string;
  connId: string;
  /** The epoch the write was issued under. */
  epoch: number;
}

export type PresenceListener = (event: PresenceEvent) => void;

/** A write target whose ids and epoch passed the protocol schemas. */
export interface ParsedTarget {
  roomId: RoomId;
  connId: ConnId;
  epoch: number;
}

function positiveInt(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new PresenceError('invalid_payload', `${name} must be an integer >= ${min} (got ${String(value)})`);
  }
  return value;
}

export function resolvePresenceOptions(opts: Omit<PresenceOptions, 'engine'>): ResolvedPresenceOptions {
  const ttlMs = positiveInt('ttlMs', opts.ttlMs ?? 30_000, 1);
  const resolved: ResolvedPresenceOptions = {
    ttlMs,
    reaperIntervalMs: positiveInt('reaperIntervalMs', opts.reaperIntervalMs ?? 3_000, 1),
    reaperLookbackMs: positiveInt('reaperLookbackMs', opts.reaperLookbackMs ?? 2 * ttlMs, 1),
    disconnectGraceMs: positiveInt('disconnectGraceMs', opts.disconnectGraceMs ?? 5_000, 0),
    maxStateBytes: positiveInt('maxStateBytes', opts.maxStateBytes ?? LIMITS.defaultMaxStateBytes, 2),
    reaperBatchSize: positiveInt('reaperBatchSize', opts.reaperBatchSize ?? 1_000, 1),
  };
  return resolved;
}

