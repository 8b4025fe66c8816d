import { appendFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { KnownHosts } from '../tls/client-trust.js';
import { readFileBounded } from '../util/bounded-read.js';
import { HostKeyMismatchError, MuxtunStateError, StateErrorCode } from './errors.js';
import { parseFingerprint } from '../tls/fingerprint.js';
import { normalizeHostPort } from '../util/host-port.js';
import { errnoCode, errorMessage } from '../util/errors.js';
import { makeDirectory } from '../util/make-directory.js';
import { xdgBaseDir, type Env } from '../util/xdg.js';

/**
 * Trust on first use, as ssh does it. The first time a client reaches a
 * server it records the certificate fingerprint; later it insists on the
 * same one and refuses loudly if it changed.
 *
 * File format, one record per line, `#` starts a comment:
 *
 *     host:port sha256:HEX
 *
 * A malformed line is an error, not skipped: if the line was meant for the
 * host being dialled, skipping it would make the host "unknown" and the
 * client would silently trust whatever certificate it is shown.
 */

/** Largest known_hosts file read. Thousands of hosts fit in a fraction of it. */
export const MAX_KNOWN_HOSTS_BYTES = 1024 * 1024;

/** Outcome of {@link checkKnownHost} when it does not throw. */
export type KnownHostStatus = 'match' | 'unknown';

const HEADER = '# muxtun known hosts: one "host:port sha256:fingerprint" per line\n';

/**
 * The default known_hosts file: `$XDG_CONFIG_HOME/muxtun/known_hosts`, or
 * `~/.config/muxtun/known_hosts` when `XDG_CONFIG_HOME` is unset or not absolute.
 *
 * @param env - environment to read; defaults to `process.env`
 * @param home - home directory; defaults to `os.homedir()`
 */
export function defaultKnownHostsFile(env: Env = process.env, home: string = homedir()): string {
  return join(xdgBaseDir(env, 'XDG_CONFIG_HOME', home, '.config'), 'muxtun', 'known_hosts');
}

/**
 * Looks `hostPort` up in `file` (a missing file knows no hosts).
 *
 * @param hostPort - `host:port` as made by {@link formatHostPort}
 * @param fingerprint - the presented certificate's fingerprint
 * @returns `'match'` when a record for `hostPort` has this fingerprint,
 *   `'unknown'` when there is no record for `hostPort`
 * @throws {@link HostKeyMismatchError} (`ERR_MUXTUN_HOST_KEY_CHANGED`) when
 *   `hostPort` is recorded with other fingerprints only;
 *   {@link MuxtunStateError} `ERR_MUXTUN_KNOWN_HOSTS_READ` or
 *   `ERR_MUXTUN_KNOWN_HOSTS_INVALID` (naming file and line) for a bad file,
 *   `ERR_MUXTUN_INVALID_ARGUMENT` for a malformed `hostPort`,
 *   `ERR_MUXTUN_BAD_FINGERPRINT` for a malformed `fingerprint`
 */
export async function checkKnownHost(file: string, hostPort: string, fingerprint: string): Promise<KnownHostStatus> {
  const key = hostPortKey(hostPort);
  const presented = parseFingerprint(fingerprint);
  return lookup(file, (await readKnownHosts(file)).entries, key, presented);
}

/**
 * Records `hostPort` with `fingerprint`, creating the file (0600, with a
 * header comment) and its directories (0700) as needed.
 *
 * @returns `true` when a line was appended, `false` when the record already existed
 * @throws {@link HostKeyMismatchError} when `hostPort` is already recorded
 *   with a different fingerprint (never adds a second, conflicting record);
 *   otherwise the errors of {@link checkKnownHost}, or
 *   `ERR_MUXTUN_KNOWN_HOSTS_WRITE` when the file cannot be written
 */
export async function recordKnownHost(file: string, hostPort: string, fingerprint: string): Promise<boolean> {
  const key = hostPortKey(hostPort);
  const presented = parseFingerprint(fingerprint);
  const { text, entries } = await readKnownHosts(file);
  if (lookup(file, entries, key, presented) === 'match') return false;
  const prefix = text === undefined || text === '' ? HEADER : text.endsWith('\n') ? '' : '\n';
  try {
    // Not mkdir({ recursive: true }): on /proc it loops for ever (see makeDirectory).
    await makeDirectory(dirname(file), 0o700);
    // Append mode: concurrent clients recording different hosts cannot clobber
    // each other's lines, and one short write lands in one piece.
    await appendFile(file, `${prefix}${key} ${presented}\n`, { mode: 0o600 });
  } catch (error) {
    throw new MuxtunStateError(
      StateErrorCode.KNOWN_HOSTS_WRITE,
      `Cannot record ${key} in known hosts file ${file}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  return true;
}

interface KnownHostEntry {
  hostPort: string;
  fingerprint: string;
  line: number;
}

function lookup(file: string, entries: KnownHostEntry[], key: string, presented: string): KnownHostStatus {
  const recorded = entries.filter((entry) => entry.hostPort === key);
  if (recorded.some((entry) => entry.fingerprint === presented)) return 'match';
  const first = recorded[0];
  if (first === undefined) return 'unknown';
  throw new HostKeyMismatchError({ hostPort: key, recorded: first.fingerprint, presented, file, line: first.line });
}

async function readKnownHosts(file: string): Promise<{ text: string | undefined; entries: KnownHostEntry[] }> {
  let result;
  try {
    result = await readFileBounded(file, MAX_KNOWN_HOSTS_BYTES);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { text: undefined, entries: [] };
    throw new MuxtunStateError(
      StateErrorCode.KNOWN_HOSTS_READ,
      `Cannot read known hosts file ${file}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  if (result.tooLarge) {
    throw new MuxtunStateError(
      StateErrorCode.KNOWN_HOSTS_READ,
      `Known hosts file ${file} is larger than the ${MAX_KNOWN_HOSTS_BYTES}-byte limit; ` +
        'it is probably not a muxtun known_hosts file. Remove stale entries or point muxtun at another file.',
    );
  }
  const entries: KnownHostEntry[] = [];
  result.text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const content = raw.replace(/(^|\s)#.*$/, '').trim();
    if (content === '') return;
    const invalid = (what: string): never => {
      throw new MuxtunStateError(
        StateErrorCode.KNOWN_HOSTS_INVALID,
        `${file}:${line}: ${what}. Expected "host:port sha256:HEX"; fix or remove the line.`,
      );
    };
    const fields = content.split(/\s+/);
    if (fields.length !== 2) invalid(`expected 2 fields, found ${fields.length}`);
    const hostPort = normalizeHostPort(fields[0] ?? '');
    if (hostPort === undefined) invalid(`"${fields[0]}" is not host:port`);
    let fingerprint = '';
    try {
      fingerprint = parseFingerprint(fields[1] ?? '');
    } catch (error) {
      invalid(errorMessage(error));
    }
    entries.push({ hostPort: hostPort ?? '', fingerprint, line });
  });
  return { text: result.text, entries };
}

function hostPortKey(hostPort: string): string {
  const key = normalizeHostPort(hostPort);
  if (key === undefined) {
    throw new InvalidArgumentError(`Invalid known hosts key ${JSON.stringify(hostPort)}: expected host:port, IPv6 in brackets`);
  }
  return key;
}

/**
 * The known_hosts file as the TLS layer's trust-on-first-use store
 * (`{ kind: 'tofu', knownHosts: knownHostsFile(path) }`).
 */
export function knownHostsFile(file: string): KnownHosts {
  return {
    description: file,
    check: (hostPort, fingerprint) => checkKnownHost(file, hostPort, fingerprint),
    record: (hostPort, fingerprint) => recordKnownHost(file, hostPort, fingerprint),
  };
}
