/**
 * A small parser of the Prometheus text exposition format (version 0.0.4),
 * enough to check what `/metrics` says: `# TYPE` lines and samples with
 * their labels. Anything it does not understand throws, so a malformed
 * exposition fails the test that reads it.
 */
import type { TestProcess } from './process.js';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: PromSample[];
  /** Declared type by metric family name. */
  types: Map<string, string>;
  /** The sum of the samples named `name` whose labels include `labels` (0 when none). */
  value(name: string, labels?: Record<string, string>): number;
  /** Whether any sample is named `name` (with `labels`, if given). */
  has(name: string, labels?: Record<string, string>): boolean;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (!match) throw new Error(`bad labels at ${at} in: ${line}`);
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function parseValue(text: string, line: string): number {
  // Prometheus parses values as Go's ParseFloat does: Inf and NaN in any case (prom-client writes "Nan").
  if (/^\+?inf$/i.test(text)) return Infinity;
  if (/^-inf$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`bad value in: ${line}`);
  return value;
}

export function parseExposition(text: string): Exposition {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      else if (!line.startsWith('# HELP ')) throw new Error(`bad comment line: ${line}`);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`bad sample line: ${line}`);
    samples.push({ name: match[1]!, labels: match[2] ? parseLabels(match[2], line) : {}, value: parseValue(match[3]!, line) });
  }
  const matching = (name: string, labels: Record<string, string> = {}): PromSample[] =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    samples,
    types,
    value: (name, labels) => matching(name, labels).reduce((sum, s) => sum + s.value, 0),
    has: (name, labels) => matching(name, labels).length > 0,
  };
}

/** GETs http://127.0.0.1:port/metrics and parses it; throws unless it is a 200 in the text format. */
export async function scrape(port: number, host = '127.0.0.1'): Promise<Exposition> {
  const response = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`GET /metrics: content type ${type}`);
  return parseExposition(await response.text());
}

/** The port of a muxtun process's metrics endpoint (`--metrics`), from its log line. */
export async function metricsPort(process: TestProcess): Promise<number> {
  const entry = await process.waitForLog('serving Prometheus metrics');
  const match = /^127\.0\.0\.1:(\d+)$/.exec(String(entry.address));
  if (!match) throw new Error(`metrics address ${String(entry.address)}`);
  return Number(match[1]);
}
