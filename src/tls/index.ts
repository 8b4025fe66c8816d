/**
 * The TLS layer: the server's identity (certificate, key, token) kept in a
 * private state directory, and the client's ways to trust a server
 * (fingerprint pin, CA, trust on first use, insecure). Nothing here parses
 * arguments or logs; results and {@link MuxtunTlsError} codes report everything.
 */
export {
  FingerprintMismatchError,
  HostKeyMismatchError,
  MuxtunTlsError,
  TlsErrorCode,
} from './errors.js';
export {
  PUBLIC_FILE_MODE,
  SECRET_FILE_MODE,
  STATE_DIR_MODE,
  checkStateFile,
  defaultStateDir,
  ensureStateDir,
  type FileExposure,
} from './state-dir.js';
export type { Env } from './xdg.js';
export {
  MAX_CERT_FILE_BYTES,
  SERVER_CERT_FILE,
  SERVER_KEY_FILE,
  loadCertificateFiles,
  loadOrCreateServerCertificate,
  type CertificateMaterial,
  type ServerCertificate,
} from './certificate.js';
export { SELF_SIGNED_VALIDITY_YEARS } from './self-signed.js';
export { FINGERPRINT_PREFIX, fingerprintOf, fingerprintsEqual, parseFingerprint } from './fingerprint.js';
export {
  MAX_TOKEN_FILE_BYTES,
  TOKEN_BYTES,
  TOKEN_FILE,
  loadOrCreateToken,
  readTokenFile,
  tokensEqual,
  type ServerToken,
} from './token.js';
export { formatHostPort } from './host-port.js';
export {
  MAX_KNOWN_HOSTS_BYTES,
  checkKnownHost,
  defaultKnownHostsFile,
  recordKnownHost,
  type KnownHostStatus,
} from './known-hosts.js';
export {
  clientTlsOptions,
  verifyServer,
  type ClientTarget,
  type ClientTrust,
  type ServerVerification,
} from './client-trust.js';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  connectTls,
  type ConnectTlsOptions,
  type TlsConnection,
} from './connect.js';
export { serverTlsOptions } from './server-options.js';
