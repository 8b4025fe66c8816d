/**
 * What muxtun keeps on disk: the server's private state directory (its
 * certificate, key and token, modes checked like ssh's StrictModes) and the
 * client's known_hosts. Every error is a {@link MuxtunStateError} with a
 * stable code and, where one exists, the command that fixes it.
 */
export { HostKeyMismatchError, MuxtunStateError, StateErrorCode } from './errors.js';
export {
  PUBLIC_FILE_MODE,
  SECRET_FILE_MODE,
  STATE_DIR_MODE,
  checkStateFile,
  defaultStateDir,
  ensureStateDir,
  type FileExposure,
} from './state-dir.js';
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
export { MAX_TOKEN_FILE_BYTES, TOKEN_BYTES, TOKEN_FILE, loadOrCreateToken, readTokenFile, type ServerToken } from './token.js';
export {
  MAX_KNOWN_HOSTS_BYTES,
  checkKnownHost,
  defaultKnownHostsFile,
  knownHostsFile,
  recordKnownHost,
  type KnownHostStatus,
} from './known-hosts.js';
export {
  MAX_USERS_FILE_BYTES,
  USERS_FILE_MODE,
  USER_KEYS,
  UsersFileError,
  UsersFileErrorCode,
  editUsersFile,
  parseUsers,
  readUsersFile,
  renderUser,
  type UserRecord,
  type UsersFile,
} from './users-file.js';
