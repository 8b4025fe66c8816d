import { TunnelError, TunnelErrorCode } from './errors.js';

/** One `--allow-local` pattern: host (`*` for any, `*.example.com` suffix) and port (`*`, a port or a range). */
export interface TargetPattern {
  host: string;
  ports: PortRange;
}

export interface PortRange {
  from: number;
  to: number;
}

/** What the server lets clients do. */
export interface ServerPolicy {
  /** Targets -L may reach; empty means anything. */
  allowLocal: TargetPattern[];
  /** Ports -R may bind. */
  allowRemote: PortRange[];
}

/** The default: -L to anywhere, -R to unprivileged ports. */
export const defaultPolicy: ServerPolicy = Object.freeze({
  allowLocal: [],
  allowRemote: [{ from: 1024, to: 65535 }],
});

function parsePort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new TunnelError(TunnelErrorCode.POLICY, `${what}: "${text}" is not a port number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new TunnelError(TunnelErrorCode.POLICY, `${what}: port ${port} is out of range 1-65535`);
  return port;
}

/** Parses `8000`, `8000-8100` or `*`. */
export function parsePortRange(text: string, what = 'port range'): PortRange {
  const trimmed = text.trim();
  if (trimmed === '*') return { from: 1, to: 65535 };
  const dash = trimmed.indexOf('-');
  if (dash < 0) {
    const port = parsePort(trimmed, what);
    return { from: port, to: port };
  }
  const from = parsePort(trimmed.slice(0, dash), what);
  const to = parsePort(trimmed.slice(dash + 1), what);
  if (from > to) throw new TunnelError(TunnelErrorCode.POLICY, `${what}: "${text}" starts after it ends`);
  return { from, to };
}

/** Parses `host:port`, `host:*`, `*:443`, `*.internal:8000-9000`, `[::1]:80`. */
export function parseTargetPattern(text: string): TargetPattern {
  return parseTargetPatternOf('--allow-local', text);
}

/** The same, for a flag other than serve's --allow-local (connect's --allow-target), named in errors. */
export function parseTargetPatternOf(flag: string, text: string): TargetPattern {
  const what = `${flag} "${text}"`;
  const colon = text.lastIndexOf(':');
  if (colon <= 0) throw new TunnelError(TunnelErrorCode.POLICY, `${what}: expected HOST:PORT (use * for any host or port)`);
  let host = text.slice(0, colon).toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, ports: parsePortRange(text.slice(colon + 1), what) };
}

function hostMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return h.endsWith(pattern.slice(1));
  return pattern === h;
}

const inRange = (range: PortRange, port: number): boolean => port >= range.from && port <= range.to;

/** Why a -L (or -D, -W) target is refused, or null if allowed; `what` names the patterns in the reason. */
export function checkLocalTarget(policy: ServerPolicy, host: string, port: number, what = "the server's --allow-local"): string | null {
  return checkTarget(policy.allowLocal, host, port, what);
}

/** Why `host:port` is outside `patterns` (named `what` in the reason), or null if allowed; no patterns allow anything. */
export function checkTarget(patterns: readonly TargetPattern[], host: string, port: number, what: string): string | null {
  if (patterns.length === 0) return null;
  if (patterns.some((p) => hostMatches(p.host, host) && inRange(p.ports, port))) return null;
  return `${what} does not include ${host}:${port}`;
}

/** Why a -R port is refused, or null if allowed. Port 0 (any free port) is allowed when any range is. `what` names the ranges in the reason. */
export function checkRemotePort(policy: ServerPolicy, port: number, what = "the server's --allow-remote"): string | null {
  if (port === 0 ? policy.allowRemote.length > 0 : policy.allowRemote.some((r) => inRange(r, port))) return null;
  const allowed = policy.allowRemote.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(', ') || 'none';
  return `${what} does not include port ${port} (allowed: ${allowed})`;
}

