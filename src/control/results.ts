/**
 * What each control method returns, as plain JSON-able objects. The socket
 * layer only carries them; `connect` and `serve` fill them from the tunnel
 * layer. Times are milliseconds, addresses `host:port` (`[v6]:port`), byte
 * counts whole numbers since the forward or session began.
 *
 * Fields may be added in later versions (scripts should ignore unknown
 * ones); none is removed or changes meaning without a new protocol version.
 */

/** Which command a running muxtun is. */
export type MuxtunKind = 'connect' | 'serve';

/** A forward's flag without the dash: -L, -R, -D. */
export type ForwardKind = 'L' | 'R' | 'D';

/** One forward of a `connect` (or, on `serve`, one a session asked for). */
export interface ForwardStatus {
  /** Stable for the life of the process; what `forward remove` takes. */
  id: string;
  kind: ForwardKind;
  /**
   * The spec in full, every default filled in, in the syntax of the command
   * line: `127.0.0.1:8080:localhost:80` for `-L 8080:localhost:80`,
   * `127.0.0.1:1080` for `-D 1080`, `0.0.0.0:9000` for a reverse dynamic -R.
   * `forward remove` takes it, or any spelling of the same forward. On
   * serve, -R forwards show only the part the server knows: `bind:port`.
   */
  spec: string;
  /**
   * Where its listener is bound, once it is: on this machine for -L and -D,
   * on the server for -R (the port the server chose when the spec said 0).
   * Absent while not bound (the session is down, or -R is not yet granted).
   */
  listening?: string;
  /** -R on connect: the PROXY protocol header (`v1`, `v2`) its target gets before the bytes; absent: none. */
  proxyProtocol?: 'v1' | 'v2';
  /** Connections through this forward open right now. */
  connections: number;
  /** Connections through this forward since it was set up. */
  connectionsTotal: number;
  /** Bytes received from the tunnel for this forward's connections (from the peer muxtun). */
  bytesIn: number;
  /** Bytes sent into the tunnel for this forward's connections (to the peer muxtun). */
  bytesOut: number;
}

/** The session of a `connect` to its server, while one is up. */
export interface ClientSessionStatus {
  /** The server's id for the session: what its `session list` shows and `session close` takes. */
  id?: string;
  /** When the current session began (ISO 8601); a resume keeps the session. */
  since: string;
  /** `now - since`, so scripts need no clock. */
  ageMs: number;
  /** Round-trip time the last heartbeat measured, once one has. */
  rttMs?: number;
  /** The smallest heartbeat round trip so far: the path's, without queueing (stream windows grow by it). */
  minRttMs?: number;
  /** Times the link dropped and the session resumed. */
  resumes?: number;
}

/** `status` of a `connect`. */
export interface ConnectStatus {
  kind: 'connect';
  pid: number;
  /** muxtun's version. */
  version: string;
  /** The server as given (`host:port` or a `wss://` URL). */
  server: string;
  /** `connected`: a session is up; `connecting`: none yet or reconnecting after a drop. */
  state: 'connected' | 'connecting';
  /** Absent while `state` is `connecting`. */
  session?: ClientSessionStatus;
  forwards: ForwardStatus[];
}

/** One client's session on a `serve`. */
export interface ServerSessionStatus {
  /** What `session close` takes. */
  id: string;
  /** The user the client authenticated as (`users` file), or absent with the single shared token. */
  user?: string;
  /** The client's address as this server sees it (while detached: where it was last). */
  remoteAddress: string;
  /** When the session began (ISO 8601). */
  since: string;
  ageMs: number;
  rttMs?: number;
  minRttMs?: number;
  /** `detached`: the link dropped and the session waits to be resumed. */
  state: 'active' | 'detached';
  /** Forwarded connections open through the session now, both directions. */
  streams?: number;
  /** Its forwards: -R listeners on this server, and the -L/-D traffic it sent through. */
  forwards: ForwardStatus[];
}

/** `status` of a `serve`. */
export interface ServeStatus {
  kind: 'serve';
  pid: number;
  version: string;
  /** The addresses the server listens on for clients. */
  listening: string[];
  sessions: ServerSessionStatus[];
}

/** `status`: a tagged union, narrow on `kind`. */
export type StatusResult = ConnectStatus | ServeStatus;

/** `forward.list` */
export interface ForwardListResult {
  forwards: ForwardStatus[];
}

/** `session.list` */
export interface SessionListResult {
  sessions: ServerSessionStatus[];
}

/** `forward.add` and `forward.remove`: the forward added (with its id and, once bound, where it listens) or removed. */
export interface ForwardChangeResult {
  forward: ForwardStatus;
}

/** `session.close` */
export interface SessionCloseResult {
  /** The session closed. */
  session: ServerSessionStatus;
}
