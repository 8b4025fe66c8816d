/**
 * The control socket of a running `connect` or `serve`: a Unix socket
 * (mode 0600) speaking the JSON-lines protocol of protocol.ts. It parses and
 * validates; what each request does is up to the {@link ControlHandlers}
 * the command gives it, so this module knows nothing of tunnels.
 *
 * Bounded everywhere, since anything running as this user may connect:
 * connections at once, requests in flight per connection (further lines wait
 * unread in the socket: backpressure, not an error), request line length
 * (a longer one is answered and the connection closed: the stream is out of
 * step), idle connections, and responses a client does not read (reading
 * stops until they drain). Bad input never throws out of here.
 */
import net from 'node:net';
import { dirname } from 'node:path';
import { errnoCode, errorMessage } from '../util/errors.js';
import { makeDirectory } from '../util/make-directory.js';
import { resolveIntegers, type IntegerRule } from '../util/validate.js';
import { ControlError, ControlErrorCode } from './errors.js';
import { LineSplitter } from './line-splitter.js';
import {
  MAX_REQUEST_LINE_BYTES,
  encodeResponse,
  parseRequest,
  type ControlMethod,
  type ControlRequest,
  type ControlResponse,
  type ForwardAddParams,
  type ForwardRemoveParams,
  type SessionCloseParams,
} from './protocol.js';
import type { ForwardChangeResult, ForwardListResult, MuxtunKind, SessionCloseResult, SessionListResult, StatusResult } from './results.js';
import { bindPrivateSocket, removeOwnSocket, type SocketFileIdentity } from './socket-file.js';

type Awaitable<T> = T | Promise<T>;

/**
 * What a running muxtun does for each method. Only `status` is required:
 * `serve` has no forward methods, `connect` no session methods, and a
 * missing one answers `ERR_MUXTUN_CONTROL_UNSUPPORTED`.
 *
 * A handler that throws an error with a string `code` (a `TunnelError`,
 * {@link ControlNotFoundError}, …) sends that code and message to the client;
 * any other error becomes `ERR_MUXTUN_CONTROL_INTERNAL` with a generic
 * message (no stack leaves the process) and is given to `onInternalError`.
 */
export interface ControlHandlers {
  status(): Awaitable<StatusResult>;
  listForwards?(): Awaitable<ForwardListResult>;
  /** Resolves once the forward is set up (for -R: granted by the server), rejects with the refusal. */
  addForward?(params: ForwardAddParams): Awaitable<ForwardChangeResult>;
  /** Closes the forward's listener; its open connections may finish. */
  removeForward?(params: ForwardRemoveParams): Awaitable<ForwardChangeResult>;
  listSessions?(): Awaitable<SessionListResult>;
  closeSession?(params: SessionCloseParams): Awaitable<SessionCloseResult>;
}

/** The bounds of a control server. */
export interface ControlLimits {
  /** Connections open at once; one more is answered `ERR_MUXTUN_CONTROL_BUSY` and closed. Default 32. */
  maxConnections: number;
  /** Requests of one connection being handled at once; further lines wait in the socket. Default 8. */
  maxInFlight: number;
  /** Longest request line in bytes. Default 64 KiB. */
  maxLineBytes: number;
  /** A connection with nothing in flight and no traffic for this long is closed. Default 60 s. */
  idleTimeoutMs: number;
}

export const defaultControlLimits: Readonly<ControlLimits> = Object.freeze({
  maxConnections: 32,
  maxInFlight: 8,
  maxLineBytes: MAX_REQUEST_LINE_BYTES,
  idleTimeoutMs: 60_000,
});

const limitRules: Readonly<Record<keyof ControlLimits, IntegerRule>> = {
  maxConnections: { min: 1, max: 1024 },
  maxInFlight: { min: 1, max: 64 },
  maxLineBytes: { min: 1024, max: 1024 * 1024, unit: 'bytes' },
  idleTimeoutMs: { min: 50, max: 3_600_000, unit: 'ms' },
};

/** Responses beyond this many bytes waiting to be read by the client stop the reading of its requests. */
const MAX_UNREAD_RESPONSE_BYTES = 1024 * 1024;

export interface ControlServerOptions {
  /** The socket path. Its directory is created (mode 0700) if missing. */
  path: string;
  /** Which muxtun this is, for the "not supported by this muxtun (serve)" answers. */
  kind: MuxtunKind;
  handlers: ControlHandlers;
  limits?: Partial<ControlLimits>;
  /** Gets each handler error that had no code (the client saw only "internal error"), for the log. */
  onInternalError?: (error: unknown, method: ControlMethod) => void;
}

