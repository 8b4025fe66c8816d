/**
 * What a running connect or serve answers on its control socket: the
 * tunnel's own APIs (TunnelClient's forwards, addForward, removeForward and
 * session; TunnelServer's sessions and closeSession) turned into the
 * protocol's result types (src/control/results.ts). Specs are read with the
 * parsers of -L, -R and -D, so a forward added here is checked exactly as on
 * the command line, and one named for removal may be spelt any way that
 * means the same forward.
 */
import type { AddressInfo } from 'node:net';
import {
  ControlError,
  ControlErrorCode,
  ControlNotFoundError,
  type ConnectStatus,
  type ControlHandlers,
  type ForwardKind,
  type ForwardStatus,
  type ServeStatus,
  type ServerSessionStatus,
} from '../control/index.js';
import { MuxtunError } from '../errors.js';
import type { DynamicSpec, ForwardInfo, ForwardSpec, SessionInfo, TunnelClient, TunnelServer } from '../tunnel/index.js';
import { errnoCode, errorMessage } from '../util/errors.js';
import { parseDynamicSpec, parseForwardSpec } from './forward-spec.js';

type TunnelKind = ForwardInfo['kind'];

const KIND: Readonly<Record<TunnelKind, ForwardKind>> = { local: 'L', remote: 'R', dynamic: 'D' };

