/**
 * The TLS layer: connecting to a server over TLS 1.3 and deciding whether to
 * trust it (fingerprint pin, CA, trust on first use, insecure), and the
 * server's TLS options. What is kept on disk lives in src/state. Nothing
 * here parses arguments or logs; results and {@link MuxtunTlsError} codes
 * report everything.
 */
export { FingerprintMismatchError, MuxtunTlsError, TlsErrorCode } from './errors.js';
export { FINGERPRINT_PREFIX, fingerprintOf, fingerprintsEqual, parseFingerprint } from './fingerprint.js';
export {
  clientTlsOptions,
  verifyServer,
  type ClientTarget,
  type ClientTrust,
  type KnownHosts,
  type ServerVerification,
} from './client-trust.js';
export { DEFAULT_CONNECT_TIMEOUT_MS, connectTls, type ConnectTlsOptions, type TlsConnection } from './connect.js';
export { serverTlsOptions } from './server-options.js';
