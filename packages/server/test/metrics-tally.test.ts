import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PresenceMetrics } from '../src/observability/metrics.js';
import { CellHistogram, TallySet } from '../src/observability/tally.js';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** Observations on and between the bounds, below the first and above the last. */
const SAMPLES = [0, 0.00005, 0.0001, 0.00011, 0.0003, 0.001, 0.0042, 0.005, 0.02, 0.3, 1, 1.5, 7, 0.0009, 0.049];

describe('CellHistogram', () => {
  it('reads exactly as a prom-client histogram fed the same observations (text and JSON)', async () => {
    const plainRegistry = new Registry();
    const cellRegistry = new Registry();
    const plain = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['op', 'outcome'], buckets: BUCKETS, registers: [plainRegistry] });
    const cells = new CellHistogram({ name: 'h_seconds', help: 'h', labelNames: ['op', 'outcome'], buckets: BUCKETS, registers: [cellRegistry] });
    const series = [
      { op: 'join', outcome: 'ok' },
      { op: 'heartbeat', outcome: 'ok' },
      { op: 'join', outcome: 'error' },
    ] as const;
    const cellOf = series.map((labels) => cells.cell(labels));
    for (let i = 0; i < 300; i++) {
      const s = i % series.length;
      const v = SAMPLES[(i * 7) % SAMPLES.length]!;
      plain.observe(series[s]!, v);
      cellOf[s]!.observe(v);
    }
    expect(await cellRegistry.metrics()).toBe(await plainRegistry.metrics());
    expect(await cellRegistry.getMetricsAsJSON()).toEqual(await plainRegistry.getMetricsAsJSON());
    expect(await cellRegistry.metrics()).toContain('h_seconds_bucket{le="0.005",op="join",outcome="ok"}');
  });

  it('lists a series only once observed, reads the same twice, and reset() empties the cells', async () => {
    const registry = new Registry();
    const h = new CellHistogram({ name: 'r_seconds', help: 'r', labelNames: ['op'], buckets: [0.1, 1], registers: [registry] });
    const idle = h.cell({ op: 'idle' });
    const busy = h.cell({ op: 'busy' });
    busy.observe(0.5);
    busy.observe(2);
    const first = await registry.metrics();
    expect(first).toContain('r_seconds_bucket{le="1",op="busy"} 1');
    expect(first).toContain('r_seconds_bucket{le="+Inf",op="busy"} 2');
    expect(first).toContain('r_seconds_sum{op="busy"} 2.5');
    expect(first).not.toContain('op="idle"');
    expect(await registry.metrics()).toBe(first);
    h.reset();
    expect(await registry.metrics()).not.toContain('op="busy"');
    idle.observe(0.05);
    expect(await registry.metrics()).toContain('r_seconds_count{op="idle"} 1');
  });
});

describe('TallySet', () => {
  it('adds its tallies to the counter when read, once, beside the counter’s own inc', async () => {
    const registry = new Registry();
    const set = new TallySet<'outcome'>();
    const counter: Counter<'outcome'> = new Counter({ name: 't_total', help: 't', labelNames: ['outcome'], registers: [registry], collect: () => set.flush(counter) });
    const ok = set.of({ outcome: 'ok' });
    expect(set.of({ outcome: 'ok' })).toBe(ok);
    for (let i = 0; i < 5; i++) ok.inc();
    set.of({ outcome: 'no' }).inc(3);
    counter.inc({ outcome: 'ok' }, 2);
    const text = await registry.metrics();
    expect(text).toContain('t_total{outcome="ok"} 7');
    expect(text).toContain('t_total{outcome="no"} 3');
    // Read again with nothing new: not counted twice.
    expect(await registry.metrics()).toBe(text);
    ok.inc();
    expect(await registry.metrics()).toContain('t_total{outcome="ok"} 8');
  });
});

describe('PresenceMetrics hot-path counts', () => {
  it('show in the registry with their labels', async () => {
    const m = new PresenceMetrics();
    m.tallies.joined.inc();
    m.tallies.joined.inc();
    m.tallies.resumed.inc();
    m.tallies.leaves.inc();
    m.leaves.inc({ reason: 'timeout' }, 4);
    m.heartbeatsOk.inc();
    m.tallies.fanout.inc(10);
    m.tallies.messages.inc();
    m.tallies.statusEvents.inc();
    m.eventReceived('join');
    m.eventReceived('join');
    m.eventReceived('leave');
    m.observeEngine('join', 'ok', 0.3);
    m.observeEngine('join', 'ok', 3);
    m.observeEngine('join', 'error', 30);
    const text = await m.registry.metrics();
    for (const line of [
      'rm_joins_total{outcome="joined"} 2',
      'rm_joins_total{outcome="resumed"} 1',
      'rm_leaves_total{reason="leave"} 1',
      'rm_leaves_total{reason="timeout"} 4',
      'rm_heartbeats_total{outcome="ok"} 1',
      'rm_event_fanout_total 10',
      'rm_messages_total 1',
      'rm_status_events_total 1',
      'rm_presence_events_total{type="join"} 2',
      'rm_presence_events_total{type="leave"} 1',
      'rm_engine_latency_seconds_bucket{le="0.0005",op="join",outcome="ok"} 1',
      'rm_engine_latency_seconds_bucket{le="0.005",op="join",outcome="ok"} 2',
      'rm_engine_latency_seconds_count{op="join",outcome="ok"} 2',
      'rm_engine_latency_seconds_bucket{le="0.025",op="join",outcome="error"} 0',
      'rm_engine_latency_seconds_bucket{le="0.05",op="join",outcome="error"} 1',
    ]) {
      expect(text).toContain(line);
    }
  });
});
