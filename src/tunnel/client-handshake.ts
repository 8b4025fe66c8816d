import { client as muxadoClient, type Session } from '../muxado/index.js';
import { connectTls } from '../tls/index.js';
import { dialTransport } from '../transport/index.js';
import type { ResolvedClientOptions } from './client-options.js';
import { ControlChannel } from './control-channel.js';
import { PROTOCOL_VERSION, StreamKind, validateServerMessage, type ClientMessage, type ServerMessage } from './control-messages.js';
import { TunnelError, TunnelErrorCode } from './errors.js';

export type ClientControl = ControlChannel<ServerMessage, ClientMessage>;

/** A session that passed the handshake: authenticated and welcomed (or resumed). Its control channel is held: release it once listening. */
export interface ClientSession {
  session: Session;
  control: ClientControl;
  sessionId: string;
  /** `resumed`: the server took the resume of `resume.resumeSession`; else a fresh session. */
  resumed: boolean;
  /** A fresh session that the server keeps for a resume: its secret and grace. */
  resume?: { secret: string; graceMs: number };
  /** The server certificate's fingerprint, and whether trust on first use just recorded it. */
  fingerprint: string;
  recorded: boolean;
  validTo: string;
}

const KNOWN_CODES = new Set<string>(Object.values(TunnelErrorCode));

/**
 * Dials the server (TLS with the trust check), starts a muxado session,
 * sends hello and waits for the welcome. Rejects with what went wrong:
 * the TLS layer's errors, or a TunnelError (refused, not a muxtun server).
 */
/** What a hello says about resuming: that this client can, and which session to resume (with this side's state). */
export interface HelloResume {
  resumeSession?: { sessionId: string; secret: string };
  /** Sent right after the hello when resuming: what this side received of each conn. */
  states?: ReadonlyArray<Extract<ClientMessage, { type: 'resume-state' }>>;
}

export async function clientHandshake(options: ResolvedClientOptions, clientId: string, resume?: HelloResume): Promise<ClientSession> {
  const { host, port, timings } = options;
  // A proxy or a WebSocket first, when there is one; the TLS inside it is the same.
  const via = await dialTransport(options.transport, timings.connectTimeoutMs);
  const connection = await connectTls({
    host,
    port,
    ...(via ? { socket: via } : {}),
    trust: options.trust,
    ...(options.servername ? { servername: options.servername } : {}),
    timeoutMs: timings.connectTimeoutMs,
  });
  connection.socket.on('error', () => {});
  const session = muxadoClient(connection.socket, options.session);
  const control: ClientControl = new ControlChannel<ServerMessage, ClientMessage>(session.open({ type: StreamKind.CONTROL }), validateServerMessage);
  control.send({
    type: 'hello',
    version: PROTOCOL_VERSION,
    token: options.token,
    clientId,
    ...(options.resume ? { resume: true } : {}),
    ...(resume?.resumeSession ? { resumeSession: resume.resumeSession } : {}),
  });
  if (resume?.resumeSession) for (const state of resume.states ?? []) control.send(state);
  try {
    const answer = await awaitWelcome(session, control, `${host}:${port}`, timings.handshakeTimeoutMs);
    return {
      session,
      control,
      sessionId: answer.sessionId,
      resumed: answer.type === 'resumed',
      ...(answer.type === 'welcome' && answer.resume ? { resume: answer.resume } : {}),
      fingerprint: connection.fingerprint,
      recorded: connection.recorded,
      validTo: connection.validTo,
    };
  } catch (error) {
    session.close();
    throw error;
  }
}

function awaitWelcome(session: Session, control: ClientControl, server: string, timeoutMs: number): Promise<Extract<ServerMessage, { type: 'welcome' | 'resumed' }>> {
  return new Promise((resolve, reject) => {
    const notMuxtun = (why: string): TunnelError => new TunnelError(TunnelErrorCode.HANDSHAKE, `${server} ${why}: is it a muxtun server?`);
    const done = (): void => {
      clearTimeout(timer);
      control.off('message', onMessage);
      control.off('invalid', onInvalid);
    };
    const timer = setTimeout(() => {
      done();
      reject(notMuxtun(`did not answer the muxtun handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: ServerMessage): void => {
      switch (message.type) {
        case 'welcome':
        case 'resumed':
          done();
          // Whatever follows (a resume's state) waits for the caller's listeners: it releases.
          control.hold();
          resolve(message);
          return;
        case 'error': {
          done();
          const code = KNOWN_CODES.has(message.code) ? (message.code as TunnelErrorCode) : TunnelErrorCode.PROTOCOL;
          reject(new TunnelError(code, `the server refused the connection: ${message.message}`));
          return;
        }
        default:
          return;
      }
    };
    const onInvalid = (error: TunnelError): void => {
      done();
      reject(notMuxtun(`sent something that is not a muxtun handshake (${error.message})`));
    };
    control.on('message', onMessage);
    control.on('invalid', onInvalid);
    void session.closed.then((end) => {
      done();
      // An error this side detected means the peer sent bytes that are not
      // muxado (an HTTPS or echo server): saying it hung up would mislead.
      const why =
        end.initiator === 'local' && end.error
          ? `answered with something that is not the muxtun protocol (${end.error.message})`
          : `closed the connection during the handshake${end.error ? ` (${end.error.message})` : ''}`;
      reject(notMuxtun(why));
    });
  });
}
