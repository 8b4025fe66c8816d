/**
 * A control socket with fake handlers, for the control socket's own tests
 * and the CLI's control commands: what a running connect or serve would
 * answer, without a tunnel. Closed with the test's scope.
 */
import { join } from 'node:path';
import { ControlServer, type ControlHandlers, type ControlLimits } from '../../src/control/control-server.js';
import type { ConnectStatus, ForwardStatus, MuxtunKind, ServeStatus, ServerSessionStatus } from '../../src/control/results.js';
import { tempDir } from './fs.js';
import { currentScope, type Scope } from './scope.js';

export interface FakeControlOptions {
  kind?: MuxtunKind;
  /** Socket path; default `<fresh temp dir>/ctl.sock`. */
  path?: string;
  limits?: Partial<ControlLimits>;
  onInternalError?: (error: unknown) => void;
  scope?: Scope;
}

/** Starts a {@link ControlServer} answering with `handlers`; closed when the scope closes. */
export async function startFakeControl(handlers: ControlHandlers, options: FakeControlOptions = {}): Promise<ControlServer> {
  const scope = options.scope ?? currentScope();
  const path = options.path ?? join(await tempDir('muxtun-ctl-', scope), 'ctl.sock');
  const server = await ControlServer.listen({
    path,
    kind: options.kind ?? 'connect',
    handlers,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.onInternalError ? { onInternalError: options.onInternalError } : {}),
  });
  scope.add(() => server.close());
  return server;
}

/** A promise with its resolve, for handlers a test holds open. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const forwardL: ForwardStatus = {
  id: '1',
  kind: 'L',
  spec: '8080:localhost:80',
  listening: '127.0.0.1:8080',
  connections: 2,
  connectionsTotal: 17,
  bytesIn: 3 * 1024 * 1024,
  bytesOut: 2048,
};

export const forwardR: ForwardStatus = {
  id: '2',
  kind: 'R',
  spec: '0:localhost:3000',
  listening: '0.0.0.0:41234',
  connections: 0,
  connectionsTotal: 1,
  bytesIn: 10,
  bytesOut: 20,
};

export const connectStatus: ConnectStatus = {
  kind: 'connect',
  pid: 4242,
  version: '0.1.0',
  server: 'tunnel.example.com:4443',
  state: 'connected',
  session: { since: '2026-01-01T00:00:00.000Z', ageMs: 192_000, rttMs: 12.5, minRttMs: 2.1, resumes: 1 },
  forwards: [forwardL, forwardR],
};

export const aliceSession: ServerSessionStatus = {
  id: 's-7f3a',
  user: 'alice',
  remoteAddress: '192.0.2.10:50123',
  since: '2026-01-01T00:00:00.000Z',
  ageMs: 3_600_000,
  rttMs: 30,
  minRttMs: 0.4,
  state: 'active',
  forwards: [{ ...forwardR, listening: '0.0.0.0:9000', spec: '9000:localhost:3000' }],
};

export const bobSession: ServerSessionStatus = {
  id: 's-0b0b',
  user: 'bob',
  remoteAddress: '[2001:db8::1]:40000',
  since: '2026-01-01T00:59:00.000Z',
  ageMs: 60_000,
  state: 'detached',
  forwards: [],
};

export const serveStatus: ServeStatus = {
  kind: 'serve',
  pid: 777,
  version: '0.1.0',
  listening: ['0.0.0.0:4443'],
  sessions: [aliceSession, bobSession],
};
