/**
 * Real programs the dynamic-forwarding suites drive: curl (as a SOCKS
 * client) and OpenSSH (sshd reached through `connect -W` as a
 * ProxyCommand). Policy as for the Go interop suite: when one is missing
 * the suite is skipped and says why; with MUXTUN_REAL_PROGRAMS=required
 * (.ci/run sets it) that is a failure instead.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './fs.js';
import { dial, freePort } from './net.js';
import { onPath } from './ports.js';
import { TestProcess } from './process.js';
import { currentScope, type Scope } from './scope.js';
import { waitUntil } from './wait.js';

export const SSHD = '/usr/sbin/sshd';

/** Why `programs` cannot run here, or null when they can. */
export function missingPrograms(programs: readonly string[]): string | null {
  const missing = programs.filter((program) => !onPath(program));
  if (missing.length > 0) return `${missing.join(', ')} not installed (apt-get install curl openssh-server openssh-client)`;
  if (programs.includes(SSHD) && process.getuid?.() !== 0) return 'sshd needs root here (it logs in as root with a key)';
  return null;
}

/**
 * For `describe.skipIf(skipWithout([...]))`: true only when a program is
 * missing and MUXTUN_REAL_PROGRAMS is not "required"; prints why.
 */
export function skipWithout(programs: readonly string[]): boolean {
  const reason = missingPrograms(programs);
  if (reason === null || process.env.MUXTUN_REAL_PROGRAMS === 'required') return false;
  console.warn(`skipped: ${reason} (set MUXTUN_REAL_PROGRAMS=required to make this a failure)`);
  return true;
}

/** For beforeAll: fails with the reason when a required program is missing. */
export function requirePrograms(programs: readonly string[]): void {
  const reason = missingPrograms(programs);
  if (reason !== null) throw new Error(`MUXTUN_REAL_PROGRAMS=required but ${reason}`);
}

export interface Sshd {
  port: number;
  /** ssh options that log in as root with the generated key, trusting the generated host key. */
  sshArgs: string[];
  dir: string;
}

/**
 * A private sshd on 127.0.0.1 (as scripts/bench/tunnels.js starts one):
 * its own host key, one authorized user key, key-only root login, sftp for
 * scp. Killed with the scope.
 */
export async function startSshd(scope: Scope = currentScope()): Promise<Sshd> {
  const dir = await tempDir('muxtun-sshd-', scope);
  for (const key of ['host_key', 'user_key']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `muxtun-test ${key}`, '-f', join(dir, key)]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'user_key.pub')), { mode: 0o600 });
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'PermitTTY no',
      'PrintMotd no',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const sshd = new TestProcess({ command: SSHD, args: ['-D', '-e', '-f', join(dir, 'sshd_config'), '-p', String(port)], name: 'sshd', scope });
  // sshd prints nothing when ready: wait until its port takes a connection.
  await waitUntil('sshd to listen', async () => {
    if (!sshd.alive) throw new Error(`sshd exited\n${sshd.tail()}`);
    try {
      (await dial(port, { scope })).destroy();
      return true;
    } catch {
      return false;
    }
  }, 15_000, 50);
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${readFileSync(join(dir, 'host_key.pub'), 'utf8')}`);
  const sshArgs = [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o', 'LogLevel=ERROR',
    '-i', join(dir, 'user_key'),
  ];
  return { port, sshArgs, dir };
}
