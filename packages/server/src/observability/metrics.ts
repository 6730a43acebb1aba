import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReapPassResult } from '../core/presence/service.js';
import { CellHistogram, TallySet, type HistogramCell, type Tally } from './tally.js';

/** The Prometheus metrics of one presence runtime, in their own registry. */
export class PresenceMetrics {
  readonly registry: Registry;
  readonly connections: Gauge;
  readonly joins: Counter<'outcome'>;
  readonly leaves: Counter<'reason'>;
  readonly heartbeats: Counter<'outcome'>;
  readonly staleEpochs: Counter;
  readonly errors: Counter<'event' | 'code'>;
  readonly reaperRuns: Counter<'outcome'>;
  readonly reaperLeaves: Counter;
  readonly reaperPassDuration: Histogram;
  readonly reaperRoomsVisited: Counter;
  readonly reaperSlotsVisited: Counter;
  readonly reaperBacklog: Gauge;
  readonly reaperLag: Gauge;
  readonly eventsReceived: Counter<'type'>;
  readonly fanout: Counter;
  readonly messages: Counter;
  readonly engineLatency: CellHistogram<'op' | 'outcome'>;
  /** User status reads answered by the node-local cache. */
  readonly statusCacheHits: Counter;
  /** User status reads that went to the store. */
  readonly statusCacheMisses: Counter;
  /** Status events this node received (from every node). */
  readonly statusEvents: Counter;
  /** Watches (socket, user) held by sockets of this node (`status:subscribe`). */
  readonly statusWatches: Gauge;
  /**
   * The hot paths' counts, as tallies (one addition per event) added to
   * their counters when the registry is read (see tally.ts): prom-client's
   * own `inc` hashes its labels on every call. Code off the hot paths may
   * call the counters' `inc` as well.
   */
  readonly tallies: {
    /** `rm_heartbeats_total{outcome="ok"}`. */
    heartbeatsOk: Tally;
    /** `rm_joins_total` by outcome. */
    joined: Tally;
    resumed: Tally;
    /** `rm_leaves_total{reason="leave"}`. */
    leaves: Tally;
    /** `rm_event_fanout_total`. */
    fanout: Tally;
    /** `rm_messages_total`. */
    messages: Tally;
    /** `rm_status_events_total`. */
    statusEvents: Tally;
  };
  /** `rm_heartbeats_total{outcome="ok"}` (the same tally as `tallies.heartbeatsOk`). */
  readonly heartbeatsOk: Tally;
  private readonly eventTallies = new TallySet<'type'>();
  private readonly eventTypes = new Map<string, Tally>();
  private readonly latencyCells = new Map<string, HistogramCell>();

