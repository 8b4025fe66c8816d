import type { Session } from '../muxado/index.js';
import type { ClientControl } from './client-handshake.js';
import type { ServerMessage } from './control-messages.js';
import { TunnelErrorCode } from './errors.js';
import type { ForwardSpec } from './forward.js';

/** What the server answered for one -R forward (`withdrawn`: the client removed it before an answer came). */
export type RemoteForwardResult =
  | { id: number; spec: ForwardSpec; ok: true; port: number }
  | { id: number; spec: ForwardSpec; ok: false; code: string; message: string; withdrawn?: true };

/** Tells a request in flight that the client removed one of its forwards: the server will not answer for it. */
export interface Withdrawals {
  on(event: 'withdrawn', listener: (id: number) => void): unknown;
  off(event: 'withdrawn', listener: (id: number) => void): unknown;
}

/**
 * Asks the server to listen for each -R forward and collects its answers.
 * `ports` holds, by forward id, the port a forward that asked for "any port"
 * got before: it asks for the same one again, so what users were told stays
 * true across reconnects; if that port is taken now, it asks for any port.
 * Resolves when every forward was answered or withdrawn, or the session ended.
 */
export function requestRemoteForwards(
  session: Session,
  control: ClientControl,
  forwards: ReadonlyArray<{ id: number; spec: ForwardSpec }>,
  ports: Map<number, number>,
  onRetryAnyPort?: (spec: ForwardSpec, lostPort: number) => void,
  withdrawals?: Withdrawals,
): Promise<RemoteForwardResult[]> {
  if (forwards.length === 0) return Promise.resolve([]);
  return new Promise((resolve) => {
    const byId = new Map(forwards.map((f) => [f.id, f.spec]));
    const answers = new Map<number, RemoteForwardResult>();
    const requested = new Map(forwards.map(({ id, spec }) => [id, ports.get(id) ?? spec.bindPort]));
    const finish = (): void => {
      control.off('message', onMessage);
      withdrawals?.off('withdrawn', onWithdrawn);
      resolve(forwards.map(({ id, spec }) => answers.get(id) ?? { id, spec, ok: false, code: TunnelErrorCode.SESSION_LOST, message: 'the session ended before the server answered' }));
    };
    const onMessage = (message: ServerMessage): void => {
      if (message.type !== 'listening' && message.type !== 'error') return;
      const id = message.id;
      const spec = id === undefined ? undefined : byId.get(id);
      if (id === undefined || spec === undefined || answers.has(id)) return;
      if (message.type === 'listening') {
        answers.set(id, { id, spec, ok: true, port: message.port });
        // A forward asked for "any port" keeps the one it got across reconnects.
        if (spec.bindPort === 0) ports.set(id, message.port);
      } else {
        const asked = requested.get(id)!;
        if (asked !== spec.bindPort && message.code === TunnelErrorCode.BIND) {
          onRetryAnyPort?.(spec, asked);
          ports.delete(id);
          requested.set(id, spec.bindPort);
          control.send({ type: 'listen', id, bindHost: spec.bindHost, port: spec.bindPort, ...(spec.dynamic === true ? { dynamic: true } : {}) });
          return;
        }
        answers.set(id, { id, spec, ok: false, code: message.code, message: message.message });
      }
      if (answers.size === forwards.length) finish();
    };
    // An unlisten of a listener still binding gets no answer at all: stop waiting for one.
    const onWithdrawn = (id: number): void => {
      const spec = byId.get(id);
      if (spec === undefined || answers.has(id)) return;
      answers.set(id, { id, spec, ok: false, code: TunnelErrorCode.FORWARD_FAILED, message: 'removed before the server answered', withdrawn: true });
      if (answers.size === forwards.length) finish();
    };
    control.on('message', onMessage);
    withdrawals?.on('withdrawn', onWithdrawn);
    void session.closed.then(finish);
    for (const { id, spec } of forwards) control.send({ type: 'listen', id, bindHost: spec.bindHost, port: requested.get(id)!, ...(spec.dynamic === true ? { dynamic: true } : {}) });
  });
}