export class ControlServer {
  readonly #server: net.Server;
  readonly #path: string;
  readonly #connections = new Set<ControlConnection>();
  #identity: SocketFileIdentity | undefined;
  #closed: Promise<void> | undefined;

  private constructor(options: ControlServerOptions, limits: ControlLimits) {
    this.#path = options.path;
    this.#server = net.createServer({ allowHalfOpen: true });
    // After listening, a server error (EMFILE on accept) only costs that connection; never crash.
    this.#server.on('error', () => {});
    this.#server.on('connection', (socket) => {
      if (this.#connections.size >= limits.maxConnections) {
        refuseBusy(socket, limits.maxConnections);
        return;
      }
      const connection = new ControlConnection(socket, options, limits, () => this.#connections.delete(connection));
      this.#connections.add(connection);
    });
  }

  /**
   * Creates the socket's directory if needed (mode 0700), binds the socket
   * (mode 0600 from the first moment it exists, see socket-file.ts), and
   * starts answering.
   *
   * @throws {@link ControlError} `ERR_MUXTUN_CONTROL_IN_USE` when a live
   *   process already listens at `path` (a stale socket file is replaced);
   *   `ERR_MUXTUN_CONTROL_SOCKET` when the directory or socket cannot be made;
   *   `ERR_MUXTUN_INVALID_ARGUMENT` for a limit out of range.
   */
  static async listen(options: ControlServerOptions): Promise<ControlServer> {
    const limits = resolveIntegers('control.limits', options.limits, defaultControlLimits, limitRules);
    try {
      await makeDirectory(dirname(options.path), 0o700);
    } catch (error) {
      throw new ControlError(ControlErrorCode.SOCKET, `control socket: cannot create its directory: ${errorMessage(error)}`, { cause: error });
    }
    const control = new ControlServer(options, limits);
    control.#identity = await bindPrivateSocket(control.#server, options.path);
    return control;
  }

  /** The socket path. */
  get path(): string {
    return this.#path;
  }

  /** Removes the socket file (only if it is still this server's), stops accepting and ends every connection. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      // The name goes first, so a client probing meanwhile sees "absent", not a dying server.
      if (this.#identity !== undefined) await removeOwnSocket(this.#path, this.#identity);
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const connection of this.#connections) connection.destroy();
      await closed;
    })();
    return this.#closed;
  }
}

/** Over the connection limit: say so in the protocol, then hang up. */
function refuseBusy(socket: net.Socket, max: number): void {
  socket.on('error', () => {});
  const response: ControlResponse = {
    id: null,
    ok: false,
    error: { code: ControlErrorCode.BUSY, message: `too many control connections (at most ${max} at once); try again` },
  };
  socket.end(encodeResponse(response), () => socket.destroy());
}

/** The message of a handler error that is passed on to the client, bounded (it may quote user input). */
const MAX_ERROR_MESSAGE_LENGTH = 1024;

/** One client connection: reads request lines, runs at most `maxInFlight` at once, writes a response to each. */
class ControlConnection {
  readonly #socket: net.Socket;
  readonly #options: ControlServerOptions;
  readonly #limits: ControlLimits;
  readonly #splitter: LineSplitter;
  readonly #onClose: () => void;
  /** Lines read but not yet started; at most those of one read, since reading pauses while any wait. */
  readonly #queue: string[] = [];
  #inFlight = 0;
  /** The client sent its last request (end of stream): answer what is pending, then end. */
  #ended = false;
  /** Out of step (line too long) or closing: read nothing more. */
  #stopped = false;

