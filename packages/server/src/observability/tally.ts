import { Histogram, type Counter, type HistogramConfiguration, type LabelValues } from 'prom-client';

/*
 * Counts and latencies of the hot paths (every heartbeat, join, leave,
 * delivery and engine call), kept as plain numbers and handed to prom-client
 * only when the registry is read. A prom-client `inc` validates and hashes
 * its labels on every call, labelled child or not (0.2-0.25 µs here), and a
 * histogram's `observe` does that and more (about 1.1 µs): per heartbeat
 * that was 3-6 % of the server's CPU. A tally is one addition; a cell of
 * {@link CellHistogram} a bucket search over a dozen bounds and three additions.
 */

/** A count on a hot path: one addition per event, added to its counter when the registry is read (see {@link TallySet}). */
export class Tally {
  n = 0;
  inc(by = 1): void {
    this.n += by;
  }
}

/**
 * The tallies of one prom-client counter, one per set of label values.
 * Pass `collect: () => set.flush(counter)` in the counter's configuration
 * (prom-client calls it before every read): the counter then shows every
 * tallied event, and its own `inc` keeps working beside the tallies.
 */
export class TallySet<T extends string> {
  private readonly tallies = new Map<string, { labels: LabelValues<T> | undefined; tally: Tally }>();

  /** The tally of these label values (none: the counter's unlabelled series); look it up once, not per event. */
  of(labels?: LabelValues<T>): Tally {
    const key = labels === undefined ? '' : JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let t = this.tallies.get(key);
    if (!t) this.tallies.set(key, (t = { labels, tally: new Tally() }));
    return t.tally;
  }

  /** Adds every tally to the counter and zeroes it. */
  flush(counter: Counter<T>): void {
    for (const { labels, tally } of this.tallies.values()) {
      if (tally.n === 0) continue;
      const n = tally.n;
      tally.n = 0;
      if (labels === undefined) counter.inc(n);
      else counter.inc(labels, n);
    }
  }
}

/** One series of a {@link CellHistogram}: counts per bucket (not cumulative), sum and count. */
export class HistogramCell {
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Readonly<Record<string, string | number>>,
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** The series as prom-client's histogram lists it for the text format: cumulative buckets, `+Inf`, sum, count. */
  values(name: string): PromStringValue[] {
    const out: PromStringValue[] = [];
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i]!;
      out.push({ labels: { le: this.bounds[i]! }, sharedLabels: this.labels, value: acc, metricName: `${name}_bucket`, exemplar: null });
    }
    // The same fields as prom-client's own values (no exemplars: null on buckets, absent on sum and count).
    out.push({ labels: { le: '+Inf' }, sharedLabels: this.labels, value: this.count, metricName: `${name}_bucket`, exemplar: null });
    out.push({ labels: {}, sharedLabels: this.labels, value: this.sum, metricName: `${name}_sum`, exemplar: undefined });
    out.push({ labels: {}, sharedLabels: this.labels, value: this.count, metricName: `${name}_count`, exemplar: undefined });
    return out;
  }
}

/** A value as prom-client's registry formats it: `labels` of the line, `sharedLabels` of the series. */
interface PromStringValue {
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string | number>>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

interface PromStringData {
  name: string;
  help: string;
  type: string;
  values: PromStringValue[];
  aggregator: string;
}

/**
 * A prom-client histogram whose hot series are {@link HistogramCell}s
 * (`cell(labels)`, created once per label set): the registry reads them
 * together with anything observed through prom-client's own `observe`
 * (use one or the other for a given label set). prom-client's `get()` and
 * its text output both go through `getForPromString`, which this extends;
 * `reset()` clears the cells too. The tests check the output equals a plain
 * prom-client histogram's for the same observations.
 */
export class CellHistogram<T extends string> extends Histogram<T> {
  private readonly cells: HistogramCell[] = [];
  private readonly bounds: readonly number[];
  private readonly metricName: string;

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    super(config);
    this.metricName = config.name;
    this.bounds = [...config.buckets].sort((a, b) => a - b);
  }

  /** The series of these label values; keep it and call its `observe` on the hot path. */
  cell(labels: Partial<Record<T, string | number>>): HistogramCell {
    const cell = new HistogramCell(this.bounds, labels as Record<string, string | number>);
    this.cells.push(cell);
    return cell;
  }

  override reset(): void {
    super.reset();
    // The base constructor resets before the cells exist.
    for (const c of this.cells ?? []) c.clear();
  }

  async getForPromString(): Promise<PromStringData> {
    const base = (Histogram.prototype as unknown as { getForPromString(this: Histogram<T>): Promise<PromStringData> }).getForPromString;
    const data = await base.call(this);
    for (const c of this.cells) if (c.count > 0) data.values.push(...c.values(this.metricName));
    return data;
  }
}
