/**
 * Human output of the control commands: aligned tables and short lines.
 * `--json` bypasses all of this and prints the result as the socket gave it.
 */
import type { ConnectStatus, ForwardStatus, ServeStatus, ServerSessionStatus, StatusResult } from '../control/index.js';

/** `3.0 MiB`: binary units, one decimal above bytes. */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (!(bytes >= 1024)) return `${bytes} B`;
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `45s`, `3m12s`, `1h05m`, `2d03h`: two units at most, like `uptime`. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${two(Math.floor(seconds / 60) % 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${two(Math.floor(seconds / 3600) % 24)}h`;
}

/** The last heartbeat's round trip, and the smallest so far when it differs (the rest was queueing). */
function formatRtt(rttMs: number | undefined, minRttMs?: number): string {
  if (rttMs === undefined) return '-';
  const ms = (value: number): number => Number(value.toFixed(1));
  return minRttMs === undefined || ms(minRttMs) === ms(rttMs) ? `${ms(rttMs)} ms` : `${ms(rttMs)} ms (min ${ms(minRttMs)})`;
}

/** What a peer sent is shown, never obeyed: control characters (terminal escapes) become '?'. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Rows padded into columns two spaces apart; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows].map((row) => row.map(clean));
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  return all.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

/** `-L 8080:localhost:80`; `-R 0.0.0.0:9000:localhost:3000,proxy-protocol=v2` when the target gets a PROXY header. */
export function forwardName(forward: Pick<ForwardStatus, 'kind' | 'spec' | 'proxyProtocol'>): string {
  return `-${forward.kind} ${forward.spec}${forward.proxyProtocol ? `,proxy-protocol=${forward.proxyProtocol}` : ''}`;
}

export function formatForwards(forwards: readonly ForwardStatus[]): string {
  if (forwards.length === 0) return 'no forwards';
  return table(
    ['ID', 'FORWARD', 'LISTENING', 'OPEN', 'TOTAL', 'IN', 'OUT'],
    forwards.map((forward) => [
      forward.id,
      forwardName(forward),
      forward.listening ?? '(not bound)',
      String(forward.connections),
      String(forward.connectionsTotal),
      formatBytes(forward.bytesIn),
      formatBytes(forward.bytesOut),
    ]),
  );
}

/** Sessions grouped by user (sorted by user, then age), one line each with its forwards. */
export function formatSessions(sessions: readonly ServerSessionStatus[]): string {
  if (sessions.length === 0) return 'no sessions';
  const sorted = [...sessions].sort((a, b) => (a.user ?? '').localeCompare(b.user ?? '') || b.ageMs - a.ageMs);
  return table(
    ['USER', 'SESSION', 'FROM', 'UP', 'RTT', 'STATE', 'FORWARDS'],
    sorted.map((session) => [
      session.user ?? '-',
      session.id,
      session.remoteAddress,
      formatAge(session.ageMs),
      formatRtt(session.rttMs, session.minRttMs),
      session.state,
      session.forwards.length === 0
        ? '-'
        : session.forwards.map((forward) => `${forwardName(forward)}${forward.listening ? ` (${forward.listening})` : ''}`).join(', '),
    ]),
  );
}

function formatConnectStatus(status: ConnectStatus): string {
  const session = status.session;
  const sessionLine =
    status.state === 'connected' && session !== undefined
      ? `session: ${session.id ? `${clean(session.id)} ` : ''}up ${formatAge(session.ageMs)}, rtt ${formatRtt(session.rttMs, session.minRttMs)}${session.resumes ? `, resumed ${session.resumes} time${session.resumes === 1 ? '' : 's'}` : ''}`
      : 'session: none (connecting)';
  return [clean(`connect pid ${status.pid} (muxtun ${status.version}) to ${status.server}`), sessionLine, formatForwards(status.forwards)].join('\n');
}

function formatServeStatus(status: ServeStatus): string {
  const count = status.sessions.length;
  return [
    clean(`serve pid ${status.pid} (muxtun ${status.version}) listening on ${status.listening.join(', ') || '(nothing)'}`),
    `${count} session${count === 1 ? '' : 's'}`,
    ...(count === 0 ? [] : [formatSessions(status.sessions)]),
  ].join('\n');
}

export function formatStatus(status: StatusResult): string {
  switch (status.kind) {
    case 'connect':
      return formatConnectStatus(status);
    case 'serve':
      return formatServeStatus(status);
  }
}
