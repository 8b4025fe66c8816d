/** Limits of `serve`, all finite. */
export interface ServerLimits {
  /** TLS handshake plus hello must finish within this many ms. */
  handshakeTimeoutMs: number;
  /** Connections that have not authenticated yet, at once. */
  maxUnauthenticated: number;
  /** Authenticated client sessions at once. */
  maxSessions: number;
  /** -R listeners one client may hold. */
  maxRemoteListeners: number;
  /** Streams open at once per session and side. */
  maxStreams: number;
  /** A forward stream's header must arrive within this many ms. */
  headerTimeoutMs: number;
  /** Dialling a -L target must succeed within this many ms. */
  dialTimeoutMs: number;
  /** Close forwarded connections idle for this many ms; 0 turns it off. */
  idleTimeoutMs: number;
}

export const defaultServerLimits: Readonly<ServerLimits> = Object.freeze({
  handshakeTimeoutMs: 5_000,
  maxUnauthenticated: 64,
  maxSessions: 1_000,
  maxRemoteListeners: 32,
  maxStreams: 10_000,
  headerTimeoutMs: 5_000,
  dialTimeoutMs: 10_000,
  idleTimeoutMs: 0,
});
