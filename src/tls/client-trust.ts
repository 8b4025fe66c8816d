import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { FingerprintMismatchError, MuxtunTlsError, TlsErrorCode } from './errors.js';
import { fingerprintOf, fingerprintsEqual, parseFingerprint } from './fingerprint.js';
import { errorMessage } from '../util/errors.js';
import { TLS13_CIPHER_SUITES } from './cipher-suites.js';

/**
 * How a client decides to trust the server's certificate.
 *
 * Why pinning and TOFU check after the handshake rather than in
 * `checkServerIdentity`: Node calls `checkServerIdentity` only once the
 * certificate chain has verified against a CA, and a self-signed server
 * certificate never does, so the hook would simply not run. These modes
 * therefore handshake with `rejectUnauthorized: false` and
 * {@link verifyServer} inspects the presented certificate in the
 * `'secureConnect'` handler, before the socket is handed to anyone who could
 * write to it. The handshake itself carries no application data (Node's
 * client sends no TLS 1.3 early data), so a mismatch aborts with nothing
 * sent. The consequence: the options from {@link clientTlsOptions} are only
 * safe together with {@link verifyServer}; {@link connectTls} does both.
 */
export type ClientTrust =
  /** Accept exactly the certificate with this fingerprint (`sha256:HEX`, see {@link parseFingerprint}). */
  | { kind: 'fingerprint'; fingerprint: string }
  /** Normal WebPKI-style verification against these CA certificates (PEM, may hold several), host name included. */
  | { kind: 'ca'; caPem: string }
  /** Trust on first use: record unknown servers in this store, insist on the record afterwards. */
  | { kind: 'tofu'; knownHosts: KnownHosts }
  /** No verification at all; the connection is encrypted but anyone in the path can impersonate the server. */
  | { kind: 'insecure' };

/**
 * Where trust on first use keeps what it saw (muxtun's known_hosts file, see
 * `knownHostsFile` in src/state). The TLS layer only asks and records.
 */
export interface KnownHosts {
  /** For messages: the file or place the records live in. */
  readonly description: string;
  /** `'match'` when `hostPort` is recorded with `fingerprint`, `'unknown'` when not recorded; throws when recorded with another. */
  check(hostPort: string, fingerprint: string): Promise<'match' | 'unknown'>;
  /** Records `hostPort` with `fingerprint`; `true` when a record was added. */
  record(hostPort: string, fingerprint: string): Promise<boolean>;
}

/** What {@link verifyServer} found out about an accepted server. */
export interface ServerVerification {
  /** Fingerprint of the certificate the server presented. */
  fingerprint: string;
  /** `true` when TOFU recorded the server in known_hosts just now. */
  recorded: boolean;
  /**
   * The certificate's notAfter (as X509Certificate.validTo). Taken here
   * because Node stops reporting the peer certificate once a TLS 1.3
   * session ticket arrives, shortly after the handshake.
   */
  validTo: string;
}

/** Where a client connects; `servername` overrides the SNI and CA host name check (defaults to `host` unless it is an IP). */
export interface ClientTarget {
  host: string;
  port: number;
  servername?: string;
}

/**
 * node:tls connect options for `target` under `trust`, always with
 * `minVersion: 'TLSv1.3'`. CA mode verifies chain and host name in the
 * handshake (`rejectUnauthorized: true`); the other modes need
 * {@link verifyServer} after it (see {@link ClientTrust}).
 *
 * @throws {@link MuxtunTlsError} `ERR_MUXTUN_BAD_FINGERPRINT` for a malformed
 *   pin, `ERR_MUXTUN_CERT_INVALID` for a CA bundle without a PEM certificate
 */
export function clientTlsOptions(trust: ClientTrust, target: ClientTarget): ConnectionOptions {
  const servername = target.servername ?? (isIP(target.host) === 0 ? target.host : undefined);
  const base: ConnectionOptions = {
    host: target.host,
    port: target.port,
    minVersion: 'TLSv1.3',
    ciphers: TLS13_CIPHER_SUITES,
    ...(servername === undefined ? {} : { servername }),
  };
  switch (trust.kind) {
    case 'ca':
      checkCaBundle(trust.caPem);
      return { ...base, ca: trust.caPem, rejectUnauthorized: true };
    case 'fingerprint':
      parseFingerprint(trust.fingerprint); // fail before dialling, not after
      return { ...base, rejectUnauthorized: false };
    case 'tofu':
    case 'insecure':
      return { ...base, rejectUnauthorized: false };
  }
}

/**
 * Checks the certificate `socket` was shown against `trust`; call it from
 * `'secureConnect'` before writing anything. TOFU records an unknown server
 * in its known_hosts file.
 *
 * @param hostPort - the server's `host:port` (see {@link formatHostPort}), for known_hosts and messages
 * @throws {@link FingerprintMismatchError} (`ERR_MUXTUN_FINGERPRINT_MISMATCH`),
 *   {@link HostKeyMismatchError} (`ERR_MUXTUN_HOST_KEY_CHANGED`), the
 *   known_hosts errors, `ERR_MUXTUN_TLS_UNTRUSTED` (CA mode, not
 *   authorized) or `ERR_MUXTUN_TLS_HANDSHAKE` (no certificate presented)
 */
export async function verifyServer(
  socket: TLSSocket,
  trust: ClientTrust,
  hostPort: string,
): Promise<ServerVerification> {
  const peer = socket.getPeerX509Certificate();
  if (peer === undefined) {
    throw new MuxtunTlsError(TlsErrorCode.TLS_HANDSHAKE, `The server at ${hostPort} presented no certificate`);
  }
  const fingerprint = fingerprintOf(peer);
  const { validTo } = peer;
  switch (trust.kind) {
    case 'ca':
      // Already enforced by rejectUnauthorized; checked again so a future
      // change to the options cannot silently turn CA mode into "insecure".
      if (!socket.authorized) {
        throw new MuxtunTlsError(
          TlsErrorCode.TLS_UNTRUSTED,
          `The certificate of ${hostPort} is not trusted: ${String(socket.authorizationError)}`,
        );
      }
      return { fingerprint, recorded: false, validTo };
    case 'fingerprint': {
      const expected = parseFingerprint(trust.fingerprint);
      if (!fingerprintsEqual(expected, fingerprint)) {
        throw new FingerprintMismatchError(hostPort, expected, fingerprint);
      }
      return { fingerprint, recorded: false, validTo };
    }
    case 'tofu': {
      const status = await trust.knownHosts.check(hostPort, fingerprint);
      if (status === 'match') return { fingerprint, recorded: false, validTo };
      return { fingerprint, recorded: await trust.knownHosts.record(hostPort, fingerprint), validTo };
    }
    case 'insecure':
      return { fingerprint, recorded: false, validTo };
  }
}

function checkCaBundle(caPem: string): void {
  try {
    if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no "BEGIN CERTIFICATE" block');
    new X509Certificate(caPem);
  } catch (error) {
    throw new MuxtunTlsError(
      TlsErrorCode.CERT_INVALID,
      `The CA certificate bundle is not PEM certificates: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}