/** `[v6]` in addresses, as on the command line. */
function hostText(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function addressText(address: Pick<AddressInfo, 'address' | 'port'>): string {
  return `${hostText(address.address)}:${address.port}`;
}

/** Heartbeat times to 0.01 ms: more digits would be noise. */
function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** A spec in full, defaults filled in: `127.0.0.1:8080:localhost:80`, `127.0.0.1:1080`; two specs are one forward when these are equal. */
export function specText(spec: ForwardSpec | DynamicSpec): string {
  const bind = `${hostText(spec.bindHost)}:${spec.bindPort}`;
  if (!('targetHost' in spec) || spec.dynamic === true) return bind;
  return `${bind}:${hostText(spec.targetHost)}:${spec.targetPort}`;
}

/** `text` read as a spec of `kind`, as connect reads -L, -R and -D; a bad one is the request's fault. */
function parseSpec(kind: ForwardKind, text: string): ForwardSpec | DynamicSpec {
  try {
    return kind === 'D' ? parseDynamicSpec(text) : parseForwardSpec(`-${kind}`, text);
  } catch (error) {
    throw new ControlError(ControlErrorCode.BAD_REQUEST, errorMessage(error));
  }
}

type Traffic = Pick<ForwardStatus, 'connections' | 'connectionsTotal' | 'bytesIn' | 'bytesOut'>;
const NO_TRAFFIC: Traffic = { connections: 0, connectionsTotal: 0, bytesIn: 0, bytesOut: 0 };

/** Connection and byte counts out of a tunnel-stats snapshot (a forward with none yet: zeros). */
function traffic(snapshot: Traffic | undefined): Traffic {
  if (!snapshot) return NO_TRAFFIC;
  const { connections, connectionsTotal, bytesIn, bytesOut } = snapshot;
  return { connections, connectionsTotal, bytesIn, bytesOut };
}

/** One forward of a connect as the protocol shows it; a -R listens on the server, at the port the server bound. */
export function forwardStatus(forward: ForwardInfo, stats?: Traffic): ForwardStatus {
  let listening: string | undefined;
  if (forward.kind === 'remote') {
    if (forward.state === 'listening' && forward.port !== null) listening = addressText({ address: forward.spec.bindHost, port: forward.port });
  } else if (forward.address !== null) {
    listening = addressText(forward.address);
  }
  const proxyProtocol = forward.kind === 'remote' ? forward.proxyProtocol : undefined;
  return {
    id: String(forward.id),
    kind: KIND[forward.kind],
    spec: specText(forward.spec),
    ...(listening !== undefined ? { listening } : {}),
    ...(proxyProtocol !== undefined ? { proxyProtocol } : {}),
    ...traffic(stats),
  };
}

/**
 * The forward `name` means: an id from `forward list`; else a spec, with
 * its flag (`-L 8080:localhost:80`) or without (then it must fit one forward
 * only), spelt any way connect would read as the same forward.
 */
export function findForward(forwards: readonly ForwardInfo[], name: string): ForwardInfo {
  const byId = forwards.find((forward) => String(forward.id) === name);
  if (byId) return byId;
  const flagged = /^-([LRD])\s+(\S+)$/.exec(name.trim());
  const text = flagged ? flagged[2]! : name.trim();
  if (flagged) parseSpec(flagged[1] as ForwardKind, text); // A malformed spec says why, rather than "not found".
  const matches = forwards.filter((forward) => {
    const kind = KIND[forward.kind];
    if (flagged && flagged[1] !== kind) return false;
    try {
      return specText(parseSpec(kind, text)) === specText(forward.spec);
    } catch {
      return false;
    }
  });
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new ControlNotFoundError(`no forward ${JSON.stringify(name)}: give an id or a spec from \`muxtun forward list\``);
  const which = matches.map((forward) => `-${KIND[forward.kind]} ${specText(forward.spec)} (id ${forward.id})`).join(' and ');
  throw new ControlError(ControlErrorCode.BAD_REQUEST, `${JSON.stringify(name)} could be ${which}: give the id, or the spec with -L, -R or -D`);
}

export interface ConnectControlOptions {
  client: TunnelClient;
  /** The server as given (credentials redacted). */
  server: string;
  version: string;
  /** connect -W: its one connection is the whole job, so status and list only. */
  fixedForwards?: boolean;
}

/** The handlers of a running connect: status and its forwards. */
export function connectControlHandlers({ client, server, version, fixedForwards = false }: ConnectControlOptions): ControlHandlers {
  const forwardsWithTraffic = (): ForwardStatus[] => {
    const stats = client.forwardStats();
    return client.forwards().map((forward) => forwardStatus(forward, stats.get(forward.id)));
  };
  const status = (): ConnectStatus => {
    const session = client.session();
    return {
      kind: 'connect',
      pid: process.pid,
      version,
      server,
      state: session ? 'connected' : 'connecting',
      ...(session
        ? {
            session: {
              id: session.id,
              since: session.since.toISOString(),
              ageMs: Date.now() - session.since.getTime(),
              ...(session.rttMs !== null ? { rttMs: roundMs(session.rttMs) } : {}),
              ...(session.minRttMs !== null ? { minRttMs: roundMs(session.minRttMs) } : {}),
              resumes: session.resumes,
            },
          }
        : {}),
      forwards: forwardsWithTraffic(),
    };
  };
  const handlers: ControlHandlers = {
    status,
    listForwards: () => ({ forwards: forwardsWithTraffic() }),
  };
  if (fixedForwards) return handlers;
  handlers.addForward = async ({ kind, spec: text }) => {
    const spec = parseSpec(kind, text);
    try {
      const added = kind === 'L' ? await client.addForward('local', spec as ForwardSpec) : kind === 'R' ? await client.addForward('remote', spec as ForwardSpec) : await client.addForward('dynamic', spec);
      return { forward: forwardStatus(added) };
    } catch (error) {
      // The refusal as connect -R would report it, naming the forward; its code (ERR_MUXTUN_POLICY, _BIND, _LIMIT) kept.
      const code = errnoCode(error);
      if (code === undefined || !(error instanceof Error)) throw error;
      throw new MuxtunError(code, `-${kind} ${specText(spec)}: ${error.message}`);
    }
  };
  handlers.removeForward = ({ forward: name }) => {
    const target = findForward(client.forwards(), name);
    // Read before the removal: a removed forward's counters go with it.
    const stats = client.forwardStats().get(target.id);
    const removed = client.removeForward(target.id);
    if (!removed) throw new ControlNotFoundError(`forward ${target.id} was removed meanwhile`);
    return { forward: forwardStatus(removed, stats) };
  };
  return handlers;
}

/** A prefix this long names a session when only one id starts with it (ids are UUIDs: the first group is enough). */
export const MIN_SESSION_PREFIX = 8;

/** The session `name` means: its id, or a unique prefix of it of {@link MIN_SESSION_PREFIX} characters or more. */
export function findSession(sessions: readonly SessionInfo[], name: string): SessionInfo {
  const exact = sessions.find((session) => session.sessionId === name);
  if (exact) return exact;
  const matches = name.length >= MIN_SESSION_PREFIX ? sessions.filter((session) => session.sessionId.startsWith(name)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new ControlError(ControlErrorCode.BAD_REQUEST, `${JSON.stringify(name)} is the start of ${matches.length} session ids: give more of it`);
  throw new ControlNotFoundError(`no session ${JSON.stringify(name)}: \`muxtun session list\` shows the ids`);
}

export interface ServeControlOptions {
  server: TunnelServer;
  version: string;
  /** Where the server listens for clients (TLS, WebSocket). */
  listening: readonly string[];
  /** With a users file sessions show their user; with the single shared token there is only the one. */
  namedUsers: boolean;
}

/** Why a session closed with no reason given is said to have closed. */
export const DEFAULT_CLOSE_REASON = 'closed by its operator (muxtun session close)';

/** The handlers of a running serve: status and its sessions. */
export function serveControlHandlers({ server, version, listening, namedUsers }: ServeControlOptions): ControlHandlers {
  const sessionStatus = (info: SessionInfo): ServerSessionStatus => ({
    id: info.sessionId,
    ...(namedUsers ? { user: info.user } : {}),
    remoteAddress: info.remote ?? info.lastRemote,
    since: info.since.toISOString(),
    ageMs: Date.now() - info.since.getTime(),
    ...(info.rttMs !== null ? { rttMs: roundMs(info.rttMs) } : {}),
    ...(info.minRttMs !== null ? { minRttMs: roundMs(info.minRttMs) } : {}),
    state: info.detached ? 'detached' : 'active',
    streams: info.streams,
    // The server knows a -R by where it listens; its target is the client's.
    forwards: info.listeners.map((listener) => ({
      id: String(listener.id),
      kind: 'R' as const,
      spec: `${hostText(listener.bindHost)}:${listener.requested}`,
      ...(listener.port !== null ? { listening: addressText({ address: listener.bindHost, port: listener.port }) } : {}),
      ...traffic(listener),
    })),
  });
  return {
    status: (): ServeStatus => ({ kind: 'serve', pid: process.pid, version, listening: [...listening], sessions: server.sessions().map(sessionStatus) }),
    listSessions: () => ({ sessions: server.sessions().map(sessionStatus) }),
    closeSession: ({ session: name, reason }) => {
      const target = findSession(server.sessions(), name);
      const closed = server.closeSession(target.sessionId, reason ?? DEFAULT_CLOSE_REASON);
      if (!closed) throw new ControlNotFoundError(`session ${target.sessionId} ended meanwhile`);
      return { session: sessionStatus(closed) };
    },
  };
}