  constructor(opts: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    const registers = [(this.registry = opts.registry ?? new Registry())];
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.connections = new Gauge({ name: 'rm_connections', help: 'Open client connections on this node', registers });
    const joins = new TallySet<'outcome'>();
    this.joins = new Counter({ name: 'rm_joins_total', help: 'Successful presence:join requests by outcome (joined, resumed)', labelNames: ['outcome'], registers, collect: () => joins.flush(this.joins) });
    const leaves = new TallySet<'reason'>();
    this.leaves = new Counter({ name: 'rm_leaves_total', help: 'Leaves caused by this node, by reason (leave, disconnect, timeout: the reason presence events carry)', labelNames: ['reason'], registers, collect: () => leaves.flush(this.leaves) });
    const heartbeats = new TallySet<'outcome'>();
    this.heartbeats = new Counter({ name: 'rm_heartbeats_total', help: 'presence:heartbeat requests by outcome', labelNames: ['outcome'], registers, collect: () => heartbeats.flush(this.heartbeats) });
    this.staleEpochs = new Counter({ name: 'rm_stale_epoch_rejections_total', help: 'Writes refused because their epoch was not current', registers });
    this.errors = new Counter({ name: 'rm_errors_total', help: 'Failure acks by client event and code', labelNames: ['event', 'code'], registers });
    this.reaperRuns = new Counter({ name: 'rm_reaper_runs_total', help: 'Reaper passes on this node', labelNames: ['outcome'], registers });
    this.reaperLeaves = new Counter({ name: 'rm_reaper_leaves_total', help: 'Leaves (timeout or end of grace) emitted by this node\u2019s reaper', registers });
    this.reaperPassDuration = new Histogram({
      name: 'rm_reaper_pass_duration_seconds',
      help: 'Wall time of one reaper pass on this node (a pass is bounded by one reaper interval)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.reaperRoomsVisited = new Counter({ name: 'rm_reaper_rooms_visited_total', help: 'Rooms the reaper of this node looked at (expired, forgotten or only re-scored)', registers });
    this.reaperSlotsVisited = new Counter({ name: 'rm_reaper_slots_visited_total', help: 'Reaper index slots this node claimed and reaped (Redis engine)', registers });
    this.reaperBacklog = new Gauge({ name: 'rm_reaper_backlog', help: 'Due reaper work left after the last pass (Redis: due slots; memory: due entries); stays 0 while the reaper keeps up', registers });
    this.reaperLag = new Gauge({ name: 'rm_reaper_lag_seconds', help: 'How late the oldest due deadline was when the last pass ended; leaves arrive this much later than TTL + interval', registers });
    this.eventsReceived = new Counter({ name: 'rm_presence_events_total', help: 'Room feed items received by this node for rooms it serves, by type (join, update, leave, message)', labelNames: ['type'], registers, collect: () => this.eventTallies.flush(this.eventsReceived) });
    const fanout = new TallySet<never>();
    this.fanout = new Counter({ name: 'rm_event_fanout_total', help: 'Room feed deliveries (presence:event and presence:message) to local connections', registers, collect: () => fanout.flush(this.fanout) });
    const messages = new TallySet<never>();
    this.messages = new Counter({ name: 'rm_messages_total', help: 'Custom messages relayed', registers, collect: () => messages.flush(this.messages) });
    this.engineLatency = new CellHistogram({
      name: 'rm_engine_latency_seconds',
      help: 'Latency of presence engine calls',
      labelNames: ['op', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    // Read from the status cache's own counts when scraped (statusCacheSource): nothing per read.
    this.statusCacheHits = new Counter({ name: 'rm_status_cache_hits_total', help: 'User status reads answered by the node-local cache', registers, collect: () => this.syncCacheCount(this.statusCacheHits, 'hits') });
    this.statusCacheMisses = new Counter({ name: 'rm_status_cache_misses_total', help: 'User status reads that went to the status store', registers, collect: () => this.syncCacheCount(this.statusCacheMisses, 'misses') });
    const statusEvents = new TallySet<never>();
    this.statusEvents = new Counter({ name: 'rm_status_events_total', help: 'Status events received by this node (every change of every user, from every node)', registers, collect: () => statusEvents.flush(this.statusEvents) });
    this.statusWatches = new Gauge({ name: 'rm_status_watches', help: 'Status watches (socket, user) held by sockets of this node', registers });
    this.tallies = {
      heartbeatsOk: heartbeats.of({ outcome: 'ok' }),
      joined: joins.of({ outcome: 'joined' }),
      resumed: joins.of({ outcome: 'resumed' }),
      leaves: leaves.of({ reason: 'leave' }),
      fanout: fanout.of(),
      messages: messages.of(),
      statusEvents: statusEvents.of(),
    };
    this.heartbeatsOk = this.tallies.heartbeatsOk;
  }

  /** The status cache's counts since start, read when the metrics are scraped. */
  statusCacheSource: (() => { hits: number; misses: number }) | undefined;

  private syncCacheCount(counter: Counter, pick: 'hits' | 'misses'): void {
    const n = this.statusCacheSource?.()[pick] ?? 0;
    counter.reset();
    if (n > 0) counter.inc(n);
  }

  /** Records one engine call (a histogram cell per (op, outcome), found once). */
  observeEngine(op: string, outcome: 'ok' | 'error', durationMs: number): void {
    const key = outcome === 'ok' ? op : `${op}:error`;
    let cell = this.latencyCells.get(key);
    if (!cell) this.latencyCells.set(key, (cell = this.engineLatency.cell({ op, outcome })));
    cell.observe(durationMs / 1000);
  }

  /** Counts one room feed item received (`rm_presence_events_total{type}`). */
  eventReceived(type: string): void {
    let t = this.eventTypes.get(type);
    if (!t) this.eventTypes.set(type, (t = this.eventTallies.of({ type })));
    t.inc();
  }

  /** Records one reaper pass. */
  observeReap(result: ReapPassResult | { error: unknown }): void {
    if ('error' in result) {
      this.reaperRuns.inc({ outcome: 'error' });
      return;
    }
    this.reaperRuns.inc({ outcome: 'ok' });
    this.reaperPassDuration.observe(result.durationMs / 1000);
    if (result.visitedRooms > 0) this.reaperRoomsVisited.inc(result.visitedRooms);
    if (result.visitedSlots > 0) this.reaperSlotsVisited.inc(result.visitedSlots);
    this.reaperBacklog.set(result.backlog);
    this.reaperLag.set(result.lagMs / 1000);
    if (result.leaves > 0) {
      this.reaperLeaves.inc(result.leaves);
      this.leaves.inc({ reason: 'timeout' }, result.leaves);
    }
  }
}
