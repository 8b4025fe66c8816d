/**
 * Metrics whose values are read at scrape time from the tunnel layer's
 * counters (src/tunnel/tunnel-stats.ts), not kept in prom-client objects:
 * the data path never touches this module. prom-client's Registry renders
 * any metric by its `name`, `help`, `type` and `get()`; a histogram whose
 * buckets the tunnel counted itself has no other way in, so every metric
 * here takes that one road.
 */
import type { Metric, Registry } from 'prom-client';

/** One sample: its labels and value (a histogram's `_bucket`, `_sum` and `_count` name themselves). */
export interface Sample {
  labels: Record<string, string>;
  value: number;
  metricName?: string;
}

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface CollectedMetric {
  name: string;
  help: string;
  type: MetricKind;
  /** Called at every scrape; keep it cheap. */
  read(): Sample[];
}

/** Registers `metric` in `registry`, read at each scrape. */
export function register(registry: Registry, metric: CollectedMetric): void {
  const rendered = {
    name: metric.name,
    help: metric.help,
    type: metric.type,
    aggregator: 'sum' as const,
    get: async () => ({ name: metric.name, help: metric.help, type: metric.type, aggregator: 'sum' as const, values: metric.read() }),
    reset: () => undefined,
  };
  // See the file header: the Registry's contract is the shape above, not the class.
  registry.registerMetric(rendered as unknown as Metric);
}

/** The samples of a histogram from cumulative bucket counts (tunnel-stats DialTimesSnapshot). */
export function histogramSamples(name: string, labels: Record<string, string>, bounds: readonly number[], snapshot: { buckets: number[]; count: number; sumSeconds: number }): Sample[] {
  const samples: Sample[] = bounds.map((bound, i) => ({ metricName: `${name}_bucket`, labels: { ...labels, le: String(bound) }, value: snapshot.buckets[i] ?? 0 }));
  samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: snapshot.count });
  samples.push({ metricName: `${name}_sum`, labels, value: snapshot.sumSeconds });
  samples.push({ metricName: `${name}_count`, labels, value: snapshot.count });
  return samples;
}
