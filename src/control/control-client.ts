import net from 'node:net';
import { errnoCode, errorMessage } from '../util/errors.js';
import { ControlError, ControlErrorCode, ControlRequestError } from './errors.js';
import { LineSplitter } from './line-splitter.js';
import { encodeRequest, type ControlMethod, type ControlParams, type ControlResults } from './protocol.js';

/** Default time for one request, connect to answer: long enough for a -R the server must grant. */
export const DEFAULT_CONTROL_TIMEOUT_MS = 15_000;
/** Longest response line read (a serve with many sessions has a long status). */
export const MAX_RESPONSE_LINE_BYTES = 16 * 1024 * 1024;

export interface ControlRequestOptions {
  /** Give up after this long, connect to answer. Default {@link DEFAULT_CONTROL_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Sends one request to the muxtun listening at `path` and returns its
 * result: one connection per request, closed after the answer.
 *
 * @throws {@link ControlRequestError} when the muxtun answered with an error
 *   (its `code` is the one the muxtun sent, e.g. `ERR_MUXTUN_POLICY`)
 * @throws {@link ControlError} `ERR_MUXTUN_CONTROL` when the socket cannot
 *   be reached, does not answer in time, or answers outside the protocol
 */
export function requestControl<M extends ControlMethod>(
  path: string,
  method: M,
  params: ControlParams[M],
  options: ControlRequestOptions = {},
): Promise<ControlResults[M]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const id = 1;
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    const splitter = new LineSplitter(MAX_RESPONSE_LINE_BYTES);
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const fail = (message: string, cause?: unknown): void =>
      finish(() => reject(new ControlError(ControlErrorCode.UNREACHABLE, message, cause === undefined ? undefined : { cause })));
    const timer = setTimeout(() => fail(`the muxtun at ${path} did not answer ${method} within ${timeoutMs / 1000} s`), timeoutMs);

    socket.once('connect', () => socket.write(encodeRequest(id, method, params)));
    socket.on('error', (error) => fail(unreachableMessage(path, error), error));
    socket.on('end', () => fail(`the muxtun at ${path} closed the connection without answering ${method}`));
    socket.on('data', (chunk: Buffer) => {
      const { lines, overflow } = splitter.push(chunk);
      for (const line of lines) {
        const answer = readResponse(line, id);
        if (answer === undefined) continue; // Not ours (a connection-level notice without our id is handled below).
        if (answer.kind === 'invalid') return fail(`the muxtun at ${path} answered something that is not the control protocol (${answer.why})`);
        if (answer.kind === 'error') return finish(() => reject(new ControlRequestError(method, answer.code, answer.message)));
        return finish(() => resolve(answer.result as ControlResults[M]));
      }
      if (overflow) fail(`the answer from ${path} is longer than ${MAX_RESPONSE_LINE_BYTES} bytes`);
    });
  });
}

type Answer = { kind: 'ok'; result: unknown } | { kind: 'error'; code: string; message: string } | { kind: 'invalid'; why: string };

/**
 * Our answer in a response line; `undefined` for a response to another id.
 * An error with id null (busy, line too long) answers the connection, so ours.
 */
function readResponse(line: string, id: number): Answer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'invalid', why: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null) return { kind: 'invalid', why: 'not an object' };
  const response = value as { id?: unknown; ok?: unknown; result?: unknown; error?: unknown };
  if (response.id !== id && response.id !== null) return undefined;
  if (response.ok === true && response.id === id) return { kind: 'ok', result: response.result };
  if (response.ok === false) {
    const error = response.error as { code?: unknown; message?: unknown } | null | undefined;
    if (typeof error?.code === 'string' && typeof error.message === 'string') return { kind: 'error', code: error.code, message: error.message };
  }
  return { kind: 'invalid', why: 'no result or error' };
}

function unreachableMessage(path: string, error: unknown): string {
  switch (errnoCode(error)) {
    case 'ENOENT':
      return `no muxtun control socket at ${path} (ENOENT)`;
    case 'ECONNREFUSED':
      return `nothing listens at ${path}: the muxtun that made it has ended (ECONNREFUSED)`;
    case 'EACCES':
    case 'EPERM':
      return `no permission to use ${path}: it belongs to another user (${errnoCode(error)})`;
    default:
      return `cannot reach the muxtun at ${path}: ${errorMessage(error)}`;
  }
}