  constructor(socket: net.Socket, options: ControlServerOptions, limits: ControlLimits, onClose: () => void) {
    this.#socket = socket;
    this.#options = options;
    this.#limits = limits;
    this.#splitter = new LineSplitter(limits.maxLineBytes);
    this.#onClose = onClose;
    socket.on('error', () => {}); // EPIPE/ECONNRESET from a client that left: 'close' follows.
    socket.on('close', () => this.#onClose());
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('end', () => {
      this.#ended = true;
      const last = this.#stopped ? undefined : this.#splitter.end();
      if (last !== undefined) this.#queue.push(last);
      this.#pump();
    });
    socket.on('drain', () => this.#pump());
    socket.on('timeout', () => {
      // Idle means nothing in flight as well: a slow handler (a -R waiting for the server) is not idleness.
      if (this.#inFlight === 0 && this.#queue.length === 0) socket.destroy();
      else socket.setTimeout(limits.idleTimeoutMs); // Re-armed: a fired idle timer only restarts on traffic.
    });
    socket.setTimeout(limits.idleTimeoutMs);
  }

  destroy(): void {
    this.#stopped = true;
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    if (this.#stopped) return;
    const { lines, overflow } = this.#splitter.push(chunk);
    for (const line of lines) if (line.trim() !== '') this.#queue.push(line);
    if (overflow) {
      // The rest of the stream cannot be told apart from the long line: answer, then close.
      this.#stopped = true;
      this.#queue.length = 0;
      this.#socket.pause();
      this.#write(
        encodeResponse({
          id: null,
          ok: false,
          error: { code: ControlErrorCode.BAD_REQUEST, message: `request line longer than ${this.#limits.maxLineBytes} bytes; closing the connection` },
        }),
      );
      this.#socket.end(() => this.#socket.destroy());
      return;
    }
    this.#pump();
  }

  /** Starts queued requests while there is room, and reads only while nothing waits. */
  #pump(): void {
    if (this.#stopped) return;
    while (this.#queue.length > 0 && this.#inFlight < this.#limits.maxInFlight && this.#socket.writableLength < MAX_UNREAD_RESPONSE_BYTES) {
      this.#start(this.#queue.shift()!);
    }
    if (this.#queue.length > 0) this.#socket.pause();
    else if (!this.#ended) this.#socket.resume();
    else if (this.#inFlight === 0 && this.#socket.writable) this.#socket.end(() => this.#socket.destroy());
  }

  #start(line: string): void {
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      this.#write(encodeResponse(parsed.response));
      return;
    }
    this.#inFlight++;
    void this.#answer(parsed.request).then((response) => {
      this.#inFlight--;
      this.#write(response);
      this.#pump();
    });
  }

  /** The response line to `request`. Never rejects. */
  async #answer(request: ControlRequest): Promise<string> {
    const { id, method } = request;
    try {
      const result = await dispatch(this.#options, request);
      return encodeResponse({ id, ok: true, result: result ?? null });
    } catch (error) {
      // Also a result that is not JSON (a cycle, a BigInt): a bug in the handler, reported as internal.
      return encodeResponse({ id, ok: false, error: this.#errorBody(error, method) });
    }
  }

  #errorBody(error: unknown, method: ControlMethod): { code: string; message: string } {
    const code = errnoCode(error);
    if (code !== undefined && error instanceof Error) {
      const message = error.message.length > MAX_ERROR_MESSAGE_LENGTH ? `${error.message.slice(0, MAX_ERROR_MESSAGE_LENGTH)}…` : error.message;
      return { code, message };
    }
    this.#options.onInternalError?.(error, method);
    return { code: ControlErrorCode.INTERNAL, message: `${method} failed inside muxtun (its log has the details)` };
  }

  #write(line: string): void {
    if (this.#socket.writable) this.#socket.write(line);
  }
}

type Dispatch = { [M in ControlMethod]: (request: Extract<ControlRequest, { method: M }>) => unknown };

/** Runs the handler of `request.method`, or refuses when this muxtun has none. */
function dispatch({ handlers, kind }: ControlServerOptions, request: ControlRequest): Promise<unknown> {
  const unsupported = (method: ControlMethod): never => {
    const where = method.startsWith('forward.') ? 'forwards are changed on a running connect' : 'sessions are listed and closed on a running serve';
    throw new ControlError(ControlErrorCode.UNSUPPORTED, `${method} is not supported by this muxtun (${kind}): ${where}`);
  };
  const table: Dispatch = {
    status: () => handlers.status(),
    'forward.list': () => (handlers.listForwards ? handlers.listForwards() : unsupported('forward.list')),
    'forward.add': ({ params }) => (handlers.addForward ? handlers.addForward(params) : unsupported('forward.add')),
    'forward.remove': ({ params }) => (handlers.removeForward ? handlers.removeForward(params) : unsupported('forward.remove')),
    'session.list': () => (handlers.listSessions ? handlers.listSessions() : unsupported('session.list')),
    'session.close': ({ params }) => (handlers.closeSession ? handlers.closeSession(params) : unsupported('session.close')),
  };
  // A handler that throws synchronously is handled like one that rejects.
  return new Promise((resolve) => resolve((table[request.method] as (request: ControlRequest) => unknown)(request)));
}
