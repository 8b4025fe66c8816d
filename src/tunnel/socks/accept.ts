/**
 * The server side of a SOCKS handshake on an accepted socket, for -D (on
 * the client) and reverse dynamic -R (on the server): reads the greeting
 * and the request within a time limit, refuses what is not a CONNECT, and
 * hands back the target with a way to answer once the dial's outcome is
 * known. Bytes the SOCKS client sent after its request (optimistic data)
 * are put back into the socket for whoever reads it next.
 */
import type net from 'node:net';
import type { DialFailure } from '../dial-reply.js';
import { TunnelError, TunnelErrorCode } from '../errors.js';
import { parseSocks4Request, parseSocks5Greeting, parseSocks5Request, socks4Reply, socks5Reply, Socks5Reply, SocksCommand, type Parsed, type SocksRequest } from './codec.js';

/** The most a SOCKS client may send before its request is complete (a SOCKS4a request is at most 8 + 256 + 256). */
export const MAX_SOCKS_HANDSHAKE_BYTES = 1024;

export interface AcceptedSocks extends SocksRequest {
  /** Tells the SOCKS client the outcome: success (null), or the failure (then the socket is ended). */
  answer(failure: DialFailure | null): void;
}

const SOCKS5_CODES: Readonly<Record<DialFailure, Socks5Reply>> = {
  policy: Socks5Reply.NOT_ALLOWED,
  refused: Socks5Reply.CONNECTION_REFUSED,
  unreachable: Socks5Reply.HOST_UNREACHABLE,
  'not-found': Socks5Reply.HOST_UNREACHABLE,
  timeout: Socks5Reply.TTL_EXPIRED,
  failed: Socks5Reply.GENERAL_FAILURE,
};

/**
 * Runs the handshake. Resolves with the CONNECT request; rejects with a
 * `TunnelError` (`ERR_MUXTUN_SOCKS`) saying what was wrong, after
 * answering and closing the socket (a reply where SOCKS has one).
 */
export function acceptSocks(socket: net.Socket, timeoutMs: number): Promise<AcceptedSocks> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let phase = 'first' as 'first' | 'request5';
    let settled = false;
    const timer = setTimeout(() => fail(`no SOCKS request within ${timeoutMs} ms`), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
    };
    const fail = (reason: string, reply?: Buffer): void => {
      if (settled) return;
      settled = true;
      cleanup();
      if (reply && socket.writable) socket.end(reply);
      else socket.destroy();
      // Whatever happens after the reply, the socket does not outlive a refusal.
      socket.setTimeout(1_000, () => socket.destroy());
      reject(new TunnelError(TunnelErrorCode.SOCKS, reason));
    };
    const onEnd = (): void => fail('the SOCKS client left before its request');
    const step = <T>(parsed: Parsed<T>, then: (value: T, length: number) => void): boolean => {
      if (parsed.state === 'more') {
        if (buffered.length > MAX_SOCKS_HANDSHAKE_BYTES) fail(`SOCKS handshake longer than ${MAX_SOCKS_HANDSHAKE_BYTES} bytes`);
        return false;
      }
      if (parsed.state === 'bad') {
        fail(parsed.reason, parsed.reply);
        return false;
      }
      buffered = buffered.subarray(parsed.length);
      then(parsed.value, parsed.length);
      return true;
    };
    const finish = (request: SocksRequest): void => {
      if (request.command !== SocksCommand.CONNECT) {
        const name = request.command === SocksCommand.BIND ? 'BIND' : request.command === SocksCommand.UDP_ASSOCIATE ? 'UDP ASSOCIATE' : `command ${request.command}`;
        fail(`SOCKS${request.version} ${name} is not supported (only CONNECT)`, request.version === 5 ? socks5Reply(Socks5Reply.COMMAND_NOT_SUPPORTED) : socks4Reply(false));
        return;
      }
      settled = true;
      cleanup();
      socket.pause();
      if (buffered.length > 0) socket.unshift(buffered);
      resolve({
        ...request,
        answer: (failure) => {
          if (failure === null) {
            socket.write(request.version === 5 ? socks5Reply(Socks5Reply.SUCCEEDED) : socks4Reply(true));
            return;
          }
          if (socket.writable) socket.end(request.version === 5 ? socks5Reply(SOCKS5_CODES[failure]) : socks4Reply(false));
          socket.setTimeout(1_000, () => socket.destroy());
          socket.resume();
        },
      });
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (phase === 'first') {
        if (buffered[0] === 4) {
          step(parseSocks4Request(buffered), (request) => finish(request));
          return;
        }
        if (buffered[0] !== 5) return fail(`not a SOCKS client (first byte 0x${buffered[0]!.toString(16).padStart(2, '0')})`);
        const greeted = step(parseSocks5Greeting(buffered), ({ methods }) => {
          if (!methods.includes(0)) return fail('the SOCKS5 client offers no method without authentication', Buffer.from([5, 0xff]));
          socket.write(Buffer.from([5, 0]));
          phase = 'request5';
        });
        if (!greeted || settled || buffered.length === 0) return;
      }
      step(parseSocks5Request(buffered), (request) => finish(request));
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  });
}
